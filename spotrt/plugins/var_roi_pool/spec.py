"""VarRoIPool: name, attributes with valid ranges, tolerances and kernel launch shape."""

from __future__ import annotations

from pathlib import Path

from ..spec import IntAttribute, PluginSpec

SPEC = PluginSpec(
    name="VarRoIPool",
    version="1",
    attributes=(
        IntAttribute("stride", 1, 64, "image pixels per feature cell"),
        IntAttribute("pooled_height", 1, 64, "H: rows of every pooled region"),
        IntAttribute("max_width", 1, 512, "W_max: columns of the output; a region's width W_i <= W_max"),
    ),
    tolerances={"float32": 1e-5, "float16": 1e-2},
    kernel=Path(__file__).with_name("kernel.cu"),
    inputs=("features", "rois", "batch_index"),
    outputs=("pooled", "widths"),
)

KERNEL_NAME = "var_roi_pool_fp32"
BLOCK = 256
MAX_GRID = 65535


def validate(attrs) -> dict[str, int]:
    """Check VarRoIPool attributes {stride, pooled_height, max_width}; ValueError names the bad one."""
    return SPEC.validate(attrs)


def grid_size(total: int, block: int = BLOCK, max_grid: int = MAX_GRID) -> int:
    """Blocks for `total` output elements; the kernel's grid-stride loop covers what a capped grid leaves."""
    return max(1, min(-(-total // block), max_grid))
