"""AttnDecoder for TensorRT, the parts without TensorRT: shape checks, sizes, workspace, launch geometry."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..trt_support import PluginShapeError, dims, require
from .reference import WEIGHT_NAMES, decoder_dims
from .spec import BLOCK, SPEC, shared_bytes, validate, workspace_bytes

NUM_INPUTS = len(SPEC.inputs)    # memory, widths, holistic, 13 weights
NUM_OUTPUTS = len(SPEC.outputs)  # tokens, probs
MAX_SHARED_BYTES = 48 * 1024     # dynamic shared memory available without opting in, on every GPU


def sizes(shapes: Sequence[Sequence[int]], attrs: Mapping[str, int]) -> dict[str, int]:
    """N, W and the decoder sizes (V, E, D, Hd, A, C) from the input shapes; PluginShapeError names a bad one."""
    require(len(shapes) == NUM_INPUTS, f"AttnDecoder: found {len(shapes)} inputs, expected {NUM_INPUTS} {SPEC.inputs}")
    m, w, h = (dims(s) for s in shapes[:3])
    # Zero-strided views: decoder_dims reads only the shapes, no memory is allocated.
    weights = {k: np.broadcast_to(np.float32(0), dims(s)) for k, s in zip(WEIGHT_NAMES, shapes[3:])}
    try:
        d = decoder_dims(weights)
        validate(attrs, weights)
    except ValueError as exc:
        raise PluginShapeError(f"AttnDecoder: {exc}") from None
    require(len(m) == 3 and m[2] == d["D"], f"AttnDecoder input memory: found shape {m}, expected (N, W, {d['D']})")
    require(w == (m[0],), f"AttnDecoder input widths: found shape {w}, expected ({m[0]},)")
    require(h == (m[0], d["D"]), f"AttnDecoder input holistic: found shape {h}, expected ({m[0]}, {d['D']})")
    return {"N": m[0], "W": m[1], **d}


def output_shapes(memory: Sequence[int], attrs: Mapping[str, int]) -> tuple[tuple, tuple]:
    """tokens (N, T) and probs (N, T)."""
    return (int(memory[0]), attrs["max_len"]), (int(memory[0]), attrs["max_len"])


def workspace(shapes: Sequence[Sequence[int]], attrs: Mapping[str, int]) -> int:
    """Bytes of the workspace TensorRT must give enqueue: the projected memory keys."""
    s = sizes(shapes, attrs)
    return workspace_bytes(s["N"], s["W"], s)


def launch(shapes: Sequence[Sequence[int]], attrs: Mapping[str, int], block: int = BLOCK) -> tuple[int, int, int, list]:
    """(grid, block, dynamic shared bytes, scalar args after the 19 pointers) of attn_decoder_fp32."""
    s = sizes(shapes, attrs)
    shm = shared_bytes(s, s["W"], block)
    if shm > MAX_SHARED_BYTES:
        raise PluginShapeError(f"AttnDecoder: needs {shm} bytes of shared memory for W={s['W']}, expected at most "
                               f"{MAX_SHARED_BYTES} (smaller max_width or decoder sizes)")
    scalars = [np.int32(v) for v in (s["N"], s["W"], s["D"], s["E"], s["Hd"], s["A"], s["C"], attrs["max_len"],
                                      attrs["start_token"])]
    return max(s["N"], 1), block, shm, scalars
