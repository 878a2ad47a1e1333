"""ICDAR 2015 evaluation protocol (spotrt.eval): hand-made cases for each official rule."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from spotrt.eval import (
    DetWord,
    GTWord,
    apply_lexicon,
    edit_distance,
    evaluate,
    lexicon_for,
    load_lexicon,
    polygon_iou,
    read_gt_dir,
    read_gt_file,
    read_submission_dir,
    write_submission_dir,
)

IC15 = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ic15_dev"


def box(x0, y0, x1, y1):
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=float)


def gt(*words):
    return [GTWord(box(*b), t) for b, t in words]


def dets(*words):
    return [DetWord(box(*b), t) for b, t in words]


# ------------------------------------------------------------------------------------ geometry


def test_iou_of_boxes_and_nonconvex_quads():
    assert polygon_iou(box(0, 0, 10, 10), box(0, 0, 10, 10)) == pytest.approx(1.0)
    assert polygon_iou(box(0, 0, 10, 10), box(5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert polygon_iou(box(0, 0, 10, 10), box(20, 0, 30, 10)) == 0.0
    # Anticlockwise order gives the same area.
    assert polygon_iou(box(0, 0, 10, 10)[::-1], box(5, 0, 15, 10)) == pytest.approx(50 / 150)
    # A concave "dart" (area 50) is handled exactly: it lies inside the 10x10 box.
    dart = np.array([[0, 0], [10, 5], [0, 10], [5, 5]], dtype=float)
    assert polygon_iou(dart, box(0, 0, 10, 10)) == pytest.approx(25 / 100)


def quad(*v):
    return np.array(v, dtype=float).reshape(4, 2)


def test_bow_tie_quads_as_polygon3():
    # Values from the official scripts (Polygon3): a bow-tie's area is |shoelace| of its 4 points in
    # order, while intersections take it as its two lobes (triangles meeting at the crossing point).
    from spotrt.eval.icdar15 import _intersection, _Poly

    square_bow_tie = quad(0, 0, 10, 0, 0, 10, 10, 10)  # lobes: two triangles of area 25, crossing at (5, 5)
    square = quad(0, 0, 10, 0, 10, 10, 0, 10)
    assert _Poly(square_bow_tie).area == 0.0
    assert _intersection(_Poly(square_bow_tie), _Poly(square)) == pytest.approx(50.0)
    # IoU = 50 / (0 + 100 - 50) = 1, as the scripts compute it.
    assert polygon_iou(square_bow_tie, square) == pytest.approx(1.0)
    # Two bow-ties: union 0 + 0 - 50 < 0, the scripts' IoU is -1 (never a match); here 0.
    assert polygon_iou(square_bow_tie, square_bow_tie) == 0.0
    # Official: area 344, intersection with the GT 142.74 (not the convex hull's).
    det = _Poly(quad(12, 161, 9, 147, 20, 201, 3, 203))
    gt_quad = _Poly(quad(1, 151, 12, 151, 13, 195, 0, 194))
    assert det.area == 344.0
    assert _intersection(gt_quad, det) == pytest.approx(142.74, abs=0.01)
    assert _intersection(det, gt_quad) == pytest.approx(142.74, abs=0.01)
    # Official IoU 0.3943 (<= 0.5: no match).
    a, b = quad(595, 211, 590, 192, 607, 203, 609, 196), quad(585, 196, 608, 194, 608, 206, 585, 207)
    assert polygon_iou(a, b) == pytest.approx(0.3943, abs=1e-4)
    # Degenerate (zero-area) quads: IoU 0, as the scripts' division by an empty union gives.
    flat = quad(0, 0, 10, 0, 20, 0, 5, 0)
    assert polygon_iou(flat, square) == 0.0 and polygon_iou(flat, flat) == 0.0


def test_bow_tie_detections_in_evaluation():
    # Only 41.5% of this bow-tie's area (344) lies in the don't-care GT: it is not don't care.
    g = {"img_1": [GTWord(quad(1, 151, 12, 151, 13, 195, 0, 194), "###")]}
    r = evaluate(g, {"img_1": [DetWord(quad(12, 161, 9, 147, 20, 201, 3, 203), "x")]}, "detection")
    assert r["per_image"]["img_1"]["det_dont_care"] == [] and r["num_det"] == 1
    # IoU 0.394: the official scripts do not pair these two.
    g = {"img_1": [GTWord(quad(585, 196, 608, 194, 608, 206, 585, 207), "The")]}
    for task in ("detection", "e2e"):
        r = evaluate(g, {"img_1": [DetWord(quad(595, 211, 590, 192, 607, 203, 609, 196), "Tha")]}, task)
        assert r["matched"] == 0 and r["per_image"]["img_1"]["pairs"] == []


def test_submission_with_swapped_corners():
    # The GT resubmitted with two corners of each quad swapped; official scores (Polygon3): P 1/3, R 1/2.
    g = {
        "img_1": [
            GTWord(quad(0, 0, 100, 0, 100, 20, 0, 20), "word"),
            GTWord(quad(0, 100, 40, 100, 25, 110, 15, 110), "word"),  # trapezoid, sides 40 and 10
            GTWord(quad(0, 200, 50, 200, 50, 220, 0, 220), "###"),
        ]
    }
    d = {
        "img_1": [
            # Box: area 0, lobes 500 + 500 inside the GT: IoU = 1000 / (2000 + 0 - 1000) = 1, a match.
            DetWord(quad(0, 0, 100, 0, 0, 20, 100, 20), "word"),
            # Trapezoid, diagonals cross at (20, 108): lobes of area 40 each, the other two diagonal
            # triangles 160 and 10. Area 0, IoU = 80 / (250 - 80) = 0.47: no match.
            DetWord(quad(0, 100, 25, 110, 40, 100, 15, 110), "word"),
            # Area 0, so not inside the don't-care box by the scripts' rule: a care detection.
            DetWord(quad(0, 200, 50, 200, 0, 220, 50, 220), "x"),
        ]
    }
    r = evaluate(g, d, "detection")
    assert (r["matched"], r["num_gt"], r["num_det"]) == (1, 2, 3)
    assert r["precision"] == pytest.approx(1 / 3) and r["recall"] == 0.5


# ----------------------------------------------------------------------------------- matching


def test_perfect_match_all_tasks():
    g = {"img_1": gt(((0, 0, 100, 20), "Hello"), ((0, 50, 100, 70), "World"))}
    d = {"img_1": dets(((0, 0, 100, 20), "Hello"), ((0, 50, 100, 70), "World"))}
    for task in ("detection", "e2e", "spotting"):
        r = evaluate(g, d, task)
        assert (r["precision"], r["recall"], r["hmean"], r["matched"]) == (1.0, 1.0, 1.0, 2)


def test_iou_threshold_is_strictly_above_half():
    g = {"img_1": gt(((0, 0, 100, 100), "word"))}
    # Shifted boxes: IoU = (100 - s) / (100 + s); s = 33 -> 0.5038, s = 34 -> 0.4925.
    above = evaluate(g, {"img_1": dets(((33, 0, 133, 100), "word"))}, "detection")
    below = evaluate(g, {"img_1": dets(((34, 0, 134, 100), "word"))}, "detection")
    assert above["matched"] == 1 and below["matched"] == 0
    # Exactly 0.5 (2x IoU area vs union) is not a match: 100x100 GT, 100x50 detection inside it.
    exact = evaluate(g, {"img_1": dets(((0, 0, 100, 50), "word"))}, "detection")
    assert exact["matched"] == 0


def test_one_to_one_matching():
    g = {"img_1": gt(((0, 0, 100, 20), "word"))}
    r = evaluate(g, {"img_1": dets(((0, 0, 100, 20), "word"), ((1, 0, 101, 20), "word"))}, "detection")
    assert r["matched"] == 1 and r["num_det"] == 2 and r["precision"] == 0.5 and r["recall"] == 1.0


def test_wrong_transcription_still_consumes_the_pair():
    # The scripts pair by IoU first: a wrong first detection blocks the right second one.
    g = {"img_1": gt(((0, 0, 100, 20), "word"))}
    r = evaluate(g, {"img_1": dets(((0, 0, 100, 20), "ward"), ((1, 0, 101, 20), "word"))}, "e2e")
    assert r["matched"] == 0 and r["per_image"]["img_1"]["pairs"] == [{"gt": 0, "det": 0, "correct": False}]
    assert evaluate(g, {"img_1": dets(((0, 0, 100, 20), "ward"), ((1, 0, 101, 20), "word"))}, "detection")[
        "matched"
    ] == 1


def test_dont_care_gt_and_detection_inside_it_are_ignored():
    g = {"img_1": gt(((0, 0, 100, 20), "word"), ((0, 100, 200, 140), "###"))}
    # Second detection: 60% of its area inside the don't-care box -> ignored; third: 40% -> counts.
    d = {"img_1": dets(((0, 0, 100, 20), "word"), ((80, 100, 180, 140), "x"), ((-60, 100, 40, 140), "y"))}
    r = evaluate(g, d, "e2e")
    assert r["num_gt"] == 1 and r["num_det"] == 2 and r["matched"] == 1
    assert r["per_image"]["img_1"]["det_dont_care"] == [1]
    assert r["precision"] == 0.5 and r["recall"] == 1.0


def test_e2e_case_insensitive_and_gt_edge_punctuation():
    def e2e(gt_text, det_text):
        g = {"img_1": gt(((0, 0, 100, 20), gt_text))}
        return evaluate(g, {"img_1": dets(((0, 0, 100, 20), det_text))}, "e2e")["matched"]

    assert e2e("Hello", "HELLO") == 1
    assert e2e("Hello", "hellO") == 1
    # One special character may be dropped from each end of the GT only.
    assert e2e("Hello!", "hello") == 1
    assert e2e("(Hello)", "hello") == 1
    assert e2e("(Hello)", "(hello)") == 1
    assert e2e("Hello!!", "hello") == 0
    assert e2e("Hello", "hello!") == 0  # the detection is not stripped
    assert e2e("Hel.lo", "hello") == 0
    assert e2e("Hello-", "hello") == 0  # '-' is not a special character in the e2e match


def test_short_words_count_in_e2e_but_not_in_spotting():
    # E2E_iou_1_1.py applies MIN_LENGTH_CARE_WORD only in word spotting (include_in_dictionary);
    # the IC15 GT already marks short words '###'.
    g = {"img_1": gt(((0, 0, 100, 20), "to"), ((0, 50, 100, 70), "Street"))}
    d = {"img_1": dets(((0, 0, 100, 20), "to"), ((0, 50, 100, 70), "street"))}
    e2e = evaluate(g, d, "e2e")
    assert (e2e["num_gt"], e2e["num_det"], e2e["matched"]) == (2, 2, 2)
    ws = evaluate(g, d, "spotting")
    # 'to' becomes a don't-care region, and the detection on it is ignored with it.
    assert (ws["num_gt"], ws["num_det"], ws["matched"]) == (1, 1, 1)


def test_word_spotting_rules():
    def spot(gt_text, det_text):
        g = {"img_1": gt(((0, 0, 100, 20), gt_text))}
        r = evaluate(g, {"img_1": dets(((0, 0, 100, 20), det_text))}, "spotting")
        return r["num_gt"], r["matched"]

    assert spot("John's", "john") == (1, 1)  # 's removed
    assert spot("John's", "john's") == (1, 0)  # compared with the normalized GT
    assert spot("-Main-", "MAIN") == (1, 1)  # hyphens stripped from the ends
    assert spot("(Hello)", "hello") == (1, 1)
    assert spot("Hello!!", "hello") == (1, 1)  # all edge punctuation goes (unlike e2e)
    assert spot("Café", "CAFÉ") == (1, 1)
    assert spot("Wi-Fi", "wi-fi") == (1, 1)
    assert spot("A4B", "a4b") == (0, 0)  # digits: not a dictionary word -> don't care
    assert spot("don't", "dont") == (0, 0)  # inner apostrophe splits the word -> don't care
    assert spot("ab.", "ab") == (0, 0)  # under 3 characters after stripping
    # e2e on the same pairs differs.
    g = {"img_1": gt(((0, 0, 100, 20), "A4B"))}
    assert evaluate(g, {"img_1": dets(((0, 0, 100, 20), "a4b"))}, "e2e")["matched"] == 1


def test_global_aggregation_not_per_image_mean():
    g = {
        "img_1": gt(((0, 0, 10, 10), "aaa")),
        "img_2": gt(*[((0, 20 * k, 10, 20 * k + 10), "bbb") for k in range(3)]),
    }
    d = {"img_1": dets(((0, 0, 10, 10), "aaa")), "img_2": dets(((0, 0, 10, 10), "bbb"), ((50, 0, 60, 10), "x"))}
    r = evaluate(g, d, "e2e")
    # Global: 2 correct of 4 GT and 3 detections (per-image means would give recall 2/3).
    assert r["matched"] == 2 and r["num_gt"] == 4 and r["num_det"] == 3
    assert r["recall"] == pytest.approx(0.5) and r["precision"] == pytest.approx(2 / 3)
    assert r["hmean"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert r["per_image"]["img_2"]["recall"] == pytest.approx(1 / 3)


def test_empty_and_missing_submissions():
    g = {"img_1": gt(((0, 0, 10, 10), "aaa")), "img_2": gt(((0, 0, 10, 10), "###"))}
    r = evaluate(g, {}, "e2e")
    assert (r["precision"], r["recall"], r["hmean"], r["num_gt"], r["num_det"]) == (0.0, 0.0, 0.0, 1, 0)
    # An image without care GT: recall 1, precision 1 when nothing is detected, 0 otherwise.
    assert r["per_image"]["img_2"]["recall"] == 1.0 and r["per_image"]["img_2"]["precision"] == 1.0
    r = evaluate(g, {"img_2": dets(((50, 50, 60, 60), "zzz"))}, "e2e")
    assert r["per_image"]["img_2"]["precision"] == 0.0 and r["num_det"] == 1


def test_unknown_image_id_and_task():
    g = {"img_1": gt(((0, 0, 10, 10), "aaa"))}
    with pytest.raises(ValueError, match="img_7"):
        evaluate(g, {"img_7": []})
    with pytest.raises(ValueError, match="task"):
        evaluate(g, {}, "recognition")


# -------------------------------------------------------------------------------------- files


def test_gt_parsing_bom_crlf_commas_quotes(tmp_path):
    p = tmp_path / "gt_img_3.txt"
    p.write_bytes(
        "\ufeff1,2,3,2,3,4,1,4,Hello, world\r\n".encode("utf-8")
        + b"\r\n"
        + b'5,6,7,6,7,8,5,8,"say \\"hi\\""\r\n'
        + b"0,0,9,0,9,9,0,9,###"
    )
    words = read_gt_file(p)
    assert [w.text for w in words] == ["Hello, world", 'say "hi"', "###"]
    np.testing.assert_array_equal(words[0].quad, [[1, 2], [3, 2], [3, 4], [1, 4]])
    assert list(read_gt_dir(tmp_path)) == ["img_3"]


def test_malformed_line_names_file_and_line(tmp_path):
    p = tmp_path / "gt_img_1.txt"
    p.write_text("1,2,3,2,3,4,1,4,ok\n1,2,3,oops,3,4,1,4,bad\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"gt_img_1\.txt:2:.*expected x1,y1"):
        read_gt_file(p)
    with pytest.raises(ValueError, match="not found"):
        read_gt_dir(tmp_path / "missing")
    (tmp_path / "notes.txt").write_text("", encoding="utf-8")
    with pytest.raises(ValueError, match="notes.txt"):
        read_gt_dir(tmp_path)


def test_submission_round_trip(tmp_path):
    sub = {
        "img_1": [DetWord(box(0.4, 0.6, 10.2, 9.7), "Hi, there"), DetWord(box(1, 1, 5, 5), '"quoted"')],
        "img_2": [],
    }
    (tmp_path / "res_img_9.txt").write_text("1,1,2,1,2,2,1,2,stale\n", encoding="utf-8")
    write_submission_dir(tmp_path, sub)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["res_img_1.txt", "res_img_2.txt"]
    back = read_submission_dir(tmp_path)
    assert [w.text for w in back["img_1"]] == ["Hi, there", '"quoted"'] and back["img_2"] == []
    np.testing.assert_array_equal(back["img_1"][0].quad, box(0, 1, 10, 10))
    write_submission_dir(tmp_path, {"img_1": sub["img_1"][:1]}, with_text=False)
    assert (tmp_path / "res_img_1.txt").read_text(encoding="utf-8") == "0,1,10,1,10,10,0,10\n"
    assert read_submission_dir(tmp_path)["img_1"][0].text == ""


# ------------------------------------------------------------------------------------ lexicon


def test_edit_distance():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("", "abc") == 3
    assert edit_distance("abc", "abc") == 0


def test_apply_lexicon(tmp_path):
    lex = ["Street", "STRAND", "cafe", "Cafes", "stroot"]
    assert apply_lexicon("STREET", lex) == "Street"
    assert apply_lexicon("str3et", lex) == "Street"
    assert apply_lexicon("CAFE5", lex) == "cafe"  # tie (distance 1) with 'Cafes' -> first listed
    assert apply_lexicon("strxet", lex) == "Street"  # distance 1, 'stroot' is 2
    assert apply_lexicon("anything", []) == "anything"
    random.seed(0)
    words = ["".join(random.choice("abcde") for _ in range(random.randint(1, 7))) for _ in range(200)]
    for _ in range(50):
        q = "".join(random.choice("abcdeX") for _ in range(random.randint(0, 8)))
        d = [edit_distance(q.upper(), w.upper()) for w in words]
        assert apply_lexicon(q, words) == words[d.index(min(d))]
    p = tmp_path / "voc_img_1.txt"
    p.write_bytes(b"\xef\xbb\xbf# header\r\nALD\r\n\r\nBALLY\r\n")
    assert load_lexicon(p) == ["ALD", "BALLY"]
    assert lexicon_for("none", "img_1", tmp_path) is None
    assert lexicon_for("strong", "img_1", tmp_path) == ["ALD", "BALLY"]
    with pytest.raises(ValueError, match="kind"):
        lexicon_for("huge", "img_1", tmp_path)


# ---------------------------------------------------------------------------------- real data


@pytest.mark.skipif(not (IC15 / "gt").is_dir(), reason="../shared/data/ic15_dev not present")
def test_real_gt_as_submission_scores_one():
    g = read_gt_dir(IC15 / "gt")
    assert len(g) == 100
    sub = {k: [DetWord(w.quad, w.text) for w in v] for k, v in g.items()}
    for task in ("detection", "e2e"):
        r = evaluate(g, sub, task)
        assert r["hmean"] == 1.0 and r["num_gt"] == r["matched"] > 0, task
    # Images missing from the submission lower recall, not precision.
    half = {k: v for i, (k, v) in enumerate(sub.items()) if i % 2 == 0}
    r = evaluate(g, half, "detection")
    assert r["precision"] == 1.0 and 0 < r["recall"] < 1


@pytest.mark.skipif(not (IC15 / "lexicons").is_dir(), reason="../shared/data/ic15_dev not present")
def test_real_generic_lexicon():
    lex = lexicon_for("generic", "img_1", IC15 / "lexicons")
    assert len(lex) > 80000 and not any(w.startswith("#") for w in lex)
    assert apply_lexicon("Shopp1ng", lex) == "SHOPPING"
    assert lexicon_for("strong", "img_1", IC15 / "lexicons")[:2] == ["ALD", "ALE"]


# ---------------------------------------------------------------- word-score threshold

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def _bench_script(name: str, *args):
    """Run benchmarks/NAME.py with `args` in a subprocess -> the completed process."""
    return subprocess.run([sys.executable, str(BENCHMARKS / f"{name}.py"), *map(str, args)],
                          capture_output=True, text=True)


def _bench_module(name: str):
    """benchmarks/NAME.py imported as a module."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _choose_threshold(*args):
    return _bench_script("choose_threshold", *args)


