"""Tracking words across frames: ids follow moving boxes, gaps are bridged by the motion prediction,
and the stable reading is a score-weighted vote reported only after the minimum track length."""

import numpy as np
import pytest

from spotrt.postprocess import SpottedWord, box_to_quad
from spotrt.runtime.tracking import Tracker, iou_matrix


def word(text, x, y, w=60, h=20, score=0.9):
    return SpottedWord(text, score, box_to_quad(np.array([x, y, x + w, y + h], np.float32)))


def test_iou_matrix():
    a = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float32)
    b = np.array([[5, 0, 15, 10]], np.float32)
    assert np.allclose(iou_matrix(a, b), [[50 / 150], [0]])
    assert iou_matrix(a[:0], b).shape == (0, 1)


def test_ids_follow_moving_words_and_survive_a_gap():
    tr = Tracker(iou=0.3, max_gap=5, min_hits=3)
    ids = {"stop": set(), "exit": set()}
    for i in range(30):
        # "stop" moves right 8 px a frame (IoU with its last box alone would fail after a gap);
        # "exit" moves down 3 px a frame; "stop" is missed in frames 10-12.
        words = [word("exit", 300, 50 + 3 * i)]
        if not 10 <= i <= 12:
            words.insert(0, word("stop", 20 + 8 * i, 200))
        for tw in tr.update(words, i):
            ids[tw.text].add(tw.track)
    assert len(ids["stop"]) == 1 and len(ids["exit"]) == 1 and ids["stop"] != ids["exit"]


def test_a_word_that_jumps_far_starts_a_new_track():
    tr = Tracker()
    a = tr.update([word("left", 10, 10)], 0)[0].track
    b = tr.update([word("left", 400, 300)], 1)[0].track
    assert a != b


def test_track_ends_after_max_gap():
    tr = Tracker(max_gap=3)
    a = tr.update([word("x", 10, 10)], 0)[0].track
    assert tr.update([word("x", 10, 10)], 3)[0].track == a
    assert tr.update([word("x", 10, 10)], 7)[0].track != a


def test_vote_weighted_by_score_and_min_track_length():
    tr = Tracker(min_hits=3, window=5)
    readings = [("hello", 0.9), ("hella", 0.95), ("hello", 0.8), ("hella", 0.3), ("hello", 0.7), ("heiio", 0.99)]
    stables = [tr.update([word(t, 10, 10, score=s)], i)[0].stable for i, (t, s) in enumerate(readings)]
    # Not reported before 3 sightings; then hello (0.9+0.8 = 1.7) beats hella (1.25); the window of 5
    # still keeps hello (0.8+0.7 = 1.5 over hella 1.25 and heiio 0.99).
    assert stables == [None, None, "hello", "hello", "hello", "hello"]
    tr2 = Tracker(min_hits=1, window=2)
    assert [tr2.update([word(t, 10, 10, score=s)], i)[0].stable for i, (t, s) in enumerate(readings[:2])] == \
        ["hello", "hella"]


def test_each_word_is_used_once():
    tr = Tracker(iou=0.1)
    tr.update([word("a", 10, 10), word("b", 30, 10)], 0)
    out = tr.update([word("a", 12, 10), word("b", 32, 10)], 1)
    assert [tw.track for tw in out] == [1, 2]
    assert [tw.to_json()["track"] for tw in out] == [1, 2]


def test_bad_settings():
    with pytest.raises(ValueError):
        Tracker(min_hits=0)
