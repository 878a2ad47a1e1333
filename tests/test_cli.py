"""The CLI's error paths: one line naming the thing, exit code 1, no traceback, nothing lost."""

import argparse
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from spotrt.cli import main
from spotrt.model.weights import FORMAT


def run_cli(*args):
    proc = subprocess.run([sys.executable, "-m", "spotrt.cli", *map(str, args)], capture_output=True, text=True)
    return proc.returncode, proc.stdout, proc.stderr


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    errors = [ln for ln in err if ln.startswith("spotrt: error:")]
    assert errors, err
    assert not any("Traceback" in ln for ln in err)
    return errors[0]


@pytest.fixture
def image_dir(tmp_path):
    d = tmp_path / "imgs"
    d.mkdir()
    rng = np.random.default_rng(0)
    for i in (1, 2):
        cv2.imwrite(str(d / f"img_{i}.png"), rng.integers(0, 255, (64, 96, 3), dtype=np.uint8))
    return d


def test_missing_input_subprocess(tmp_path):
    code, out, err = run_cli("spot", tmp_path / "nope.jpg")
    assert code == 1
    assert err.strip().count("\n") == 0 and "Traceback" not in err
    assert "nope.jpg" in err and "no such file" in err


def test_empty_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["spot", str(tmp_path / "empty")]) == 1
    line = one_error_line(capsys)
    assert "empty" in line and "no image files" in line


def test_unreadable_image_keeps_the_others(tmp_path, image_dir, untrained_weights, capsys):
    (image_dir / "img_3.jpg").write_text("not an image")
    out = tmp_path / "out.jsonl"
    rrc = tmp_path / "rrc"
    code = main(["spot", str(image_dir), "--model", str(untrained_weights), "--jsonl", str(out),
                 "--rrc-out", str(rrc), "--quiet"])
    assert code == 1
    line = one_error_line(capsys)
    assert "img_3.jpg" in line and "cannot decode" in line
    records = [json.loads(ln) for ln in out.read_text().splitlines()]
    assert [r["image"].rsplit("/", 1)[-1] for r in records] == ["img_1.png", "img_2.png"]
    assert sorted(p.name for p in rrc.iterdir()) == ["res_img_1.txt", "res_img_2.txt"]


def test_spot_outputs(tmp_path, image_dir, untrained_weights):
    out = tmp_path / "o.jsonl"
    assert main(["spot", str(image_dir / "img_1.png"), "--model", str(untrained_weights), "--jsonl", str(out),
                 "--draw", str(tmp_path / "draw"), "--quiet"]) == 0
    rec = json.loads(out.read_text())
    assert rec["image"].endswith("img_1.png") and isinstance(rec["words"], list)
    for w in rec["words"]:
        assert len(w["box"]) == 8 and isinstance(w["text"], str)
    assert cv2.imread(str(tmp_path / "draw" / "img_1.jpg")).shape == (64, 96, 3)


def test_weights_of_another_config(tmp_path, untrained_weights, image_dir, capsys):
    from safetensors import safe_open

    with safe_open(str(untrained_weights), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        meta = f.metadata()
    cfg = json.loads(meta["config"])
    cfg["feat_channels"] = 64
    bad = tmp_path / "other.safetensors"
    save_file(tensors, str(bad), metadata={**meta, "config": json.dumps(cfg)})
    assert main(["spot", str(image_dir), "--model", str(bad)]) == 1
    line = one_error_line(capsys)
    assert "other.safetensors" in line and "shape" in line and "expects" in line


def test_weights_without_spotrt_metadata(tmp_path, image_dir, capsys):
    bad = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(bad))
    assert main(["spot", str(image_dir), "--model", str(bad)]) == 1
    line = one_error_line(capsys)
    assert "foreign.safetensors" in line and FORMAT in line


def test_weights_not_safetensors(tmp_path, image_dir, capsys):
    bad = tmp_path / "junk.safetensors"
    bad.write_bytes(b"\x00" * 64)
    assert main(["read", str(image_dir / "img_1.png"), "--model", str(bad)]) == 1
    assert "junk.safetensors" in one_error_line(capsys)


def test_missing_model_file(tmp_path, image_dir, capsys):
    assert main(["spot", str(image_dir), "--model", str(tmp_path / "none.safetensors")]) == 1
    assert "none.safetensors" in one_error_line(capsys)