def test_choose_threshold_writes_its_choice_and_keeps_the_tensors(tmp_path, untrained_weights):
    from safetensors.torch import load_file

    from spotrt.formats.weights import read_metadata
    from spotrt.model.weights import config_of

    w = tmp_path / "w.safetensors"
    shutil.copy(untrained_weights, w)
    proc = _choose_threshold(w, "--images", 2, "--levels", "0", "--json", tmp_path / "t.json", "--write")
    assert proc.returncode == 0, proc.stderr
    data = json.loads((tmp_path / "t.json").read_text())
    assert data["seed"] == 2 and len(data["sweeps"]["L0"]) == 20
    assert config_of(w).word_score_thresh == data["chosen"]
    assert f"wrote word_score_thresh {data['chosen']:.2f}" in proc.stdout
    before, after = load_file(str(untrained_weights)), load_file(str(w))
    assert before.keys() == after.keys() and all(before[k].equal(after[k]) for k in before)
    meta = read_metadata(w)
    assert meta["format"] == read_metadata(untrained_weights)["format"]


def test_choose_threshold_refuses_the_test_stream(tmp_path, untrained_weights):
    proc = _choose_threshold(untrained_weights, "--seed", 1)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "choose_threshold: error: --seed: found 1, expected another stream (seed 1 is the held-out evaluation set)"]


