"""Export-only torch modules: Spotter.forward re-expressed with ONNX-friendly, static-shape ops.

Nothing here changes the model: the modules wrap a loaded `Spotter` and call its submodules
(backbone, tpn, encoder, detector, decoder) and its box helpers. What differs from
`Spotter.forward` is only how the data-dependent parts are written:

- proposals: per image (the batch is static and unrolled) TopK -> decode -> clip -> the min-size
  filter as a ranking score of -3e38 -> NonMaxSuppression (score threshold -1e38, at most K) ->
  indices padded to K with a Gather, and a valid count. Ranking is by the TPN logit, which orders
  like torch's sigmoid score but has no ties where float32 sigmoid saturates;
- every one of the N*K slots is pooled, encoded, detected and decoded (per-region computations are
  independent, so the valid slots equal the torch model's), then invalid slots are zeroed;
- pooling: one `spotrt::VarRoIPool` node (plugin graph) or GridSample per image (portable graph);
- decoding: one `spotrt::AttnDecoder` node (plugin graph) or the greedy decoder unrolled for
  max_word_len steps without the early stop (portable graph; ended regions are masked, so the
  result equals the early-stopping greedy decoder).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..model import boxes as B
from ..model import pyramid
from ..model.roi_pool import pooled_widths, var_roi_pool
from ..model.spotter import DET_WEIGHTS, Spotter
from ..plugins.attn_decoder.reference import WEIGHT_NAMES
from ..plugins.attn_decoder.spec import SPEC as DEC_SPEC
from ..plugins.spec import NAMESPACE
from ..plugins.var_roi_pool.spec import SPEC as ROI_SPEC

# Proposals are ranked by their logit, not sigmoid(logit): the same order, but without the ties of a
# float32 sigmoid that saturates at 1.0 (ties make TopK/NMS of different runtimes keep different boxes).
INVALID_SCORE = -3.0e38   # ranking score given to proposals below the minimum size
NMS_SCORE_THRESH = -1.0e38  # NonMaxSuppression drops scores <= this: exactly the invalid ones

_INT32 = 6  # onnx.TensorProto.INT32


def _const(g, value, dtype):
    return g.op("Constant", value_t=torch.tensor(value, dtype=dtype))


def _dim(value, i):
    sizes = value.type().sizes() if hasattr(value.type(), "sizes") else None
    return sizes[i] if sizes and i < len(sizes) else None


def _set_type(out, like, sizes, dtype=None):
    """Give a custom node's output a type and shape (the exporter cannot infer them)."""
    try:
        t = like.type().with_sizes(sizes)
        if dtype is not None:
            t = t.with_dtype(dtype)
        out.setType(t)
    except (RuntimeError, AttributeError, TypeError):
        pass


class _NMS(torch.autograd.Function):
    """Greedy NMS of one image's boxes -> kept indices (M,) int64, best first, M <= max_keep."""

    @staticmethod
    def forward(ctx, boxes, scores, iou: float, max_keep: int):
        cand = torch.nonzero(scores > NMS_SCORE_THRESH)[:, 0]
        keep = B.nms(boxes[cand].cpu(), scores[cand].cpu(), iou, max_keep).to(boxes.device)
        return cand[keep]

    @staticmethod
    def symbolic(g, boxes, scores, iou, max_keep):
        b = g.op("Unsqueeze", boxes, _const(g, [0], torch.int64))                      # (1,P,4)
        s = g.op("Unsqueeze", scores, _const(g, [0, 1], torch.int64))                  # (1,1,P)
        sel = g.op("NonMaxSuppression", b, s, _const(g, [max_keep], torch.int64),
                   _const(g, [iou], torch.float32), _const(g, [NMS_SCORE_THRESH], torch.float32),
                   center_point_box_i=0)                                               # (M,3)
        return g.op("Gather", sel, _const(g, 2, torch.int64), axis_i=1)               # (M,)


