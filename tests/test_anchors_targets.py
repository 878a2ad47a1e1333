"""Anchors, box helpers and training targets (spotrt.model.boxes, spotrt.model.targets)."""
from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from spotrt.model import boxes as B  # noqa: E402
from spotrt.model.config import SpotterConfig  # noqa: E402
from spotrt.model.heads import TextProposalNetwork  # noqa: E402
from spotrt.model.spotter import DET_WEIGHTS  # noqa: E402
from spotrt.model.targets import anchor_targets, encode_text, jitter_boxes, region_targets, sample_labels  # noqa: E402


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------- anchors

def test_make_anchors_count_centres_and_shapes():
    heights, ratios, stride, fh, fw = (10.0, 20.0), (1.0, 3.0), 8, 2, 3
    a = B.make_anchors(heights, ratios, stride, fh, fw)
    assert a.shape == (fh * fw * 4, 4) and a.dtype == torch.float32
    per = a.reshape(fh, fw, 4, 4)
    cx = (per[..., 0] + per[..., 2]) / 2
    cy = (per[..., 1] + per[..., 3]) / 2
    for y in range(fh):
        for x in range(fw):
            assert torch.allclose(cx[y, x], torch.full((4,), (x + 0.5) * stride))
            assert torch.allclose(cy[y, x], torch.full((4,), (y + 0.5) * stride))
    w = per[..., 2] - per[..., 0]
    h = per[..., 3] - per[..., 1]
    # Anchor index a = height index * len(ratios) + ratio index, the same at every position.
    assert torch.allclose(h, torch.tensor([10.0, 10.0, 20.0, 20.0]).expand(fh, fw, 4))
    assert torch.allclose(w / h, torch.tensor([1.0, 3.0, 1.0, 3.0]).expand(fh, fw, 4))
    # One known index: position (y=1, x=2), anchor 3 (h=20, ratio 3) -> ((1*3)+2)*4 + 3 = 23.
    assert a[23].tolist() == [20.0 - 30.0, 12.0 - 10.0, 20.0 + 30.0, 12.0 + 10.0]
    assert a[1].tolist() == [4.0 - 15.0, 4.0 - 5.0, 4.0 + 15.0, 4.0 + 5.0]


def test_tpn_output_layout_matches_anchors():
    """TPN logits/deltas index i belongs to position i // A and anchor i % A, like make_anchors."""
    cfg = SpotterConfig(feat_channels=4, anchor_heights=(10.0, 20.0), anchor_ratios=(1.0, 2.0, 4.0))
    na = cfg.num_anchors
    tpn = TextProposalNetwork(cfg)
    tpn.conv = torch.nn.Identity()
    fh, fw = 3, 5
    with torch.no_grad():
        tpn.cls = torch.nn.Conv2d(4, na, 1)
        tpn.reg = torch.nn.Conv2d(4, na * 4, 1)
        tpn.cls.weight.zero_()
        tpn.cls.weight[:, 0] = na                                   # logit = A * position + anchor
        tpn.cls.bias.copy_(torch.arange(na, dtype=torch.float32))
        tpn.reg.weight.zero_()
        tpn.reg.weight[:, 0] = 4 * na                               # delta = 4A * position + channel
        tpn.reg.bias.copy_(torch.arange(4 * na, dtype=torch.float32))
        feats = torch.zeros(2, 4, fh, fw)
        feats[:, 0] = torch.arange(fh * fw, dtype=torch.float32).reshape(fh, fw)  # position index y*Wf+x
        logits, deltas = tpn(feats)
    n = fh * fw * na
    assert logits.shape == (2, n) and deltas.shape == (2, n, 4)
    assert torch.equal(logits[1], torch.arange(n, dtype=torch.float32))
    assert torch.equal(deltas[1].reshape(-1), torch.arange(4 * n, dtype=torch.float32))
    anchors = B.make_anchors(cfg.anchor_heights, cfg.anchor_ratios, cfg.stride, fh, fw)
    assert anchors.shape[0] == n
    i = (2 * fw + 3) * na + 5  # position (y=2, x=3), anchor 5
    pos, anc = divmod(i, na)
    y, x = divmod(pos, fw)
    centre = (anchors[i, :2] + anchors[i, 2:]) / 2
    assert centre.tolist() == [(x + 0.5) * cfg.stride, (y + 0.5) * cfg.stride]
    assert (pos, anc, y, x) == (13, 5, 2, 3)
    assert float(anchors[i, 3] - anchors[i, 1]) == cfg.anchor_heights[1]   # anchor 5 = height 20, ratio 4
    assert float(anchors[i, 2] - anchors[i, 0]) == 80.0
    assert float(logits[0, i]) == i and deltas[0, i].tolist() == [4 * i, 4 * i + 1, 4 * i + 2, 4 * i + 3]


