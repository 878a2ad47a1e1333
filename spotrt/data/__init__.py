"""Training data: synthetic scenes with a curriculum, fonts, ICDAR readers and the charset.

The synthetic scenes (spotrt.data.synth) need Pillow, which a runtime install lacks: they load on
first use, so that reading ICDAR data and the charset (spotrt eval --data) works without it.
"""
from .charset import DEFAULT_CHARSET, normalize_text
from .fonts import find_fonts
from .readers import read_icdar_gt, read_word_coords, read_word_crops

_SYNTH = ("LEVELS", "Scene", "SynthGenerator", "Word", "default_vocabulary")


def __getattr__(name: str):
    if name in _SYNTH:
        from . import synth

        return getattr(synth, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
