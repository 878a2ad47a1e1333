"""The end-to-end spotter: shared convolutional features feed proposals, detection and recognition."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from . import boxes as B
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

    def propose(self, logits, deltas, anchors, img_h: int, img_w: int):
        """Top proposals per image after NMS -> boxes (B,K,4), scores (B,K), count (B,)."""
        c = self.cfg
        b = logits.shape[0]
        k = c.max_proposals
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
            ok = (wh >= c.proposal_min_size).all(dim=1)
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
        """Pool and encode regions -> (memory, mask, holistic, widths)."""
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
        valid = torch.arange(self.cfg.max_proposals, device=proposals.device)[None, :] < count[:, None]
        return valid, proposals[valid], torch.nonzero(valid)[:, 0]

    def detect(self, rec_feats, proposals, count, img_h: int, img_w: int) -> Detections:
        """Stage 2: pool and encode the valid proposals, score and refine their boxes."""
        valid, rois, batch_index = self.valid_regions(proposals, count)
        memory, mask, holistic, _ = self.regions(rec_feats, rois, batch_index)
        det_logit, det_delta = self.detector(holistic)
        boxes = B.clip(B.decode(rois, det_delta, DET_WEIGHTS), img_h, img_w)
        return Detections(valid, boxes, det_logit, memory, mask, holistic)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> SpotterOutput:
        """Inference on normalized images (B,3,H,W), H and W multiples of the stride."""
        c = self.cfg
        b, _, img_h, img_w = images.shape
        rec_feats, proposals, count = self.proposals_of(images)
        d = self.detect(rec_feats, proposals, count, img_h, img_w)
        tokens, probs = self.decoder.greedy(d.memory, d.mask, d.holistic)  # stage 3: read
        k, t = c.max_proposals, c.max_word_len
        out = SpotterOutput(
            boxes=proposals.new_zeros((b, k, 4)),
            scores=proposals.new_zeros((b, k)),
            tokens=torch.zeros((b, k, t), dtype=torch.long, device=images.device),
            token_probs=proposals.new_zeros((b, k, t)),
            proposals=proposals,
            count=count,
        )
        out.boxes[d.valid] = d.boxes
        out.scores[d.valid] = torch.sigmoid(d.det_logit)
        out.tokens[d.valid] = tokens
        out.token_probs[d.valid] = probs
        return out

    @torch.no_grad()
    def recognize(self, images: torch.Tensor, rois: torch.Tensor, batch_index: torch.Tensor):
        """Recognition only, on given regions -> tokens (N,T), token probabilities (N,T)."""
        _, rec_feats = self.features(images)
        memory, mask, holistic, _ = self.regions(rec_feats, rois, batch_index)
        return self.decoder.greedy(memory, mask, holistic)