def test_choose_threshold_on_real_validation_scenes_and_never_on_dev(tmp_path, untrained_weights):
    from test_scenes import _write_set

    from spotrt.data.scenes import read_scene_set, write_camera_set

    val = write_camera_set(read_scene_set(_write_set(tmp_path / "s", 2)), tmp_path / "val")
    assert sorted(p.name for p in (val / "images").iterdir()) == ["img_1.jpg", "img_2.jpg"]
    first = (val / "gt" / "gt_img_1.txt").read_text().splitlines()[0]
    assert first == "400,338,560,338,560,371,400,371,Hello!"  # 960x640 -> 1280x720: x 4/3, y 9/8
    proc = _choose_threshold(untrained_weights, "--data", val, "--levels", "none", "--json", tmp_path / "t.json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads((tmp_path / "t.json").read_text())
    assert list(data["sweeps"]) == ["real"] and len(data["sweeps"]["real"]) == 20
    proc = _choose_threshold(untrained_weights, "--data", tmp_path / "ic15_dev", "--levels", "none")
    assert proc.returncode == 1 and "ic15_dev is for measuring only" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


# ------------------------------------------------------------- two models on the validation split

def test_paired_bootstrap_of_two_models_counts():
    cv = _bench_module("compare_val")
    # per image (matched, num_gt, num_det); B reads one more word of image 0 and reports one more
    a = np.array([[2, 4, 3], [1, 2, 2], [0, 3, 1]])
    b = np.array([[3, 4, 4], [1, 2, 2], [0, 3, 1]])
    r = cv.paired_bootstrap(a, b, rounds=500, seed=1)
    assert r["a"] == pytest.approx(2 * (3 / 6) * (3 / 9) / (3 / 6 + 3 / 9))      # P 3/6, R 3/9
    assert r["b"] == pytest.approx(2 * (4 / 7) * (4 / 9) / (4 / 7 + 4 / 9))      # P 4/7, R 4/9
    assert r["difference"] == pytest.approx(r["b"] - r["a"])
    low, high = r["interval_95"]
    # B's counts are A's or better on every image: draws without image 0 tie, every other favours B,
    # so B is ahead in about 1 - (2/3)^3 = 70 % of them and never behind
    assert low >= 0.0 and high > 0.0
    assert 0.6 < r["b_ahead"] < 0.8 and r["images"] == 3 and r["rounds"] == 500
    same = cv.paired_bootstrap(a, a, rounds=50)
    assert same["difference"] == 0 and same["interval_95"] == [0.0, 0.0] and same["b_ahead"] == 0.0
    assert cv.hmean(0, 0, 0) == 0.0
    with pytest.raises(ValueError, match="expected two"):
        cv.paired_bootstrap(a, b[:2], rounds=10)


def test_compare_val_on_real_validation_scenes_and_never_on_dev(tmp_path, untrained_weights):
    from test_scenes import _write_set

    from spotrt.data.scenes import read_scene_set, write_camera_set

    val = write_camera_set(read_scene_set(_write_set(tmp_path / "s", 2)), tmp_path / "val")
    proc = _bench_script("compare_val", untrained_weights, untrained_weights, "--data", val, "--rounds", 50, "--json", tmp_path / "c.json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads((tmp_path / "c.json").read_text())
    assert data["difference"] == 0 and data["read_by_a_only"] == data["read_by_b_only"] == 0
    assert data["images"] == 2 and data["words"] >= 2
    assert "B - A +0.000, 95 % paired bootstrap interval [+0.000, +0.000]" in proc.stdout
    for args, want in (((tmp_path / "ic15_dev",), "ic15_dev is for measuring only"),
                       ((val, "--threshold-b", "1.5"), "--threshold-b: found 1.5, expected a word score in 0..1"),
                       ((tmp_path / "nothing",), "compare_val: error:")):
        proc = _bench_script("compare_val", untrained_weights, untrained_weights, "--data", *args)
        assert proc.returncode == 1 and want in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1


# ------------------------------------------------------------------- recall by word height

def test_recall_by_height_bins_found_and_read_words():
    from types import SimpleNamespace

    rbh = _bench_module("recall_by_height")
    img = np.zeros((200, 300, 3), np.uint8)
    gt_words = {"img_1": [GTWord(box(0, 0, 50, 10), "ab"),      # 10 px: found, read right
                          GTWord(box(0, 20, 50, 32), "Cd-"),    # 12 px (bin edge goes up): found, misread
                          GTWord(box(0, 50, 90, 90), "efg"),    # 40 px: missed
                          GTWord(box(100, 0, 150, 50), "###")]}  # don't care: not counted
    words = [SimpleNamespace(quad=box(0, 0, 50, 10), text="ab"), SimpleNamespace(quad=box(0, 20, 50, 31), text="cx"),
             SimpleNamespace(quad=box(0, 60, 20, 70), text="efg")]  # IoU with "efg" well under 0.5
    spotter = SimpleNamespace(spot=lambda frame: words)
    t = rbh.tally(spotter, [(img, gt_words["img_1"])], progress=False)
    assert t[:, 0].tolist() == [1, 1, 1] and t[:, 1].tolist() == [1, 1, 0] and t[:, -1].tolist() == [1, 0, 0]
    assert t[0].sum() == 3
    lines = rbh.table({1.0: t, 1.5: t})
    assert lines[0] == "| height (px) | words | found 1 | read 1 | found 1.5 | read 1.5 |"
    assert lines[1] == "| 0-12 | 1 | 1.00 | 1.00 | 1.00 | 1.00 |" and lines[2] == "| 12-16 | 1 | 1.00 | 0.00 | 1.00 | 0.00 |"
    assert lines[-1] == "| all | 3 | 0.67 | 0.33 | 0.67 | 0.33 |"


def test_recall_by_height_bad_input_is_one_line(tmp_path):
    for args, expected in (([str(tmp_path), "--scale", "1", "9"], "scale: found 9.0"),
                           ([str(tmp_path)], "found no images/ and gt/ folders"),
                           ([str(tmp_path), "--synthetic-small", "3"], "found both a folder and --synthetic-small"),
                           ([], "found neither a folder nor --synthetic-small"),
                           (["--synthetic-small", "0"], "--synthetic-small: found 0")):
        proc = _bench_script("recall_by_height", *args)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 1 and len(lines) == 1 and expected in lines[0], proc.stderr
        assert lines[0].startswith("recall_by_height: error: ")


def test_recall_by_height_small_synthetic_words_are_small(untrained_weights):
    from spotrt.api import load_spotter

    rbh = _bench_module("recall_by_height")
    total, samples = rbh.small_text_samples(3)
    heights = [rbh.quad_height(g.quad) for _, words in samples for g in words]
    assert total == 3 and heights and max(heights) < 30 and min(heights) > 5
    t = rbh.tally(load_spotter(untrained_weights, min_score=0), rbh.small_text_samples(2)[1], progress=False)
    assert t[0].sum() > 0 and t[0, -1] == 0 and (t[1] <= t[0]).all() and (t[2] <= t[1]).all()
