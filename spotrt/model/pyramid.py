"""The coarse passes of a pyramid spotter (config `pyramid_factor`, `pyramid_levels`): text taller
than the anchors.

The anchors stop at about 70 px and the stride-4 features that regions are pooled from see less
than a 100-px letter, so a large word is found in pieces and misread. Read averaged down by the
factor, the same word is the size the network was trained on. One network call runs both passes
with the same weights: the fine pass as always, and a coarse pass over the image averaged down
(`coarse_image`) that proposes only regions at least `pyramid_min_height` input pixels tall and
pools them from its own stride-4 features (stride `rec_stride * factor` in input pixels). Their
regions are encoded, scored and read together. With `pyramid_levels` 2 a second coarse pass reads
the image averaged down twice as much again (factors 2 and 4: text up to about 270 px); the coarse
passes' slots form one group below.

Which slots a call reports (`fine_kept`): every coarse region, and every fine region except those
mostly inside (`IOA`) a coarse region that reads as a word the model would report (detection score
and word score at or above the model's thresholds) with a higher word score than the fine one's:
pieces of the large word, which the IoU rule of the final NMS cannot remove (a piece overlaps its
word little). Without the word-score condition a coarse box spanning a line of well-read words
took them all (held-out synthetic validation scenes, level 0: end-to-end 0.960 -> 0.909; with it
0.965). Then the kept slots are packed first (`pack`), so the outputs keep their meaning (K =
`output_slots`, a valid count); the usual thresholds and NMS (postprocess.words_of) follow.
`Spotter.forward` and the exported graphs (spotrt/export/graph.py) both call these functions, so
every backend merges the passes the same way; all of it is ONNX-exportable (AveragePool, CumSum,
TopK, GatherElements).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import boxes as B

IOA = 0.5  # share of a fine region inside a coarse word above which it is taken as a piece of it


def coarse_image(images: torch.Tensor, factor: int) -> torch.Tensor:
    """(B,3,H,W) normalized images -> averaged down `factor` times (each output pixel the mean of a
    factor x factor block: what cv2.INTER_AREA gives at that scale). H and W: multiples of it."""
    return F.avg_pool2d(images, factor)


def read_confidence(tokens: torch.Tensor, probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Greedy tokens and their probabilities (..., T) -> (mean probability of the characters and the
    end token, number of characters): postprocess.text_confidence in static-shape tensor ops."""
    t = tokens.shape[-1]
    ended = torch.cumsum((tokens == 0).to(probs.dtype), dim=-1) > 0   # at or after the first end token
    length = (~ended).to(probs.dtype).sum(-1)
    positions = torch.arange(t, dtype=probs.dtype, device=probs.device)
    read = (positions <= length[..., None]).to(probs.dtype)           # the characters and the end token
    return (probs * read).sum(-1) / read.sum(-1), length


def fine_kept(cfg, fine, coarse):
    """(B,K) fine slots to report. `fine` and `coarse`: (boxes (B,S,4), valid (B,S), detection scores
    (B,S), tokens (B,S,T), token probabilities (B,S,T)) of each pass. A fine slot is kept unless it is
    mostly inside a coarse region that reads as a reported word (detection score >= score_thresh, a
    non-empty reading, word score >= word_score_thresh) with a higher word score than its own."""
    boxes, valid, scores, tokens, probs = fine
    c_boxes, c_valid, c_scores, c_tokens, c_probs = coarse
    conf, length = read_confidence(c_tokens, c_probs)
    word = c_scores * conf
    claims = c_valid & (c_scores >= cfg.score_thresh) & (length > 0) & (word >= cfg.word_score_thresh)
    own = scores * read_confidence(tokens, probs)[0]
    inside = (B.box_ioa(boxes, c_boxes) > IOA) & claims[:, None, :] & (word[:, None, :] > own[:, :, None])
    return valid & ~inside.any(dim=-1)


def pack(valid: torch.Tensor, tensors: list[torch.Tensor]) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Valid slots first, each group in slot order: (B,S) valid and (B,S,...) tensors -> (the tensors
    reordered, with the invalid slots zeroed, and the valid count (B,))."""
    b, s = valid.shape
    slots = torch.arange(s, dtype=torch.float32, device=valid.device)
    key = valid.to(torch.float32) * (s + 1) - slots          # valid slots rank above every invalid one
    order = torch.topk(key, s, dim=1).indices
    out = []
    for t in tensors:
        zeroed = torch.where(valid.view(b, s, *([1] * (t.dim() - 2))), t, torch.zeros_like(t))
        index = order.view(b, s, *([1] * (t.dim() - 2))).expand_as(t)
        out.append(torch.gather(zeroed, 1, index))
    return out, valid.sum(dim=1)
