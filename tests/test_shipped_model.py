"""The shipped default model: it loads with its own config and reads its held-out synthetic scenes.

A guard on the committed weights file (a truncated, retrained-by-mistake or wrong-config file
fails here), not a measurement: the numbers are in spotrt/weights/MODEL_CARD.md.
"""
from __future__ import annotations

from spotrt.api import load_spotter
from spotrt.eval.runner import evaluate_synthetic
from spotrt.model.weights import DEFAULT_WEIGHTS, config_of


def test_shipped_weights_load_with_their_threshold():
    cfg = config_of(DEFAULT_WEIGHTS)
    spotter = load_spotter()
    assert spotter.cfg == cfg
    assert 0.0 <= cfg.word_score_thresh < 1.0


def test_shipped_model_reads_easy_held_out_scenes():
    # 30 level-0 scenes (the model card reports 200: end-to-end hmean above 0.9)
    r = evaluate_synthetic(load_spotter(), n=30, level=0, progress=False)
    assert r["detection"]["hmean"] > 0.95
    assert r["e2e_none"]["hmean"] > 0.8


def test_shipped_model_reads_large_sign_letters_at_the_default_settings():
    """The sign video's letters (about 100 px, above the 68-px anchors) are read by the coarse pass
    of the shipped model without --scale; without the coarse pass the same frame reads none of them."""
    import cv2
    from conftest import shared_data

    video = shared_data("video", "sign_bw_960x506.mp4")
    cap = cv2.VideoCapture(str(video))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 300)
    ok, frame = cap.read()
    cap.release()
    assert ok
    spotter = load_spotter()
    assert spotter.cfg.pyramid_factors == (2, 4)
    assert "lives" in [w.text for w in spotter.spot(frame)]
    spotter.model.cfg = spotter.model.cfg.replace(pyramid_factor=0)
    assert not {"black", "lives", "matter"} & {w.text for w in spotter.spot(frame)}
