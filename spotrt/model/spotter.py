"""The end-to-end spotter: shared convolutional features feed proposals, detection and recognition."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from . import boxes as B
from . import pyramid
from .backbone import RecognitionFeatures, build_backbone
from .config import SpotterConfig
from .heads import AttentionDecoder, DetectionHead, RegionEncoder, TextProposalNetwork
from .roi_pool import var_roi_pool

DET_WEIGHTS = (10.0, 10.0, 5.0, 5.0)


@dataclass
class SpotterOutput:
    """Raw outputs with static shapes (K = max_proposals, T = max_word_len), as the exported graphs.

    boxes (B,K,4) refined boxes in input pixels; scores (B,K) detection probability; tokens (B,K,T)
    greedy token ids (0 = end); token_probs (B,K,T); proposals (B,K,4); count (B,) valid slots.
    """

    boxes: torch.Tensor
    scores: torch.Tensor
    tokens: torch.Tensor
    token_probs: torch.Tensor
    proposals: torch.Tensor
    count: torch.Tensor


class Detections(NamedTuple):
    """The valid regions of a batch after detection, ready for the decoder (`Spotter.detect`)."""

    valid: torch.Tensor      # (B, K) bool: which proposal slots hold a region
    boxes: torch.Tensor      # (N, 4) refined boxes of the N valid regions, clipped to the image
    det_logit: torch.Tensor  # (N,) text/non-text logit
    memory: torch.Tensor     # encoder outputs the decoder attends over
    mask: torch.Tensor
    holistic: torch.Tensor


class Pass(NamedTuple):
    """Stage 1 of one pass over the image: its stride-4 features, proposals in input pixels and
    their count, and the features' stride in those pixels (the pyramid's coarse pass: x factor)."""

    rec_feats: torch.Tensor
    proposals: torch.Tensor  # (B, K, 4)
    count: torch.Tensor      # (B,)
    stride: int


class Spotter(nn.Module):
    def __init__(self, cfg: SpotterConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.backbone = build_backbone(cfg.backbone, cfg.feat_channels)
        self.rec_features = RecognitionFeatures(self.backbone.c4_channels, cfg.feat_channels, cfg.rec_channels)
        self.tpn = TextProposalNetwork(cfg)
        self.encoder = RegionEncoder(cfg)
        self.detector = DetectionHead(cfg)
        self.decoder = AttentionDecoder(cfg)
        # Training-only auxiliary CTC head on the encoder's columns (class 0 = blank): it gives the
        # memory per-column character evidence early, which the attention decoder then locks onto.
        self.ctc = nn.Linear(cfg.encoder_hidden, cfg.num_classes)
        self._anchor_cache: dict[tuple[int, int], torch.Tensor] = {}

    def anchors(self, feat_h: int, feat_w: int, device) -> torch.Tensor:
        key = (feat_h, feat_w)
        c = self.cfg
        if key not in self._anchor_cache:
            self._anchor_cache[key] = B.make_level_anchors(c, feat_h, feat_w)
        return self._anchor_cache[key].to(device)

    def propose(self, logits, deltas, anchors, img_h: int, img_w: int, k: int | None = None,
                min_height: float = 0.0):
        """Top proposals per image after NMS -> boxes (B,K,4), scores (B,K), count (B,); `k` slots
        (default max_proposals), of boxes at least `min_height` tall (the pyramid's coarse pass)."""
        c = self.cfg
        b = logits.shape[0]
        k = c.max_proposals if k is None else k
        out_boxes = logits.new_zeros((b, k, 4))
        out_scores = logits.new_zeros((b, k))
        count = torch.zeros(b, dtype=torch.long, device=logits.device)
        for i in range(b):
            # rank by logit, not sigmoid: float32 sigmoid saturates and ties, logits rarely do, and
            # the exported graphs rank the same way
            scores = logits[i].detach()
            top = torch.topk(scores, min(c.pre_nms_top_n, scores.numel())).indices
            boxes = B.clip(B.decode(anchors[top], deltas[i, top].detach()), img_h, img_w)
            s = scores[top]
            wh = boxes[:, 2:] - boxes[:, :2]
            ok = (wh >= c.proposal_min_size).all(dim=1) & (wh[:, 1] >= min_height)
            boxes, s = boxes[ok], s[ok]
            keep = B.nms(boxes.cpu(), s.cpu(), c.proposal_nms_iou, k).to(boxes.device)
            n = len(keep)
            out_boxes[i, :n] = boxes[keep]
            out_scores[i, :n] = torch.sigmoid(s[keep])
            count[i] = n
        return out_boxes, out_scores, count

    def features(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Shared convolutional features -> (stride-8 for proposals, stride-4 for regions)."""
        x, c4 = images, None
        for i, layer in enumerate(self.backbone):
            x = layer(x)
            if i + 1 == self.backbone.split:
                c4 = x
        return x, self.rec_features(c4, x)

    def regions(self, rec_feats, rois, batch_index):
        """Pool and encode regions of the stride-4 features -> (memory, mask, holistic, widths)."""
        c = self.cfg
        pooled, widths = var_roi_pool(rec_feats, rois, batch_index, c.rec_stride, c.roi_height, c.roi_max_width)
        return (*self.encoder(pooled, widths), widths)

    def proposals_of(self, images: torch.Tensor):
        """Stage 1: shared features and text proposals -> (rec_feats, proposals (B,K,4), count (B,))."""
        feats, rec_feats = self.features(images)
        logits, deltas = self.tpn(feats)
        anchors = self.anchors(feats.shape[2], feats.shape[3], feats.device)
        proposals, _, count = self.propose(logits, deltas, anchors, images.shape[2], images.shape[3])
        return rec_feats, proposals, count

    def valid_regions(self, proposals, count):
        """The filled proposal slots -> (valid (B,K) bool, rois (N,4), batch_index (N,))."""
        valid = torch.arange(proposals.shape[1], device=proposals.device)[None, :] < count[:, None]
        return valid, proposals[valid], torch.nonzero(valid)[:, 0]

    def coarse_proposals(self, images: torch.Tensor, factor: int | None = None):
        """A coarse pass of the pyramid, stage 1: (its stride-4 features, proposals (B,K2,4) in the
        input's pixels, count (B,)) of the image averaged down `factor` times (default pyramid_factor)."""
        c = self.cfg
        f = factor or c.pyramid_factor
        small = pyramid.coarse_image(images, f)
        feats, rec_feats = self.features(small)
        logits, deltas = self.tpn(feats)
        anchors = self.anchors(feats.shape[2], feats.shape[3], feats.device)
        proposals, _, count = self.propose(logits, deltas, anchors, small.shape[2], small.shape[3],
                                           k=c.pyramid_proposals, min_height=c.pyramid_min_height / f)
        return rec_feats, proposals * f, count

    def passes_of(self, images: torch.Tensor) -> list[Pass]:
        """Stage 1 of every pass: the fine one, then the pyramid's coarse ones if the model has them."""
        c = self.cfg
        passes = [Pass(*self.proposals_of(images), c.rec_stride)]
        for f in c.pyramid_factors:
            passes.append(Pass(*self.coarse_proposals(images, f), c.rec_stride * f))
        return passes

    def detect(self, passes: list[Pass], img_h: int, img_w: int, pool=None) -> Detections:
        """Stage 2: pool every pass's valid proposals (each from its own features), encode them all in
        one call, score and refine their boxes. Regions are in slot order, the passes' slots side by
        side (B, K [+ K2]). `pool(features, rois, batch_index, stride) -> (pooled, widths)`: the
        pooling (default var_roi_pool; the bench passes the plugin's kernel)."""
        c = self.cfg
        pool = pool or (lambda f, r, i, s: var_roi_pool(f, r, i, s, c.roi_height, c.roi_max_width))
        slots = sum(p.proposals.shape[1] for p in passes)
        valids, rois, pooled, widths, keys, offset = [], [], [], [], [], 0
        for p in passes:
            valid, r, batch_index = self.valid_regions(p.proposals, p.count)
            pl, w = pool(p.rec_feats, r, batch_index, p.stride)
            valids.append(valid)
            rois.append(r)
            pooled.append(pl)
            widths.append(w.long())
            keys.append(batch_index * slots + offset + torch.nonzero(valid)[:, 1])
            offset += p.proposals.shape[1]
        rois, pooled, widths = torch.cat(rois), torch.cat(pooled), torch.cat(widths)
        if len(passes) > 1:  # regions in (image, slot) order, as torch.cat(valids, 1) lists them
            order = torch.argsort(torch.cat(keys))
            rois, pooled, widths = rois[order], pooled[order], widths[order]
        memory, mask, holistic = self.encoder(pooled, widths)
        det_logit, det_delta = self.detector(holistic)
        boxes = B.clip(B.decode(rois, det_delta, DET_WEIGHTS), img_h, img_w)
        return Detections(torch.cat(valids, dim=1), boxes, det_logit, memory, mask, holistic)

    def outputs(self, passes: list[Pass], d: Detections, tokens, probs) -> SpotterOutput:
        """Stage 3's readings of the detected regions -> the padded outputs; a pyramid model's passes
        merged and packed (spotrt/model/pyramid.py: the coarse passes' slots together as one group)."""
        c = self.cfg
        b, s = d.valid.shape
        proposals = torch.cat([p.proposals for p in passes], dim=1)
        out = SpotterOutput(
            boxes=proposals.new_zeros((b, s, 4)),
            scores=proposals.new_zeros((b, s)),
            tokens=torch.zeros((b, s, c.max_word_len), dtype=torch.long, device=proposals.device),
            token_probs=proposals.new_zeros((b, s, c.max_word_len)),
            proposals=proposals,
            count=passes[0].count,
        )
        out.boxes[d.valid] = d.boxes
        out.scores[d.valid] = torch.sigmoid(d.det_logit).to(out.scores.dtype)
        out.tokens[d.valid] = tokens.long()
        out.token_probs[d.valid] = probs.to(out.token_probs.dtype)
        if len(passes) == 1:
            return out
        k = c.max_proposals
        passes_out = [(out.boxes[:, sl], d.valid[:, sl], out.scores[:, sl], out.tokens[:, sl], out.token_probs[:, sl])
                      for sl in (slice(0, k), slice(k, None))]
        keep = pyramid.fine_kept(c, *passes_out)
        valid = torch.cat([keep, d.valid[:, k:]], dim=1)
        (boxes, scores, tokens, token_probs, proposals), count = pyramid.pack(
            valid, [out.boxes, out.scores, out.tokens, out.token_probs, out.proposals])
        return SpotterOutput(boxes, scores, tokens, token_probs, proposals, count)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> SpotterOutput:
        """Inference on normalized images (B,3,H,W), H and W multiples of the stride (of the stride
        times the largest pyramid factor for a pyramid model: its slots are the fine pass's and then
        the coarse passes', merged and packed by spotrt/model/pyramid.py)."""
        _, _, img_h, img_w = images.shape
        passes = self.passes_of(images)
        d = self.detect(passes, img_h, img_w)
        tokens, probs = self.decoder.greedy(d.memory, d.mask, d.holistic)  # stage 3: read
        return self.outputs(passes, d, tokens, probs)

    @torch.no_grad()
    def recognize(self, images: torch.Tensor, rois: torch.Tensor, batch_index: torch.Tensor):
        """Recognition only, on given regions -> tokens (N,T), token probabilities (N,T)."""
        _, rec_feats = self.features(images)
        memory, mask, holistic, _ = self.regions(rec_feats, rois, batch_index)
        return self.decoder.greedy(memory, mask, holistic)
