"""One object that describes a model; it is saved inside every weights file."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

DEFAULT_CHARSET = "0123456789abcdefghijklmnopqrstuvwxyz"
BACKBONES = ("light", "vgg16")


@dataclass
class SpotterConfig:
    """Architecture and inference settings of a spotter.

    Token ids of the recognizer: 0 is end-of-word, 1..len(charset) are the characters, and
    len(charset)+1 is the start token fed to the decoder's first step (never predicted).
    """

    backbone: str = "light"
    charset: str = DEFAULT_CHARSET
    max_word_len: int = 16
    feat_channels: int = 128
    stride: int = 8                  # of the detection features
    rec_channels: int = 64           # stride-4 features that regions are pooled from
    rec_stride: int = 4
    # Text-shaped anchors: every height combined with every width/height ratio.
    anchor_heights: tuple[float, ...] = (10.0, 16.0, 26.0, 42.0, 68.0)
    anchor_ratios: tuple[float, ...] = (1.0, 2.0, 3.5, 6.0, 10.0)
    # Larger text on coarser proposal levels: level i (1-based) runs the proposal network on features
    # downsampled to stride * 2**i, with these anchor heights (and the same ratios). Empty: one level.
    level_anchor_heights: tuple[tuple[float, ...], ...] = ()
    pre_nms_top_n: int = 800
    max_proposals: int = 48          # K: proposals per image, padded, with a valid count
    # Text taller than the anchors in the same network call: the image is also read averaged down
    # `pyramid_factor` times (0: not), with the same weights. That coarse pass proposes only regions
    # at least `pyramid_min_height` input pixels tall (`pyramid_proposals` of them, pooled from its
    # own stride-4 features); a fine region mostly inside a coarse word it reads is left to it
    # (spotrt/model/pyramid.py). Inference only: training never sees it.
    # `pyramid_levels` coarse passes: factor, 2 x factor, ... (each with its own proposals).
    pyramid_factor: int = 0
    pyramid_min_height: float = 56.0
    pyramid_proposals: int = 16
    pyramid_levels: int = 1
    proposal_nms_iou: float = 0.7
    proposal_min_size: float = 4.0
    roi_height: int = 8              # H of the varying-width RoI pooling
    roi_max_width: int = 48          # W_max
    encoder_hidden: int = 128
    encoder_convs: int = 3           # conv blocks over each pooled region (0: the paper's plain encoder)
    encoder_channels: int = 96
    encoder_bidirectional: bool = True
    decoder_hidden: int = 128
    embed_dim: int = 64
    attn_dim: int = 96
    score_thresh: float = 0.5        # detection probability a region needs to be read
    # A word's score (detection x mean character probability) it needs to be reported. Per model:
    # chosen on synthetic validation scenes (benchmarks/choose_threshold.py), never on a test set.
    word_score_thresh: float = 0.0
    det_nms_iou: float = 0.3
    input_height: int = 736          # fixed size of exported graphs; torch pads to a multiple of 32
    input_width: int = 1280
    mean: tuple[float, float, float] = (127.5, 127.5, 127.5)  # BGR
    std: tuple[float, float, float] = (64.0, 64.0, 64.0)

    def __post_init__(self) -> None:
        self.anchor_heights = tuple(float(h) for h in self.anchor_heights)
        self.anchor_ratios = tuple(float(r) for r in self.anchor_ratios)
        self.level_anchor_heights = tuple(tuple(float(h) for h in hs) for hs in self.level_anchor_heights)
        if any(not hs for hs in self.level_anchor_heights):
            raise ValueError(f"config level_anchor_heights: found {self.level_anchor_heights}, expected a "
                             "non-empty list of heights for every extra level")
        self.mean = tuple(float(m) for m in self.mean)
        self.std = tuple(float(s) for s in self.std)
        if self.backbone not in BACKBONES:
            raise ValueError(f"config backbone: found {self.backbone!r}, expected one of {BACKBONES}")
        if not self.charset or len(set(self.charset)) != len(self.charset):
            raise ValueError(f"config charset: found {self.charset!r}, expected distinct characters")
        if self.max_word_len < 1 or self.roi_max_width < 1 or self.roi_height < 1:
            raise ValueError("config: max_word_len, roi_height and roi_max_width must be >= 1")
        if not (0.0 <= self.score_thresh <= 1.0 and 0.0 <= self.word_score_thresh <= 1.0):
            raise ValueError(f"config: score_thresh {self.score_thresh} and word_score_thresh "
                             f"{self.word_score_thresh} must be in 0..1")
        # inputs are multiples of 32, so every coarse image stays a multiple of the stride (8)
        if (self.pyramid_factor not in (0, 2, 4) or self.pyramid_proposals < 1 or self.pyramid_levels < 1
                or (self.pyramid_factor and self.pyramid_factor * 2 ** (self.pyramid_levels - 1) > 4)):
            raise ValueError(f"config: pyramid_factor {self.pyramid_factor}, pyramid_levels {self.pyramid_levels} "
                             f"and pyramid_proposals {self.pyramid_proposals}: expected a factor of 0 (off), 2 or 4, "
                             "coarse levels whose largest factor is at most 4, and >= 1 proposals")
        if self.encoder_convs < 0 or self.encoder_channels < 1:
            raise ValueError("config: encoder_convs must be >= 0 and encoder_channels >= 1")

    @property
    def num_anchors(self) -> int:
        return len(self.anchor_heights) * len(self.anchor_ratios)

    @property
    def proposal_levels(self) -> list[tuple[int, tuple[float, ...]]]:
        """(stride, anchor heights) of every proposal level, finest first."""
        levels = [(self.stride, self.anchor_heights)]
        for i, hs in enumerate(self.level_anchor_heights, start=1):
            levels.append((self.stride * 2**i, hs))
        return levels

    @property
    def pyramid_factors(self) -> tuple[int, ...]:
        """The factors of the coarse passes, finest first (none without a pyramid)."""
        return tuple(self.pyramid_factor * 2**i for i in range(self.pyramid_levels)) if self.pyramid_factor else ()

    @property
    def output_slots(self) -> int:
        """K of the outputs: the fine pass's proposals plus every coarse pass's."""
        return self.max_proposals + self.pyramid_proposals * len(self.pyramid_factors)

    @property
    def num_classes(self) -> int:
        """Outputs of the recognizer: end-of-word plus the charset."""
        return len(self.charset) + 1

    @property
    def start_token(self) -> int:
        return len(self.charset) + 1

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "SpotterConfig":
        data = json.loads(text)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"config: unknown fields {unknown}")
        if "encoder_convs" not in data:  # written before the encoder had conv blocks: the plain one
            data.update(encoder_convs=0, encoder_bidirectional=False)
        return cls(**data)

    def replace(self, **changes) -> "SpotterConfig":
        return dataclasses.replace(self, **changes)
