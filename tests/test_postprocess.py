"""From raw outputs to words (spotrt.postprocess) and the shared preprocessing (spotrt.imageops)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from spotrt.imageops import Letterbox, fit_size, preprocess
from spotrt.model.config import SpotterConfig
from spotrt.postprocess import box_to_quad, decode_tokens, nms_np, words_from_outputs, words_of

CHARSET = "abc"


def test_decode_tokens():
    assert decode_tokens(np.array([1, 2, 0, 3]), CHARSET) == "ab"
    assert decode_tokens(np.array([3, 3, 1]), CHARSET) == "cca"          # no end: every token
    assert decode_tokens(np.array([0, 1, 2]), CHARSET) == ""
    assert decode_tokens(np.array([1, 4, 2, 0]), CHARSET) == "ab"        # start token (4) is not a char
    assert decode_tokens(np.zeros(0, dtype=np.int64), CHARSET) == ""


def test_nms_np_hand_case():
    boxes = np.array([[0, 0, 10, 10], [4, 0, 14, 10], [8, 0, 18, 10], [50, 50, 60, 60]], dtype=np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.1])
    assert nms_np(boxes, scores, 0.4) == [0, 2, 3]
    assert nms_np(boxes, scores, 0.5) == [0, 1, 2, 3]


def test_box_to_quad():
    q = box_to_quad(np.array([1.0, 2.0, 5.0, 7.0]))
    assert q.tolist() == [[1, 2], [5, 2], [5, 7], [1, 7]] and q.dtype == np.float32


def outputs():
    k, t = 7, 5
    boxes = np.zeros((k, 4), dtype=np.float32)
    scores = np.zeros(k, dtype=np.float32)
    tokens = np.zeros((k, t), dtype=np.int64)
    probs = np.zeros((k, t), dtype=np.float32)
    # 0: "ab", det .9, probs .8 .6 and end 1.0 -> rec .8, score .72
    boxes[0], scores[0], tokens[0], probs[0] = [10, 10, 50, 30], 0.9, [1, 2, 0, 0, 0], [0.8, 0.6, 1.0, 1, 1]
    # 1: overlaps 0 (IoU 38*20/(42*20) > .3), det .95 but rec .5 -> .475: suppressed by 0
    boxes[1], scores[1], tokens[1], probs[1] = [12, 10, 52, 30], 0.95, [1, 2, 3, 0, 0], [0.5, 0.5, 0.5, 0.5, 1]
    # 2: below the threshold
    boxes[2], scores[2], tokens[2], probs[2] = [100, 0, 120, 10], 0.3, [3, 0, 0, 0, 0], [1, 1, 1, 1, 1]
    # 3: reads as empty
    boxes[3], scores[3], tokens[3], probs[3] = [60, 40, 80, 50], 0.99, [0, 0, 0, 0, 0], [0.9, 1, 1, 1, 1]
    # 4: separate word, five characters, no end: rec = mean of all 5 probabilities = .7 -> .56
    boxes[4], scores[4], tokens[4], probs[4] = [60, 2, 170, 20], 0.8, [3, 3, 3, 3, 3], [0.5, 0.6, 0.7, 0.8, 0.9]
    # 5: the last valid slot (count = 6), partly below the image once scaled back; 6 is past count
    boxes[5], scores[5], tokens[5], probs[5] = [0, 35, 30, 45], 0.6, [2, 0, 0, 0, 0], [1.0, 0.5, 1, 1, 1]
    boxes[6], scores[6], tokens[6], probs[6] = [0, 0, 5, 5], 1.0, [1, 0, 0, 0, 0], [1, 1, 1, 1, 1]
    return boxes, scores, tokens, probs


def test_words_from_outputs():
    boxes, scores, tokens, probs = outputs()
    before = boxes.copy()
    lb = Letterbox(scale=0.5, height=50, width=300)
    words = words_from_outputs(boxes, scores, tokens, probs, 6, lb, CHARSET, score_thresh=0.5, nms_iou=0.3)
    assert [w.text for w in words] == ["ab", "ccccc", "b"]                # best first
    np.testing.assert_allclose([w.score for w in words], [0.9 * 0.8, 0.8 * 0.7, 0.6 * 0.75], rtol=1e-5)
    np.testing.assert_allclose([w.det_score for w in words], [0.9, 0.8, 0.6], rtol=1e-6)
    np.testing.assert_allclose([w.rec_score for w in words], [0.8, 0.7, 0.75], rtol=1e-5)
    # Boxes divided by the letterbox scale, then clipped to the original image (50 x 300).
    np.testing.assert_allclose(words[0].quad, box_to_quad(np.array([20, 20, 100, 50])))
    np.testing.assert_allclose(words[1].quad, box_to_quad(np.array([120, 4, 300, 40])))
    np.testing.assert_allclose(words[2].quad, box_to_quad(np.array([0, 50, 60, 50])))
    np.testing.assert_array_equal(boxes, before)                          # inputs untouched
    assert words[0].to_json() == {"text": "ab", "score": 0.72, "box": [20.0, 20.0, 100.0, 20.0, 100.0, 50.0, 20.0, 50.0]}


def test_words_from_outputs_threshold_count_and_nms():
    boxes, scores, tokens, probs = outputs()
    lb = Letterbox(scale=1.0, height=1000, width=1000)
    # Slot 6 is past count: ignored although its score is 1.
    assert "a" not in [w.text for w in words_from_outputs(boxes, scores, tokens, probs, 6, lb, CHARSET, 0.5, 0.3)]
    assert "a" in [w.text for w in words_from_outputs(boxes, scores, tokens, probs, 7, lb, CHARSET, 0.5, 0.3)]
    # A looser NMS keeps both overlapping readings; a higher threshold drops the weaker words.
    texts = [w.text for w in words_from_outputs(boxes, scores, tokens, probs, 6, lb, CHARSET, 0.5, 0.95)]
    assert texts == ["ab", "ccccc", "abc", "b"]
    texts = [w.text for w in words_from_outputs(boxes, scores, tokens, probs, 6, lb, CHARSET, 0.85, 0.3)]
    assert texts == ["ab"]
    assert words_from_outputs(boxes, scores, tokens, probs, 0, lb, CHARSET, 0.5, 0.3) == []
    assert words_from_outputs(boxes, scores, tokens, probs, 6, lb, CHARSET, 0.999, 0.3) == []


def test_words_from_outputs_word_threshold():
    """The word score (det x rec) threshold drops weak readings; what a dropped region would have
    suppressed is still decided by the stronger words."""
    boxes, scores, tokens, probs = outputs()
    lb = Letterbox(scale=1.0, height=1000, width=1000)
    # scores: ab .72, ccccc .56, b .45; "abc" (.475) is suppressed by "ab" either way
    texts = [w.text for w in words_from_outputs(boxes, scores, tokens, probs, 6, lb, CHARSET, 0.5, 0.3, 0.5)]
    assert texts == ["ab", "ccccc"]
    texts = [w.text for w in words_from_outputs(boxes, scores, tokens, probs, 6, lb, CHARSET, 0.5, 0.3, 0.46)]
    assert texts == ["ab", "ccccc"]
    texts = [w.text for w in words_from_outputs(boxes, scores, tokens, probs, 6, lb, CHARSET, 0.5, 0.3, 0.44)]
    assert texts == ["ab", "ccccc", "b"]
    # with a loose NMS, the threshold alone decides about the overlapping "abc"
    texts = [w.text for w in words_from_outputs(boxes, scores, tokens, probs, 6, lb, CHARSET, 0.5, 0.95, 0.47)]
    assert texts == ["ab", "ccccc", "abc"]
    # through a config: words_of passes word_score_thresh
    cfg = SpotterConfig(charset=CHARSET, word_score_thresh=0.6)
    assert [w.text for w in words_of(cfg, boxes, scores, tokens, probs, 6, lb)] == ["ab"]


@pytest.mark.parametrize("field,value", [("word_score_thresh", -0.1), ("word_score_thresh", 1.5),
                                         ("score_thresh", 2.0)])
def test_config_rejects_thresholds_outside_0_1(field, value):
    with pytest.raises(ValueError, match="must be in 0..1"):
        SpotterConfig(**{field: value})


# ---------------------------------------------------------------- preprocessing

MEAN, STD = (127.5, 127.5, 127.5), (64.0, 64.0, 64.0)


def test_preprocess_downscales_and_pads():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (100, 300, 3), dtype=np.uint8)
    x, lb = preprocess(img, MEAN, STD, (64, 128))
    scale = min(64 / 100, 128 / 300)
    assert lb == Letterbox(scale, 100, 300)
    sh, sw = round(100 * scale), round(300 * scale)                        # 43 x 128
    assert x.shape == (3, 64, 128) and x.dtype == np.float32 and x.flags.c_contiguous
    assert x.shape[1] % 32 == 0 and x.shape[2] % 32 == 0
    assert (x[:, sh:, :] == 0).all() and (x[:, :, sw:] == 0).all()         # padding = normalized mean
    resized = cv2.resize(img, (sw, sh), interpolation=cv2.INTER_AREA).astype(np.float32)
    np.testing.assert_allclose(x[:, :sh, :sw], ((resized - 127.5) / 64.0).transpose(2, 0, 1), atol=1e-6)


def test_preprocess_never_upscales():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (20, 45, 3), dtype=np.uint8)
    x, lb = preprocess(img, MEAN, STD, (736, 1280))
    assert lb.scale == 1.0 and (lb.height, lb.width) == (20, 45)
    assert x.shape == (3, 32, 64)
    np.testing.assert_array_equal(x[:, :20, :45], ((img.astype(np.float32) - 127.5) / 64.0).transpose(2, 0, 1))
    assert (x[:, 20:] == 0).all() and (x[:, :, 45:] == 0).all()
    # Per-channel mean/std (BGR order kept).
    x2, _ = preprocess(img, (10.0, 20.0, 30.0), (2.0, 4.0, 8.0), (736, 1280))
    for ch, (m, s) in enumerate(((10, 2), (20, 4), (30, 8))):
        np.testing.assert_allclose(x2[ch, :20, :45], (img[..., ch].astype(np.float32) - m) / s, rtol=1e-6)
        assert (x2[ch, 20:] == 0).all()


@pytest.mark.parametrize("shape", [(100, 300), (300, 100), (50, 60), (737, 1281)])
def test_preprocess_fixed_gives_exactly_max_size(shape):
    img = np.full((*shape, 3), 200, dtype=np.uint8)
    x, lb = preprocess(img, MEAN, STD, (96, 160), fixed=True)
    assert x.shape == (3, 96, 160)
    assert lb.scale <= 1.0
    sh, sw = max(1, round(shape[0] * lb.scale)), max(1, round(shape[1] * lb.scale))
    assert sh <= 96 and sw <= 160
    np.testing.assert_allclose(x[:, :sh, :sw], (200 - 127.5) / 64.0, rtol=1e-6)
    assert (x[:, sh:] == 0).all() and (x[:, :, sw:] == 0).all()


@pytest.mark.parametrize("h,w", [(1, 1), (31, 33), (100, 3000), (3000, 100), (736, 1280), (1080, 1920)])
def test_fit_size(h, w):
    scale, ph, pw = fit_size(h, w, 736, 1280, 32)
    assert 0 < scale <= 1.0
    assert ph % 32 == 0 and pw % 32 == 0 and ph >= 32 and pw >= 32
    assert ph <= 736 and pw <= 1280
    assert ph >= round(h * scale) and pw >= round(w * scale)
    assert ph - round(h * scale) < 32 or ph == 32


@pytest.mark.parametrize("bad", [
    np.zeros((10, 10, 3), dtype=np.float32),
    np.zeros((10, 10), dtype=np.uint8),
    np.zeros((10, 10, 4), dtype=np.uint8),
    np.zeros((10, 10, 3), dtype=np.uint16),
])
def test_preprocess_rejects_bad_images(bad):
    with pytest.raises(ValueError, match="expected \\(H,W,3\\) uint8"):
        preprocess(bad, MEAN, STD, (64, 64))


def test_preprocess_scale_resizes_first_and_the_letterbox_maps_back():
    rng = np.random.default_rng(2)
    img = rng.integers(0, 256, (200, 300, 3), dtype=np.uint8)
    x, lb = preprocess(img, MEAN, STD, (736, 1280), scale=0.5)
    assert lb == Letterbox(0.5, 200, 300) and x.shape == (3, 128, 160)
    resized = cv2.resize(img, (150, 100), interpolation=cv2.INTER_AREA).astype(np.float32)
    np.testing.assert_allclose(x[:, :100, :150], ((resized - 127.5) / 64.0).transpose(2, 0, 1), atol=1e-6)
    # upscaling on request, but never past the input size
    _, lb = preprocess(img, MEAN, STD, (736, 1280), scale=2.0)
    assert lb.scale == 2.0
    x, lb = preprocess(img, MEAN, STD, (256, 1280), scale=2.0, fixed=True)
    assert lb.scale == 256 / 200 and x.shape == (3, 256, 1280)
