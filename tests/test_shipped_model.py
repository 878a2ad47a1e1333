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
