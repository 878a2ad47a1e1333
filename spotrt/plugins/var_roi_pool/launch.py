"""VarRoIPool for TensorRT, the parts without TensorRT: shape checks, output shapes, launch geometry."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..trt_support import dims, require
from .spec import BLOCK, SPEC, grid_size

NUM_INPUTS = len(SPEC.inputs)    # features, rois, batch_index
NUM_OUTPUTS = len(SPEC.outputs)  # pooled, widths


def check_input_shapes(shapes: Sequence[Sequence[int]]) -> tuple[tuple[int, ...], ...]:
    """features (B,C,Hf,Wf), rois (N,4), batch_index (N,); PluginShapeError naming the bad tensor."""
    require(len(shapes) == NUM_INPUTS, f"VarRoIPool: found {len(shapes)} inputs, expected {NUM_INPUTS} {SPEC.inputs}")
    f, r, b = (dims(s) for s in shapes)
    require(len(f) == 4, f"VarRoIPool input features: found shape {f}, expected (B, C, Hf, Wf)")
    require(len(r) == 2 and r[1] == 4, f"VarRoIPool input rois: found shape {r}, expected (N, 4)")
    require(b == (r[0],), f"VarRoIPool input batch_index: found shape {b}, expected ({r[0]},) (one per roi)")
    return f, r, b


def output_shapes(features: Sequence[int], rois: Sequence[int], attrs: Mapping[str, int]) -> tuple[tuple, tuple]:
    """pooled (N, C, H, W_max) and widths (N,) for static input shapes."""
    return (int(rois[0]), int(features[1]), attrs["pooled_height"], attrs["max_width"]), (int(rois[0]),)


def launch(shapes: Sequence[Sequence[int]], attrs: Mapping[str, int]) -> tuple[int, int, list]:
    """(grid, block, scalar args after the five pointers) of var_roi_pool_fp32."""
    f, r, _ = check_input_shapes(shapes)
    n = r[0]
    total = n * f[1] * attrs["pooled_height"] * attrs["max_width"]
    scalars = [np.int32(v) for v in (n, f[1], f[2], f[3], f[0], attrs["stride"], attrs["pooled_height"], attrs["max_width"])]
    return grid_size(total), BLOCK, scalars
