"""Varying-size RoI pooling (the paper's section 3.2).

Each region is pooled to a fixed height H and a width W_i = clamp(ceil(H * w / h), 1, W_max) that
follows its aspect ratio; columns at or past W_i are zero and masked. Each output cell takes one
bilinear sample at its centre (RoiAlign with sampling_ratio=1 and half-pixel alignment), so a
region's features are spread over as many columns as its shape needs. The NumPy reference of the
same op lives in spotrt/plugins/var_roi_pool/reference.py.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pooled_widths(rois: torch.Tensor, height: int, max_width: int) -> torch.Tensor:
    """W_i for (N,4) rois: ceil(H * w / h) clamped to [1, W_max]."""
    w = (rois[:, 2] - rois[:, 0]).clamp(min=1e-3)
    h = (rois[:, 3] - rois[:, 1]).clamp(min=1e-3)
    return torch.ceil(height * w / h).clamp(1, max_width).to(torch.long)


def var_roi_pool(
    features: torch.Tensor,
    rois: torch.Tensor,
    batch_index: torch.Tensor,
    stride: int,
    height: int,
    max_width: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pool (N,4) image-space rois of `features` (B,C,Hf,Wf) -> ((N,C,H,W_max), widths (N,))."""
    n = rois.shape[0]
    c, hf, wf = features.shape[1:]
    if n == 0:
        return features.new_zeros((0, c, height, max_width)), torch.zeros(0, dtype=torch.long)
    widths = pooled_widths(rois, height, max_width)
    x1, y1, x2, y2 = (rois[:, i : i + 1] for i in range(4))
    cols = torch.arange(max_width, dtype=rois.dtype, device=rois.device).view(1, -1)
    rows = torch.arange(height, dtype=rois.dtype, device=rois.device).view(1, -1)
    # Sample centres in image pixels; column j of region i covers (x2 - x1) / W_i pixels.
    xs = x1 + (cols + 0.5) * (x2 - x1) / widths.view(-1, 1).to(rois.dtype)
    ys = y1 + (rows + 0.5) * (y2 - y1) / height
    # grid_sample(align_corners=False) maps -1..1 to the feature map's outer edges, and feature
    # cell k covers image pixels [k*stride, (k+1)*stride).
    gx = xs / (stride * wf) * 2 - 1
    gy = ys / (stride * hf) * 2 - 1
    grid = torch.stack(torch.broadcast_tensors(gx[:, None, :], gy[:, :, None]), dim=-1)
    # One grid_sample per image over all its regions (indexing the features per region would copy
    # the whole map once per region); regions are grouped by image and put back in their order.
    order = torch.argsort(batch_index, stable=True)
    counts = torch.bincount(batch_index, minlength=features.shape[0]).tolist()
    chunks, start = [], 0
    for b, k in enumerate(counts):
        if k == 0:
            continue
        g = grid[order[start : start + k]].reshape(1, k * height, max_width, 2)
        p = F.grid_sample(features[b : b + 1], g, mode="bilinear", padding_mode="zeros", align_corners=False)
        chunks.append(p.reshape(c, k, height, max_width).transpose(0, 1))
        start += k
    pooled = torch.cat(chunks)
    if not bool((order == torch.arange(n, device=order.device)).all()):
        pooled = pooled[torch.argsort(order)]
    mask = (cols.to(torch.long) < widths.view(-1, 1)).to(pooled.dtype)
    return pooled * mask[:, None, None, :], widths
