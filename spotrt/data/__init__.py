"""Training data: synthetic scenes with a curriculum, fonts, ICDAR readers and the charset."""
from .charset import DEFAULT_CHARSET, normalize_text
from .fonts import find_fonts
from .readers import read_icdar_gt, read_word_coords, read_word_crops
from .synth import LEVELS, Scene, SynthGenerator, Word, default_vocabulary

__all__ = [
    "DEFAULT_CHARSET",
    "LEVELS",
    "Scene",
    "SynthGenerator",
    "Word",
    "default_vocabulary",
    "find_fonts",
    "normalize_text",
    "read_icdar_gt",
    "read_word_coords",
    "read_word_crops",
]
