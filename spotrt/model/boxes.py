"""Axis-aligned box helpers shared by the proposal network, the detection head and the targets.

Boxes are (x1, y1, x2, y2) in input-image pixels; deltas are the usual (dx, dy, dw, dh) with
dx, dy relative to the reference box's size and dw, dh in log space.
"""

from __future__ import annotations

import math

import numpy as np
import torch

DELTA_CLAMP = math.log(1000.0 / 16)


def make_anchors(heights, ratios, stride: int, feat_h: int, feat_w: int) -> torch.Tensor:
    """Anchors for a feature map, (feat_h * feat_w * A, 4), position-major then anchor."""
    shapes = torch.tensor([(h * r, h) for h in heights for r in ratios], dtype=torch.float32)
    ys = (torch.arange(feat_h, dtype=torch.float32) + 0.5) * stride
    xs = (torch.arange(feat_w, dtype=torch.float32) + 0.5) * stride
    cy, cx = torch.meshgrid(ys, xs, indexing="ij")
    centers = torch.stack([cx, cy], dim=-1).reshape(-1, 1, 2)
    half = shapes.reshape(1, -1, 2) / 2
    return torch.cat([centers - half, centers + half], dim=-1).reshape(-1, 4)


def level_size(feat_h: int, feat_w: int, level: int) -> tuple[int, int]:
    """Feature size of proposal level `level` (0 = the stride-8 features): each level halves it,
    rounding up, as a 3x3 convolution with stride 2 and padding 1 does."""
    for _ in range(level):
        feat_h, feat_w = (feat_h + 1) // 2, (feat_w + 1) // 2
    return feat_h, feat_w


def make_level_anchors(cfg, feat_h: int, feat_w: int) -> torch.Tensor:
    """Anchors of every proposal level of `cfg`, concatenated finest level first, (N, 4); the order
    of the proposal network's concatenated outputs. `feat_h, feat_w`: the stride-8 feature size."""
    parts = []
    for level, (stride, heights) in enumerate(cfg.proposal_levels):
        fh, fw = level_size(feat_h, feat_w, level)
        parts.append(make_anchors(heights, cfg.anchor_ratios, stride, fh, fw))
    return torch.cat(parts) if len(parts) > 1 else parts[0]


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU of (N,4) and (M,4) boxes -> (N,M)."""
    area_a = (a[:, 2] - a[:, 0]).clamp(min=0) * (a[:, 3] - a[:, 1]).clamp(min=0)
    area_b = (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (area_a[:, None] + area_b[None, :] - inter).clamp(min=1e-6)


def box_ioa(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise share of each (..., N,4) box `a` covered by each (..., M,4) box `b` -> (..., N,M);
    leading dimensions (a batch) are matched."""
    area_a = (a[..., 2] - a[..., 0]).clamp(min=0) * (a[..., 3] - a[..., 1]).clamp(min=0)
    lt = torch.maximum(a[..., :, None, :2], b[..., None, :, :2])
    rb = torch.minimum(a[..., :, None, 2:], b[..., None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    return wh[..., 0] * wh[..., 1] / area_a[..., None].clamp(min=1e-6)


def encode(ref: torch.Tensor, target: torch.Tensor, weights=(1.0, 1.0, 1.0, 1.0)) -> torch.Tensor:
    rw = (ref[:, 2] - ref[:, 0]).clamp(min=1e-3)
    rh = (ref[:, 3] - ref[:, 1]).clamp(min=1e-3)
    tw = (target[:, 2] - target[:, 0]).clamp(min=1e-3)
    th = (target[:, 3] - target[:, 1]).clamp(min=1e-3)
    dx = ((target[:, 0] + target[:, 2]) - (ref[:, 0] + ref[:, 2])) / 2 / rw
    dy = ((target[:, 1] + target[:, 3]) - (ref[:, 1] + ref[:, 3])) / 2 / rh
    d = torch.stack([dx, dy, torch.log(tw / rw), torch.log(th / rh)], dim=-1)
    return d * torch.tensor(weights, dtype=d.dtype, device=d.device)


def decode(ref: torch.Tensor, deltas: torch.Tensor, weights=(1.0, 1.0, 1.0, 1.0)) -> torch.Tensor:
    deltas = deltas / torch.tensor(weights, dtype=deltas.dtype, device=deltas.device)
    rw = ref[..., 2] - ref[..., 0]
    rh = ref[..., 3] - ref[..., 1]
    cx = (ref[..., 0] + ref[..., 2]) / 2 + deltas[..., 0] * rw
    cy = (ref[..., 1] + ref[..., 3]) / 2 + deltas[..., 1] * rh
    w = rw * torch.exp(deltas[..., 2].clamp(max=DELTA_CLAMP))
    h = rh * torch.exp(deltas[..., 3].clamp(max=DELTA_CLAMP))
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1)


def clip(boxes: torch.Tensor, height: float, width: float) -> torch.Tensor:
    x = boxes[..., 0::2].clamp(0, width)
    y = boxes[..., 1::2].clamp(0, height)
    return torch.stack([x[..., 0], y[..., 0], x[..., 1], y[..., 1]], dim=-1)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_thresh: float, max_keep: int) -> torch.Tensor:
    """Greedy non-maximum suppression; indices of kept boxes in descending score order."""
    if boxes.shape[0] == 0:
        return torch.zeros(0, dtype=torch.long)
    order = torch.argsort(scores, descending=True)
    iou = (box_iou(boxes[order], boxes[order]) > iou_thresh).numpy()
    suppressed = np.zeros(len(order), dtype=bool)
    keep: list[int] = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(i)
        if len(keep) == max_keep:
            break
        suppressed |= iou[i]
    return order[torch.tensor(keep, dtype=torch.long)]