# ---------------------------------------------------------------- box helpers

def test_box_iou_hand_cases():
    a = torch.tensor([[0.0, 0, 10, 10], [0, 0, 0, 0]])
    b = torch.tensor([[5.0, 0, 15, 10], [0, 0, 10, 10], [0, 0, 5, 10], [20, 20, 30, 30], [0, 0, 0, 0]])
    iou = B.box_iou(a, b)
    assert iou.shape == (2, 5)
    expected = torch.tensor([[50 / 150, 1.0, 0.5, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0]])
    torch.testing.assert_close(iou, expected)
    assert torch.isfinite(iou).all()


@pytest.mark.parametrize("weights", [(1.0, 1.0, 1.0, 1.0), DET_WEIGHTS])
def test_encode_decode_round_trip(weights):
    g = gen(1)
    xy = torch.rand(50, 2, generator=g) * 200
    ref = torch.cat([xy, xy + 5 + torch.rand(50, 2, generator=g) * 100], dim=1)
    xy = torch.rand(50, 2, generator=g) * 200
    tgt = torch.cat([xy, xy + 5 + torch.rand(50, 2, generator=g) * 100], dim=1)
    d = B.encode(ref, tgt, weights)
    torch.testing.assert_close(B.decode(ref, d, weights), tgt, atol=1e-3, rtol=1e-5)


def test_encode_hand_values_and_weights():
    ref = torch.tensor([[0.0, 0, 10, 20]])
    tgt = torch.tensor([[5.0, 0, 15, 40]])  # centre +5 in x (0.5 w), +10 in y (0.5 h), h doubled
    d = B.encode(ref, tgt)
    torch.testing.assert_close(d, torch.tensor([[0.5, 0.5, 0.0, math.log(2.0)]]))
    dw = B.encode(ref, tgt, DET_WEIGHTS)
    torch.testing.assert_close(dw, torch.tensor([[5.0, 5.0, 0.0, 5 * math.log(2.0)]]))
    # decode divides by the weights; huge dw/dh are clamped.
    torch.testing.assert_close(B.decode(ref, dw, DET_WEIGHTS), tgt)
    big = B.decode(ref, torch.tensor([[0.0, 0, 100, 100]]))
    assert torch.isfinite(big).all()
    assert float(big[0, 2] - big[0, 0]) == pytest.approx(10 * 1000 / 16, rel=1e-4)


def test_clip():
    out = B.clip(torch.tensor([[-5.0, -1, 50, 70], [10, 10, 20, 20]]), height=60, width=40)
    assert out.tolist() == [[0.0, 0, 40, 60], [10, 10, 20, 20]]


