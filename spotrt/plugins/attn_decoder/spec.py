"""AttnDecoder: name, attributes with valid ranges, tolerances, inputs and kernel launch sizes."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..spec import IntAttribute, PluginSpec
from .reference import WEIGHT_NAMES, decoder_dims

SPEC = PluginSpec(
    name="AttnDecoder",
    version="1",
    attributes=(
        IntAttribute("max_len", 1, 64, "T: decoding steps (longest word)"),
        IntAttribute("start_token", 0, 256, "token fed to the first step; < embedding rows"),
        IntAttribute("num_classes", 2, 256, "C: end-of-word plus the charset; rows of out.weight"),
    ),
    # Tokens must match exactly; the tolerance is for probs.
    tolerances={"float32": 1e-5, "float16": 1e-2},
    kernel=Path(__file__).with_name("kernel.cu"),
    inputs=("memory", "widths", "holistic") + WEIGHT_NAMES,
    outputs=("tokens", "probs"),
)

KERNEL_NAME = "attn_decoder_fp32"
BLOCK = 128


def validate(attrs: Mapping, weights: Mapping[str, np.ndarray] | None = None) -> dict[str, int]:
    """Check AttnDecoder attributes (and, given the weights, their agreement with the weight shapes)."""
    out = SPEC.validate(attrs)
    if weights is not None:
        dims = decoder_dims(weights)
        if out["num_classes"] != dims["C"]:
            raise ValueError(f"attribute num_classes: found {out['num_classes']}, expected {dims['C']} (rows of out.weight)")
        if out["start_token"] >= dims["V"]:
            raise ValueError(f"attribute start_token: found {out['start_token']}, expected < {dims['V']} (rows of embed.weight)")
    return out


def shared_bytes(dims: Mapping[str, int], width: int, block: int = BLOCK) -> int:
    """Dynamic shared memory of one block: h, c, ctx, attention projection, scores, gates, logits, scratch."""
    floats = 2 * dims["Hd"] + dims["D"] + dims["A"] + width + 4 * dims["Hd"] + dims["C"] + 32
    return 4 * floats


def workspace_bytes(n: int, width: int, dims: Mapping[str, int]) -> int:
    """Global workspace: the projected memory keys, N * W * A floats."""
    return 4 * n * width * dims["A"]
