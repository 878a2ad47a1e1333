"""NumPy reference of varying-size RoI pooling: the definition of the op (no torch here).

This is the specification that spotrt.model.roi_pool.var_roi_pool (torch) and the CUDA/TensorRT
plugins implement. It is written for clarity, not speed: a plain loop over regions with vectorized
NumPy inside.

Inputs
    features     (B, C, Hf, Wf) float32, a feature map of stride `stride` (feature cell k covers
                 image pixels [k * stride, (k + 1) * stride), its centre is at (k + 0.5) * stride)
    rois         (N, 4) x1, y1, x2, y2 in input-image pixels
    batch_index  (N,) integer, the image of each region, in any order
    stride, height (H), max_width (W_max)

Outputs
    pooled       (N, C, H, W_max) float32
    widths       (N,) int64

Definition, for region i with w = x2 - x1 and h = y2 - y1:

    W_i = clamp(ceil(H * max(w, 1e-3) / max(h, 1e-3)), 1, W_max)     (computed in float32)

    For rows r < H and columns j < W_i, cell (r, j) is ONE bilinear sample of the feature map of
    image batch_index[i] at the image point

        x = x1 + (j + 0.5) * w / W_i,      y = y1 + (r + 0.5) * h / H,

    i.e. at feature coordinates fx = x / stride - 0.5, fy = y / stride - 0.5, where integer
    (fx, fy) are cell centres. With x0 = floor(fx), y0 = floor(fy), ax = fx - x0, ay = fy - y0:

        value = (1-ay)(1-ax) F[y0, x0] + (1-ay) ax F[y0, x0+1] + ay (1-ax) F[y0+1, x0] + ay ax F[y0+1, x0+1]

    where a neighbour outside [0, Wf-1] x [0, Hf-1] contributes 0 (zero padding). This is exactly
    torch.nn.functional.grid_sample(mode='bilinear', padding_mode='zeros', align_corners=False).

    Cells with j >= W_i are exactly 0.

The clamp to 1e-3 only guards the width computation; the sample positions use the rois' own
extents w and h (they differ only for degenerate rois narrower or lower than 1e-3 pixel).
"""

from __future__ import annotations

import numpy as np

MIN_EXTENT = 1e-3


def pooled_widths_ref(rois: np.ndarray, height: int, max_width: int) -> np.ndarray:
    """W_i = clamp(ceil(H * w / h), 1, W_max) with w, h clamped to >= 1e-3, in float32."""
    rois = np.asarray(rois, dtype=np.float32).reshape(-1, 4)
    w = np.maximum(rois[:, 2] - rois[:, 0], np.float32(MIN_EXTENT))
    h = np.maximum(rois[:, 3] - rois[:, 1], np.float32(MIN_EXTENT))
    ratio = (np.float32(height) * w) / h
    return np.clip(np.ceil(ratio), 1, max_width).astype(np.int64)


def _bilinear_zeros(fmap: np.ndarray, fx: np.ndarray, fy: np.ndarray) -> np.ndarray:
    """Sample fmap (C, Hf, Wf) at feature coordinates fx (W,), fy (H,) -> (C, H, W); zero padding."""
    c, hf, wf = fmap.shape
    x0 = np.floor(fx).astype(np.int64)
    y0 = np.floor(fy).astype(np.int64)
    ax = fx - x0
    ay = fy - y0
    out = np.zeros((c, fy.shape[0], fx.shape[0]), dtype=np.float64)
    for dy, wy in ((0, 1.0 - ay), (1, ay)):
        yy = y0 + dy
        vy = (yy >= 0) & (yy <= hf - 1)
        for dx, wx in ((0, 1.0 - ax), (1, ax)):
            xx = x0 + dx
            vx = (xx >= 0) & (xx <= wf - 1)
            weight = (wy * vy)[:, None] * (wx * vx)[None, :]
            vals = fmap[:, np.clip(yy, 0, hf - 1)[:, None], np.clip(xx, 0, wf - 1)[None, :]]
            out += vals * weight[None]
    return out


def var_roi_pool_ref(
    features: np.ndarray,
    rois: np.ndarray,
    batch_index: np.ndarray,
    stride: int,
    height: int,
    max_width: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Pool (N,4) image-space rois of `features` (B,C,Hf,Wf) -> ((N,C,H,W_max) float32, widths (N,) int64).

    See the module docstring for the definition.
    """
    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 4:
        raise ValueError(f"features: found shape {features.shape}, expected (B,C,Hf,Wf)")
    rois = np.asarray(rois, dtype=np.float32).reshape(-1, 4)
    batch_index = np.asarray(batch_index, dtype=np.int64).reshape(-1)
    if batch_index.shape[0] != rois.shape[0]:
        raise ValueError(f"batch_index: found {batch_index.shape[0]} entries, expected {rois.shape[0]} (one per roi)")
    n = rois.shape[0]
    c = features.shape[1]
    pooled = np.zeros((n, c, height, max_width), dtype=np.float32)
    widths = pooled_widths_ref(rois, height, max_width)
    for i in range(n):
        x1, y1, x2, y2 = (float(v) for v in rois[i])
        wi = int(widths[i])
        xs = x1 + (np.arange(wi) + 0.5) * (x2 - x1) / wi
        ys = y1 + (np.arange(height) + 0.5) * (y2 - y1) / height
        fx = xs / stride - 0.5
        fy = ys / stride - 0.5
        pooled[i, :, :, :wi] = _bilinear_zeros(features[batch_index[i]].astype(np.float64), fx, fy)
    return pooled, widths