class _VarRoIPool(torch.autograd.Function):
    """The spotrt::VarRoIPool plugin node; eager forward = spotrt.model.roi_pool.var_roi_pool."""

    @staticmethod
    def forward(ctx, features, rois, batch_index, stride: int, height: int, max_width: int):
        pooled, widths = var_roi_pool(features, rois, batch_index.long(), stride, height, max_width)
        return pooled, widths.to(torch.int32)

    @staticmethod
    def symbolic(g, features, rois, batch_index, stride, height, max_width):
        pooled, widths = g.op(
            f"{NAMESPACE}::{ROI_SPEC.name}", features, rois, batch_index,
            stride_i=stride, pooled_height_i=height, max_width_i=max_width,
            plugin_namespace_s=NAMESPACE, plugin_version_s=ROI_SPEC.version, outputs=2,
        )
        _set_type(pooled, features, [_dim(rois, 0), _dim(features, 1), height, max_width])
        _set_type(widths, batch_index, [_dim(rois, 0)], torch.int64)
        # The TensorRT plugin writes int32 widths, the ONNX Runtime op int64: a Cast makes both int32.
        return pooled, g.op("Cast", widths, to_i=_INT32)


class _AttnDecoder(torch.autograd.Function):
    """The spotrt::AttnDecoder plugin node; eager forward = AttentionDecoder.greedy."""

    decoder: nn.Module | None = None  # set by PluginSpotter around tracing

    @staticmethod
    def forward(ctx, memory, widths, holistic, max_len: int, start_token: int, num_classes: int, *weights):
        state = torch._C._get_tracing_state()
        torch._C._set_tracing_state(None)  # the module calls inside must not be traced
        try:
            mask = torch.arange(memory.shape[1], device=memory.device)[None, :] < widths[:, None].long()
            tokens, probs = _AttnDecoder.decoder.greedy(memory, mask, holistic)
        finally:
            torch._C._set_tracing_state(state)
        return tokens.to(torch.int32), probs

    @staticmethod
    def symbolic(g, memory, widths, holistic, max_len, start_token, num_classes, *weights):
        tokens, probs = g.op(
            f"{NAMESPACE}::{DEC_SPEC.name}", memory, widths, holistic, *weights,
            max_len_i=max_len, start_token_i=start_token, num_classes_i=num_classes,
            plugin_namespace_s=NAMESPACE, plugin_version_s=DEC_SPEC.version, outputs=2,
        )
        _set_type(tokens, widths, [_dim(memory, 0), max_len])
        _set_type(probs, memory, [_dim(memory, 0), max_len])
        return tokens, probs


def portable_pool(features, rois, n_images: int, per_image: int, stride: int, height: int, max_width: int):
    """var_roi_pool for rois grouped by image (per_image consecutive rois each) with GridSample.

    The same sampling as spotrt.model.roi_pool.var_roi_pool -> (pooled (N,C,H,W_max), widths (N,) int64).
    """
    n = rois.shape[0]
    c, hf, wf = features.shape[1:]
    widths = pooled_widths(rois, height, max_width)
    x1, y1, x2, y2 = (rois[:, i : i + 1] for i in range(4))
    cols = torch.arange(max_width, dtype=rois.dtype).view(1, -1)
    rows = torch.arange(height, dtype=rois.dtype).view(1, -1)
    xs = x1 + (cols + 0.5) * (x2 - x1) / widths.view(-1, 1).to(rois.dtype)
    ys = y1 + (rows + 0.5) * (y2 - y1) / height
    gx = xs / (stride * wf) * 2 - 1
    gy = ys / (stride * hf) * 2 - 1
    grid = torch.stack([gx[:, None, :].expand(n, height, max_width), gy[:, :, None].expand(n, height, max_width)], dim=-1)
    chunks = []
    for b in range(n_images):
        g = grid[b * per_image : (b + 1) * per_image].reshape(1, per_image * height, max_width, 2)
        p = F.grid_sample(features[b : b + 1], g, mode="bilinear", padding_mode="zeros", align_corners=False)
        chunks.append(p.reshape(c, per_image, height, max_width).transpose(0, 1))
    pooled = torch.cat(chunks) if len(chunks) > 1 else chunks[0]
    mask = (cols.to(torch.long) < widths.view(-1, 1)).to(pooled.dtype)
    return pooled * mask[:, None, None, :], widths