def test_read_writes_tsv(tmp_path, image_dir, untrained_weights):
    out = tmp_path / "r.tsv"
    assert main(["read", str(image_dir), "--model", str(untrained_weights), "--out", str(out), "--quiet"]) == 0
    lines = out.read_text().splitlines()
    assert [ln.split("\t")[0].rsplit("/", 1)[-1] for ln in lines] == ["img_1.png", "img_2.png"]


def test_unwritable_output(tmp_path, image_dir, untrained_weights, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["spot", str(image_dir), "--model", str(untrained_weights), "--rrc-out", str(blocker / "sub")]) == 1
    assert "sub" in one_error_line(capsys)


def test_eval_needs_a_source(capsys):
    assert main(["eval"]) == 1
    assert "--data" in one_error_line(capsys)


def test_eval_crops_scores_reading_by_kind_and_length(tmp_path, untrained_weights, capsys):
    import cv2
    import numpy as np

    crops = tmp_path / "crops"
    crops.mkdir()
    for i in range(3):
        cv2.imwrite(str(crops / f"word_{i + 1}.png"), np.full((32, 80, 3), 40 * i, np.uint8))
    (crops / "gt.txt").write_text('\ufeffword_1.png, "Hello"\r\nword_2.png, "42"\r\nword_3.png, "###"\r\n',
                                  encoding="utf-8")
    (crops / "kinds.txt").write_text("word_1.png,word\n")
    out = tmp_path / "c.json"
    assert main(["eval", "--crops", str(crops), "--model", str(untrained_weights), "--json", str(out), "--quiet"]) == 0
    r = json.loads(out.read_text())["crops"]
    assert r["words"] == 2  # '###' is not a word
    assert set(r["by_kind"]) == {"word", "digits"} and r["by_kind"]["word"]["words"] == 1
    assert set(r["by_length"]) == {"1-2", "5-6"}
    assert r["correct"] == sum(c["correct"] for c in r["by_kind"].values())
    assert "word accuracy on 2 crops" in capsys.readouterr().out


def test_eval_crops_bad_folder_and_negative_counts(tmp_path, capsys):
    assert main(["eval", "--crops", str(tmp_path)]) == 1
    assert "found no gt.txt" in one_error_line(capsys)
    (tmp_path / "gt.txt").write_text('word_9.png, "x"\n')
    assert main(["eval", "--crops", str(tmp_path)]) == 1
    assert "word_9.png is listed in gt.txt but absent" in one_error_line(capsys)
    assert main(["eval", "--synthetic", "-5"]) == 1
    assert "expected a number of images >= 1" in one_error_line(capsys)


def test_eval_bad_dataset(tmp_path, untrained_weights, capsys):
    assert main(["eval", "--data", str(tmp_path), "--model", str(untrained_weights)]) == 1
    assert "images/ and gt/" in one_error_line(capsys)


def test_eval_submission_roundtrip(tmp_path, capsys):
    gt = tmp_path / "gt"
    res = tmp_path / "res"
    gt.mkdir()
    res.mkdir()
    (gt / "gt_img_1.txt").write_text("0,0,40,0,40,20,0,20,hello\n10,30,50,30,50,50,10,50,###\n")
    (res / "res_img_1.txt").write_text("1,1,40,1,40,20,1,20,HELLO\n")
    assert main(["eval", "--submission", str(res), "--gt", str(gt), "--json", str(tmp_path / "s.json")]) == 0
    scores = json.loads((tmp_path / "s.json").read_text())
    assert scores["e2e"]["hmean"] == 1.0 and scores["detection"]["matched"] == 1


def test_bad_curriculum(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "r"), "--curriculum", "zero"]) == 1
    assert "curriculum" in one_error_line(capsys)