def test_nms_hand_case():
    boxes = torch.tensor([
        [0.0, 0, 10, 10],    # 0: s .9
        [4.0, 0, 14, 10],    # 1: s .8, IoU(0,1) = 60/140 = .43 -> suppressed by 0
        [8.0, 0, 18, 10],    # 2: s .7, IoU(1,2) = .43 but 1 is suppressed; IoU(0,2) = 20/180 -> kept
        [50.0, 50, 60, 60],  # 3: s .1, isolated -> kept
        [0.5, 0, 10.5, 10],  # 4: s .95, IoU(4,0) = .905 -> it is kept first and suppresses 0
    ])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.1, 0.95])
    assert B.nms(boxes[:4], scores[:4], 0.4, 10).tolist() == [0, 2, 3]
    assert B.nms(boxes[:4], scores[:4], 0.4, 2).tolist() == [0, 2]
    assert B.nms(boxes[:4], scores[:4], 0.5, 10).tolist() == [0, 1, 2, 3]
    # 4 suppresses 0 and 1 (IoU(4,1) = 63/137 = .46 > .4); 2 (IoU(4,2) = 23/177) survives.
    assert B.nms(boxes, scores, 0.4, 10).tolist() == [4, 2, 3]
    assert B.nms(torch.zeros((0, 4)), torch.zeros(0), 0.5, 5).tolist() == []


# ---------------------------------------------------------------- anchor targets

def small_anchors():
    return B.make_anchors((10.0,), (1.0, 3.0), 8, 8, 12)  # 8 x 12 positions x 2 anchors


def test_anchor_targets_best_anchor_is_positive_even_below_pos_iou():
    anchors = small_anchors()
    gt = torch.tensor([[4.0, 4.0, 70.0, 14.0],    # 66 x 10: best IoU with a 30x10 anchor = 300/660 < .5
                       [40.0, 40.0, 50.0, 50.0]])  # matches a 10x10 anchor well
    iou = B.box_iou(anchors, gt)
    assert 0.1 < float(iou[:, 0].max()) < 0.5
    labels, reg = anchor_targets(anchors, gt, gen(), num=10_000)
    for j in range(2):
        best = torch.nonzero(iou[:, j] >= iou[:, j].max() - 1e-6).flatten()
        assert (labels[best] == 1).all()
        torch.testing.assert_close(reg[best], B.encode(anchors[best], gt[j].expand(len(best), 4)))
    best_iou = iou.max(dim=1).values
    forced = torch.zeros(anchors.shape[0], dtype=torch.bool)
    for j in range(2):
        forced |= iou[:, j] >= iou[:, j].max() - 1e-6
    assert (best_iou[labels == 0] < 0.3).all()
    # num is large, so nothing was sampled away: the labels are exactly the IoU rule.
    assert torch.equal(labels == 0, (best_iou < 0.3) & ~forced)
    assert torch.equal(labels == 1, (best_iou >= 0.5) | forced)
    assert torch.equal(labels == -1, (best_iou >= 0.3) & (best_iou < 0.5) & ~forced)


def test_anchor_targets_sampling_respects_num_and_fraction():
    anchors = small_anchors()
    gt = torch.tensor([[8.0 * k, 8.0 * k, 8.0 * k + 10, 8.0 * k + 10] for k in range(1, 7)])
    full, _ = anchor_targets(anchors, gt, gen(), num=10_000)
    assert int((full == 1).sum()) > 4
    labels, _ = anchor_targets(anchors, gt, gen(3), num=16, pos_fraction=0.25)
    assert int((labels == 1).sum()) == 4
    assert int((labels == 0).sum()) == 12
    # Sampling only turns labels off, never flips them.
    assert ((labels == -1) | (labels == full)).all()


def test_anchor_targets_without_words():
    anchors = small_anchors()
    labels, reg = anchor_targets(anchors, torch.zeros((0, 4)), gen(), num=32, pos_fraction=0.5)
    assert int((labels == 1).sum()) == 0
    assert int((labels == 0).sum()) == 32
    assert int((labels == -1).sum()) == anchors.shape[0] - 32
    assert (reg == 0).all()


def test_sample_labels_is_deterministic_for_a_generator():
    labels = torch.tensor([1] * 10 + [0] * 30 + [-1] * 5)
    a = sample_labels(labels, 8, 0.5, gen(5))
    b = sample_labels(labels, 8, 0.5, gen(5))
    assert torch.equal(a, b)
    assert int((a == 1).sum()) == 4 and int((a == 0).sum()) == 4 and (a[40:] == -1).all()


# ---------------------------------------------------------------- region targets

