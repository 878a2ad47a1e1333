"""Training targets: anchor labels for the proposal network, region labels for the heads."""

from __future__ import annotations

import torch

from . import boxes as B
from .spotter import DET_WEIGHTS


def encode_text(text: str, charset: str, max_len: int) -> torch.Tensor | None:
    """Text -> (max_len,) token ids with end-of-word 0 after it and -100 (ignored) past it.

    A word of exactly max_len characters has no end token (the greedy decoder stops at max_len).
    None when the text is empty, longer than max_len or has a character outside the charset.
    """
    if not text or len(text) >= max_len + 1 or any(ch not in charset for ch in text):
        return None
    ids = [charset.index(ch) + 1 for ch in text] + [0]
    out = torch.full((max_len,), -100, dtype=torch.long)
    out[: len(ids)] = torch.tensor(ids[:max_len])
    return out


def sample_labels(labels: torch.Tensor, num: int, pos_fraction: float, gen: torch.Generator) -> torch.Tensor:
    """Keep at most num labels (pos_fraction of them positive); others become -1 (ignored)."""
    out = labels.clone()
    pos = torch.nonzero(labels == 1).flatten()
    neg = torch.nonzero(labels == 0).flatten()
    n_pos = min(len(pos), int(num * pos_fraction))
    n_neg = min(len(neg), num - n_pos)
    if len(pos) > n_pos:
        out[pos[torch.randperm(len(pos), generator=gen)[n_pos:]]] = -1
    if len(neg) > n_neg:
        out[neg[torch.randperm(len(neg), generator=gen)[n_neg:]]] = -1
    return out


IGNORE_IOA = 0.5  # a negative this much inside an ignored region is neither positive nor negative


def _ignore_negatives(labels: torch.Tensor, boxes: torch.Tensor, ignore: torch.Tensor | None) -> None:
    """Negatives mostly inside an ignored region (don't care, or a word cut by a crop) become -1."""
    if ignore is None or ignore.shape[0] == 0:
        return
    neg = torch.nonzero(labels == 0).flatten()
    if len(neg):
        inside = B.box_ioa(boxes[neg], ignore).max(dim=1).values >= IGNORE_IOA
        labels[neg[inside]] = -1


def anchor_targets(anchors, gt_boxes, gen, pos_iou=0.5, neg_iou=0.3, num=256, pos_fraction=0.5, ignore=None):
    """-> labels (A,) 1/0/-1 and regression targets (A,4) for one image.

    Positives: IoU >= pos_iou, and for every word the anchors of its highest IoU (so small and very
    wide words still get one). `ignore` (M,4): regions where no anchor is a negative.
    """
    a = anchors.shape[0]
    labels = torch.full((a,), -1, dtype=torch.long)
    reg = torch.zeros((a, 4))
    if gt_boxes.shape[0] == 0:
        labels[:] = 0
        _ignore_negatives(labels, anchors, ignore)
        return sample_labels(labels, num, pos_fraction, gen), reg
    iou = B.box_iou(anchors, gt_boxes)
    best_iou, best_gt = iou.max(dim=1)
    labels[best_iou < neg_iou] = 0
    labels[best_iou >= pos_iou] = 1
    gt_best = iou.max(dim=0).values
    for j in range(gt_boxes.shape[0]):
        if gt_best[j] > 0.1:
            hits = torch.nonzero(iou[:, j] >= gt_best[j] - 1e-6).flatten()
            labels[hits] = 1
            best_gt[hits] = j
    _ignore_negatives(labels, anchors, ignore)
    reg = B.encode(anchors, gt_boxes[best_gt])
    return sample_labels(labels, num, pos_fraction, gen), reg


def jitter_boxes(gt_boxes: torch.Tensor, gen: torch.Generator, copies: int, amount: float = 0.12) -> torch.Tensor:
    """Copies of each box shifted and scaled by up to `amount` of its height."""
    if gt_boxes.shape[0] == 0 or copies == 0:
        return gt_boxes.new_zeros((0, 4))
    g = gt_boxes.repeat(copies, 1)
    h = (g[:, 3] - g[:, 1]).clamp(min=1)[:, None]
    noise = (torch.rand(g.shape, generator=gen) * 2 - 1) * amount * h
    return g + noise


def region_targets(rois, gt_boxes, gen, pos_iou=0.5, neg_iou=0.4, num=32, pos_fraction=0.5, ignore=None):
    """-> labels (R,), regression targets (R,4), matched word index (R,) and IoU (R,).

    `ignore` (M,4): regions where no roi is a negative."""
    r = rois.shape[0]
    if gt_boxes.shape[0] == 0:
        labels = torch.zeros(r, dtype=torch.long)
        _ignore_negatives(labels, rois, ignore)
        labels = sample_labels(labels, num, pos_fraction, gen)
        return labels, torch.zeros((r, 4)), torch.full((r,), -1, dtype=torch.long), torch.zeros(r)
    iou = B.box_iou(rois, gt_boxes)
    best_iou, best_gt = iou.max(dim=1)
    labels = torch.full((r,), -1, dtype=torch.long)
    labels[best_iou < neg_iou] = 0
    labels[best_iou >= pos_iou] = 1
    _ignore_negatives(labels, rois, ignore)
    labels = sample_labels(labels, num, pos_fraction, gen)
    reg = B.encode(rois, gt_boxes[best_gt], DET_WEIGHTS)
    return labels, reg, best_gt, best_iou