@pytest.mark.parametrize("args,words", [
    (["--steps", "0"], "train --steps: found 0, expected an integer >= 1"),
    (["--batch", "-1"], "train --batch: found -1, expected an integer >= 0"),
    (["--batch", "0", "--mosaics", "0"], "train --batch/--mosaics: found 0 and 0"),
    (["--real-fraction", "1.5"], "train --real-fraction: found 1.5, expected a fraction in [0, 1]"),
    (["--small-text", "-0.1"], "train --small-text: found -0.1, expected a fraction in [0, 1]"),
    (["--small-text", "0.3", "--no-augment"], "train --small-text: found 0.3 with --no-augment, expected --augment"),
    (["--punctuation", "0.1"], "train --punctuation: found 0.1 without --open-text, expected --open-text"),
    (["--punctuation", "1.5", "--open-text"], "train --punctuation: found 1.5, expected a fraction in [0, 1]"),
    (["--curriculum", "0:7"], "curriculum: found '0:7'"),
    (["--real-scenes", "3", "--batch", "2"], "train --real-scenes: found 3, expected 0..--batch (2)"),
    (["--real-scenes", "1"], "train --real-scenes: found no --scene-root"),
    (["--scene-root", "/nonexistent/x"], "train --scene-root /nonexistent/x: found no such folder"),
    (["--size", "100x200"], "train --size: found 100x200, expected HEIGHTxWIDTH with both positive multiples of 32"),
    (["--lr", "0"], "train --lr: found 0.0, expected a positive learning rate"),
    (["--arch", "decoder_hidden=0"], "train --arch: found 'decoder_hidden=0', expected a positive size"),
    (["--arch", "colour=3"], "train --arch: found 'colour=3', expected NAME=INTEGER"),
    (["--mosaic-curriculum", "5:1"], "train --mosaic-curriculum: found '5:1', expected to start at step 0"),
    (["--init", "/nonexistent/w.safetensors"], "train --init /nonexistent/w.safetensors: found no such file"),
    (["--levels", "110,a"], "train --levels: found '110,a', expected heights like"),
    (["--continue-from", "w.safetensors", "--resume"], "train --continue-from: found it with --init or --resume"),
])
def test_train_bad_options(tmp_path, capsys, args, words):
    assert main(["train", "--out", str(tmp_path / "run"), *args]) == 1
    assert words in one_error_line(capsys)
    assert not (tmp_path / "run").exists()  # nothing started


@pytest.mark.parametrize("command", ["spot", "run", "eval"])
@pytest.mark.parametrize("scale", ["0", "-1", "nan", "9"])
def test_bad_scale(tmp_path, image_dir, capsys, command, scale):
    target = {"spot": [str(image_dir)], "run": [str(image_dir)], "eval": ["--synthetic", "2"]}[command]
    out = tmp_path / "out.jsonl"
    jsonl = ["--jsonl", str(out)] if command != "eval" else []
    assert main([command, *target, "--scale", scale, *jsonl]) == 1
    line = one_error_line(capsys)
    assert f"scale: found {float(scale)}" in line and "expected a number from 0.1 to 4.0" in line
    assert not out.exists()


@pytest.mark.parametrize("command", ["spot", "run", "eval"])
@pytest.mark.parametrize("value", ["-0.1", "nan", "1.5"])
def test_bad_min_score(tmp_path, image_dir, capsys, command, value):
    target = {"spot": [str(image_dir)], "run": [str(image_dir)], "eval": ["--synthetic", "2"]}[command]
    out = tmp_path / "out.jsonl"
    jsonl = ["--jsonl", str(out)] if command != "eval" else []
    assert main([command, *target, "--min-score", value, *jsonl]) == 1
    line = one_error_line(capsys)
    assert f"min-score: found {float(value)}" in line and "expected a number from 0.0 to 1.0 (0: every word read)" in line
    assert not out.exists()


# ---------------------------------------------------------------- bad input, table-driven