def test_region_targets_labels_by_iou():
    gt = torch.tensor([[0.0, 0, 10, 10], [100.0, 0, 140, 10]])
    rois = torch.tensor([
        [0.0, 0, 10, 10],     # IoU 1 with word 0 -> 1
        [0.0, 0, 10, 5],      # .5 -> 1
        [0.0, 0, 10, 4.5],    # .45: between .4 and .5 -> -1
        [0.0, 0, 10, 3],      # .3 -> 0
        [100.0, 0, 130, 10],  # .75 with word 1 -> 1
        [300.0, 0, 310, 10],  # 0 -> 0
    ])
    labels, reg, match, iou = region_targets(rois, gt, gen(), num=100)
    assert labels.tolist() == [1, 1, -1, 0, 1, 0]
    assert match[[0, 1, 2, 3, 4]].tolist() == [0, 0, 0, 0, 1]
    torch.testing.assert_close(iou, torch.tensor([1.0, 0.5, 0.45, 0.3, 0.75, 0.0]))
    torch.testing.assert_close(reg, B.encode(rois, gt[match], DET_WEIGHTS))
    torch.testing.assert_close(B.decode(rois[:5], reg[:5], DET_WEIGHTS), gt[match[:5]], atol=1e-4, rtol=0)


def test_region_targets_without_words():
    rois = torch.tensor([[0.0, 0, 10, 10]] * 5)
    labels, reg, match, iou = region_targets(rois, torch.zeros((0, 4)), gen(), num=3)
    assert int((labels == 0).sum()) == 3 and int((labels == -1).sum()) == 2
    assert (reg == 0).all() and (match == -1).all() and (iou == 0).all()


def test_region_targets_sampling():
    gt = torch.tensor([[0.0, 0, 10, 10]])
    rois = torch.cat([gt.repeat(10, 1), torch.tensor([[200.0, 0, 210, 10]]).repeat(20, 1)])
    labels, *_ = region_targets(rois, gt, gen(), num=8, pos_fraction=0.25)
    assert int((labels == 1).sum()) == 2 and int((labels == 0).sum()) == 6


# ---------------------------------------------------------------- text and jitter

def test_encode_text():
    out = encode_text("cab", "abc", 6)
    assert out.dtype == torch.long
    assert out.tolist() == [3, 1, 2, 0, -100, -100]
    assert encode_text("abcab", "abc", 6).tolist() == [1, 2, 3, 1, 2, 0]   # end fills the last slot
    assert encode_text("abd", "abc", 6) is None          # 'd' outside the charset
    assert encode_text("A", "abc", 6) is None             # case matters
    assert encode_text("", "abc", 6) is None
    assert encode_text("abcabca", "abc", 6) is None       # longer than max_len


def test_encode_text_full_length_word_has_no_end_token():
    """A word of exactly max_len characters is kept, without an end token (the decoder emits max_len
    characters and stops; postprocess scores min(len + 1, T) probabilities)."""
    assert encode_text("abcabc", "abc", 6).tolist() == [1, 2, 3, 1, 2, 3]


def test_jitter_boxes_within_amount():
    gt = torch.tensor([[10.0, 20, 110, 40], [0, 0, 30, 0.5]])
    out = jitter_boxes(gt, gen(2), copies=50, amount=0.12)
    assert out.shape == (100, 4)
    base = gt.repeat(50, 1)
    h = (base[:, 3] - base[:, 1]).clamp(min=1)[:, None]
    diff = (out - base).abs()
    assert (diff <= 0.12 * h + 1e-5).all()
    assert (diff > 0).any() and float(diff[0::2].max()) > 0.12 * 20 * 0.8  # it does move boxes
    assert torch.equal(out, jitter_boxes(gt, gen(2), copies=50, amount=0.12))
    assert jitter_boxes(gt, gen(), copies=0).shape == (0, 4)
    assert jitter_boxes(torch.zeros((0, 4)), gen(), copies=3).shape == (0, 4)


# ---------------------------------------------------------------- proposal levels and ignored regions