def unrolled_greedy(decoder, memory, mask, holistic):
    """AttentionDecoder.greedy for all max_len steps (no early stop) -> tokens (N,T) int64, probs (N,T)."""
    n = memory.shape[0]
    state = decoder.init_state(holistic)
    mem_keys = decoder.mem_proj(memory)
    token = torch.full((n,), decoder.start, dtype=torch.long)
    ended = torch.zeros(n, dtype=torch.bool)
    tokens, probs = [], []
    for _ in range(decoder.max_len):
        lg, state, _ = decoder.step(token, state, memory, mem_keys, mask)
        p, token = torch.softmax(lg, dim=-1).max(dim=-1)
        token = token.masked_fill(ended, 0)
        tokens.append(token)
        probs.append(torch.where(ended, torch.ones_like(p), p))
        ended = ended | (token == 0)
    return torch.stack(tokens, dim=1), torch.stack(probs, dim=1)


class ExportSpotter(nn.Module):
    """images (N,3,H,W) -> boxes (N,K,4), scores (N,K), tokens (N,K,T) int32, token_probs (N,K,T), count (N,) int32."""

    def __init__(self, model: Spotter, input_size: tuple[int, int], batch: int, plugins: bool) -> None:
        super().__init__()
        self.model = model
        self.cfg = model.cfg
        self.input_size = tuple(input_size)
        self.batch = batch
        self.plugins = plugins
        c = model.cfg
        fh, fw = -(-input_size[0] // c.stride), -(-input_size[1] // c.stride)
        self.register_buffer("anchors", B.make_level_anchors(c, fh, fw), persistent=False)
        for f in c.pyramid_factors:
            ch, cw = -(-input_size[0] // (c.stride * f)), -(-input_size[1] // (c.stride * f))
            self.register_buffer(f"coarse_anchors_{f}", B.make_level_anchors(c, ch, cw), persistent=False)

    def propose_one(self, logits, deltas, anchors=None, k: int | None = None, min_height: float = 0.0,
                    size: tuple[int, int] | None = None):
        """One image's proposals (K,4) and count: by default the fine pass's; the pyramid's coarse
        pass gives its own anchors, K, minimum height and (averaged-down) image size."""
        c = self.cfg
        img_h, img_w = size or self.input_size
        k = c.max_proposals if k is None else k
        anchors = self.anchors if anchors is None else anchors
        s, top = torch.topk(logits, min(c.pre_nms_top_n, logits.shape[0]))
        boxes = B.clip(B.decode(anchors[top], deltas[top]), img_h, img_w)
        wh = boxes[:, 2:] - boxes[:, :2]
        ok = (wh >= c.proposal_min_size).all(dim=1)
        if min_height:
            ok = ok & (wh[:, 1] >= min_height)
        s = torch.where(ok, s, torch.full_like(s, INVALID_SCORE))
        keep = _NMS.apply(boxes, s, float(c.proposal_nms_iou), int(k))
        count = (keep >= 0).sum()
        padded = torch.cat([keep, torch.zeros(k, dtype=keep.dtype)])
        idx = padded[torch.arange(k)]
        valid = torch.arange(k) < count
        return boxes[idx] * valid[:, None].to(boxes.dtype), count

    def pool(self, feats, rois, k: int | None = None, stride: int | None = None):
        c = self.cfg
        n = self.batch
        k = c.max_proposals if k is None else k
        stride = stride or c.rec_stride
        if self.plugins:
            bidx = torch.arange(n, dtype=torch.int32).repeat_interleave(k)
            return _VarRoIPool.apply(feats, rois, bidx, stride, c.roi_height, c.roi_max_width)
        pooled, widths = portable_pool(feats, rois, n, k, stride, c.roi_height, c.roi_max_width)
        return pooled, widths

    def decode_text(self, memory, mask, widths, holistic):
        dec = self.model.decoder
        if self.plugins:
            c = self.cfg
            params = dict(dec.named_parameters())
            weights = [params[name] for name in WEIGHT_NAMES]
            _AttnDecoder.decoder = dec
            try:
                return _AttnDecoder.apply(memory, widths.to(torch.int32), holistic, c.max_word_len, c.start_token,
                                          c.num_classes, *weights)
            finally:
                _AttnDecoder.decoder = None
        tokens, probs = unrolled_greedy(dec, memory, mask, holistic)
        return tokens.to(torch.int32), probs

    def proposals_of(self, images, **coarse):
        """Stage 1 of a pass over `images` -> (its stride-4 features, proposals (N,K,4), count (N,))."""
        feats, rec_feats = self.model.features(images)
        logits, deltas = self.model.tpn(feats)
        props, counts = [], []
        for i in range(self.batch):
            p, cnt = self.propose_one(logits[i], deltas[i], **coarse)
            props.append(p)
            counts.append(cnt)
        return rec_feats, torch.stack(props), torch.stack(counts)

    def forward(self, images):
        c = self.cfg
        n = self.batch
        t = c.max_word_len
        img_h, img_w = self.input_size
        m = self.model
        rec_feats, proposals, count = self.proposals_of(images)             # (N,K,4), (N,)
        k = c.max_proposals
        rois = proposals.reshape(n * k, 4)
        pooled, widths = self.pool(rec_feats, rois)
        valid = torch.arange(k)[None, :] < count[:, None]                    # (N,K)
        k2 = c.pyramid_proposals
        coarse_counts = []
        for f in c.pyramid_factors:  # the coarse passes: their regions are encoded, scored and read with the fine ones
            rec_coarse, coarse_props, coarse_count = self.proposals_of(
                pyramid.coarse_image(images, f), anchors=getattr(self, f"coarse_anchors_{f}"), k=k2,
                min_height=c.pyramid_min_height / f, size=(img_h // f, img_w // f))
            coarse_rois = (coarse_props * f).reshape(n * k2, 4)
            coarse_pooled, coarse_widths = self.pool(rec_coarse, coarse_rois, k2, c.rec_stride * f)
            rois = torch.cat([rois, coarse_rois])
            pooled, widths = torch.cat([pooled, coarse_pooled]), torch.cat([widths, coarse_widths])
            coarse_counts.append(coarse_count)
        memory, mask, holistic = m.encoder(pooled, widths.long())
        det_logit, det_delta = m.detector(holistic)
        refined = B.clip(B.decode(rois, det_delta, DET_WEIGHTS), img_h, img_w)
        tokens, probs = self.decode_text(memory, mask, widths, holistic)
        scores = torch.sigmoid(det_logit)
        if not coarse_counts:
            vf = valid.to(refined.dtype)
            boxes = refined.reshape(n, k, 4) * vf[..., None]
            scores = scores.reshape(n, k) * vf
            tokens = torch.where(valid[..., None], tokens.reshape(n, k, t), torch.zeros_like(tokens.reshape(n, k, t)))
            probs = probs.reshape(n, k, t) * vf[..., None]
            return boxes, scores, tokens, probs, count.to(torch.int32)
        split = n * k
        fine = [refined[:split].reshape(n, k, 4), scores[:split].reshape(n, k), tokens[:split].reshape(n, k, t),
                probs[:split].reshape(n, k, t)]

        def level(x, i, *rest):  # coarse level i's (N*K2, ...) rows -> (N, K2, ...)
            return x[split + i * n * k2: split + (i + 1) * n * k2].reshape(n, k2, *rest)

        levels = range(len(coarse_counts))  # their slots side by side, as Spotter.outputs has them
        coarse = [torch.cat([level(x, i, *rest) for i in levels], dim=1)
                  for x, rest in ((refined, (4,)), (scores, ()), (tokens, (t,)), (probs, (t,)))]
        coarse_valid = torch.cat([torch.arange(k2)[None, :] < cnt[:, None] for cnt in coarse_counts], dim=1)
        keep = pyramid.fine_kept(c, (fine[0], valid, *fine[1:]), (coarse[0], coarse_valid, *coarse[1:]))
        both = [torch.cat([a, b], dim=1) for a, b in zip(fine, coarse)]
        (boxes, scores, tokens, probs), count = pyramid.pack(torch.cat([keep, coarse_valid], dim=1), both)
        return boxes, scores, tokens, probs, count.to(torch.int32)


class ExportReader(nn.Module):
    """Recognition only: image (1,3,H,W), rois (R,4) -> tokens (R,T) int32, token_probs (R,T). Standard ops."""

    def __init__(self, model: Spotter) -> None:
        super().__init__()
        self.model = model

    def forward(self, image, rois):
        c = self.model.cfg
        _, rec_feats = self.model.features(image)
        pooled, widths = portable_pool(rec_feats, rois, 1, rois.shape[0], c.rec_stride, c.roi_height, c.roi_max_width)
        memory, mask, holistic = self.model.encoder(pooled, widths)
        tokens, probs = unrolled_greedy(self.model.decoder, memory, mask, holistic)
        return tokens.to(torch.int32), probs