def _bad_inputs(tmp_path, image_dir, weights):
    """(argv, words the one error line must hold) over the subcommands; each fails before any work."""
    ro = tmp_path / "ro"
    ro.mkdir(exist_ok=True)
    ro.chmod(0o500)
    bad_img = tmp_path / "bad.png"
    bad_img.write_bytes(b"not an image")
    nolex = tmp_path / "nolex"
    (nolex / "images").mkdir(parents=True, exist_ok=True)
    (nolex / "gt").mkdir(exist_ok=True)
    cv2.imwrite(str(nolex / "images" / "img_1.png"), np.zeros((32, 32, 3), np.uint8))
    (nolex / "gt" / "gt_img_1.txt").write_text("0,0,10,0,10,10,0,10,hi\n")
    w = str(weights)
    return [
        (["spot", image_dir, "--model", w, "--device", "foo"], "device 'foo': not known, expected cpu, cuda or cuda:N"),
        (["spot", image_dir, "--model", w, "--device", "cuda:x"], "device 'cuda:x': not known"),
        (["spot", tmp_path / "missing.png"], "missing.png"),
        (["spot", image_dir, "--backend", "tensorrt"], "model: found no --model, expected a TensorRT .engine"),
        (["spot", image_dir, "--model", w, "--jsonl", ro / "sub" / "x.jsonl"], "cannot be written"),
        (["read", bad_img, "--model", w], "1 of 1 inputs could not be read; nothing was written"),
        (["eval", "--synthetic", "-5"], "expected a number of images >= 1"),
        (["eval", "--synthetic-crops", "-1"], "expected a number of images >= 1"),
        (["eval", "--data", nolex, "--model", w], "no lexicons/ folder, expected one for --lexicon"),
        (["eval", "--data", nolex, "--model", w, "--json", ro / "sub" / "s.json"], "cannot be written"),
        (["eval", "--crops", tmp_path], "found no gt.txt"),
        (["export", "--model", tmp_path / "none.safetensors", "--out", tmp_path / "e"], "file not found"),
        (["train", "--out", tmp_path / "t", "--real-scenes", "1"], "train --real-scenes: found no --scene-root"),
        (["train", "--out", tmp_path / "t", "--paste-share", "1.5"], "train --paste-share: found 1.5"),
        (["train", "--out", tmp_path / "t", "--steps", "many"], "spotrt train: argument --steps: invalid int value"),
        (["check", "--model", tmp_path / "none.safetensors"], "file not found"),
        (["calibrate", "--out", tmp_path / "q.onnx"], "spotrt calibrate: the following arguments are required: --onnx"),
        (["calibrate", "--onnx", tmp_path / "none.onnx", "--out", tmp_path / "q.onnx"], "none.onnx"),
        (["build", "--onnx", tmp_path / "none.onnx"], "none.onnx"),
        (["bench", "--input-size", "100x100"], "--input-size: found 100x100, expected HEIGHTxWIDTH"),
        (["bench", "--batch", "0"], "--batch: found '0', expected an integer in [1, 64]"),
        (["run", tmp_path / "none.mp4"], "none.mp4: no such file or folder"),
        (["serve", "--max-batch", "0"], "serve --max-batch: found 0, expected a number of frames >= 1"),
        (["demo", "--frames", "-3"], "demo --frames: found -3, expected a number of frames >= 1"),
        (["spot"], "spotrt spot: the following arguments are required: INPUT"),
        (["nonsense"], "spotrt: argument command: invalid choice: 'nonsense'"),
    ]


def test_bad_input_table(tmp_path, image_dir, untrained_weights, capsys):
    import os

    from spotrt.cli import build_parser

    table = _bad_inputs(tmp_path, image_dir, untrained_weights)
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert set(commands) <= {str(argv[0]) for argv, _ in table}, "every subcommand has a bad input in the table"
    failures = []
    for argv, words in table:
        argv = [str(a) for a in argv]
        if "cannot be written" in words and os.access(str(tmp_path / "ro"), os.W_OK):
            # running as root: a read-only folder is writable; a path under a regular file is not
            blocker = tmp_path / "blocker"
            blocker.write_text("a file, not a folder")
            argv = [a.replace(str(tmp_path / "ro"), str(blocker)) for a in argv]
        code = main(argv)
        captured = capsys.readouterr()
        errors = [ln for ln in captured.err.splitlines() if ln.startswith("spotrt: error:")]
        if code != 1 or not errors or words not in errors[-1] or "Traceback" in captured.err:
            failures.append((argv, code, captured.err.strip()[-300:]))
    assert not failures, failures


def test_cuda_device_without_cuda_is_one_line(image_dir, untrained_weights, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert main(["spot", str(image_dir), "--model", str(untrained_weights), "--device", "cuda"]) == 1
    assert "device cuda: found no CUDA device here, expected --device cpu" in one_error_line(capsys)


def test_interrupted_spot_keeps_a_partial_jsonl_apart(tmp_path, image_dir, untrained_weights, monkeypatch):
    from spotrt import api

    spotter = api.load_spotter(untrained_weights)
    calls = {"n": 0}
    real = spotter.spot

    def flaky(image):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(image)

    monkeypatch.setattr(spotter, "spot", flaky)
    out = tmp_path / "w.jsonl"
    with pytest.raises(KeyboardInterrupt):
        api.spot_images(spotter, sorted(image_dir.iterdir()), jsonl=out, progress=False)
    assert not out.exists()
    partial = tmp_path / "w.jsonl.partial"
    assert len(partial.read_text().splitlines()) == 1