def test_multi_level_anchors_line_up_with_the_tpn_outputs():
    """Level i runs at stride 8 * 2**i on features halved (rounding up) i times; the TPN's outputs
    are the levels concatenated finest first, each level position-major then anchor, like the anchors."""
    cfg = SpotterConfig(feat_channels=8, anchor_heights=(10.0, 20.0), anchor_ratios=(1.0, 3.0),
                        level_anchor_heights=((60.0,), (150.0, 250.0)))
    assert cfg.proposal_levels == [(8, (10.0, 20.0)), (16, (60.0,)), (32, (150.0, 250.0))]
    fh, fw = 5, 7
    assert [B.level_size(fh, fw, lv) for lv in range(3)] == [(5, 7), (3, 4), (2, 2)]
    anchors = B.make_level_anchors(cfg, fh, fw)
    counts = [5 * 7 * 4, 3 * 4 * 2, 2 * 2 * 4]
    assert anchors.shape == (sum(counts), 4)
    tpn = TextProposalNetwork(cfg).eval()
    logits, deltas = tpn(torch.randn(2, 8, fh, fw))
    assert logits.shape == (2, sum(counts)) and deltas.shape == (2, sum(counts), 4)
    # the second level's first anchor: centre (8, 8) at stride 16, 60x60; the third level's last:
    # centre (48, 48) at stride 32, 750x250
    lv1 = anchors[counts[0]]
    assert lv1.tolist() == [8 - 30, 8 - 30, 8 + 30, 8 + 30]
    last = anchors[-1]
    assert last.tolist() == [48 - 375, 48 - 125, 48 + 375, 48 + 125]
    # level heads see their own level: zeroing the coarse features' head changes only their slots
    with torch.no_grad():
        tpn.level_cls[1].weight.zero_()
        tpn.level_cls[1].bias.fill_(7.0)
        logits, _ = tpn(torch.randn(2, 8, fh, fw))
    assert torch.all(logits[:, counts[0] + counts[1]:] == 7.0)
    assert not torch.any(logits[:, : counts[0] + counts[1]] == 7.0)


def test_old_configs_have_one_level():
    import json

    data = json.loads(SpotterConfig().to_json())
    del data["level_anchor_heights"]  # a weights file written before proposal levels existed
    cfg = SpotterConfig.from_json(json.dumps(data))
    assert cfg.level_anchor_heights == () and len(cfg.proposal_levels) == 1
    with pytest.raises(ValueError, match="level_anchor_heights"):
        SpotterConfig(level_anchor_heights=((),))


def test_box_ioa():
    a = torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    b = torch.tensor([[5.0, 0.0, 100.0, 10.0]])
    assert B.box_ioa(a, b).flatten().tolist() == [0.5, 0.0]


def test_ignored_regions_make_no_negatives_and_keep_positives():
    anchors = torch.tensor([[0.0, 0.0, 20.0, 10.0],     # inside the ignored region
                            [100.0, 0.0, 120.0, 10.0],  # the word
                            [200.0, 0.0, 220.0, 10.0]])  # background
    gt = torch.tensor([[100.0, 0.0, 120.0, 10.0]])
    ignore = torch.tensor([[0.0, 0.0, 30.0, 12.0]])
    plain, _ = anchor_targets(anchors, gt, gen())
    labels, _ = anchor_targets(anchors, gt, gen(), ignore=ignore)
    assert plain.tolist() == [0, 1, 0]
    assert labels.tolist() == [-1, 1, 0]
    # an ignored region over the word does not take its positive away
    over, _ = anchor_targets(anchors, gt, gen(), ignore=gt.clone())
    assert over[1] == 1
    # no words at all: still no negatives inside the ignored region
    empty, _ = anchor_targets(anchors, gt[:0], gen(), ignore=ignore)
    assert empty.tolist() == [-1, 0, 0]
    r_labels, *_ = region_targets(anchors, gt, gen(), ignore=ignore)
    assert r_labels.tolist() == [-1, 1, 0]
