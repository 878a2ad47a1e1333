"""A runtime install in a fresh virtual environment that really has no torch: `pip install
'spotrt[runtime]'` from a copy of this checkout, then spot, run, read, eval and bench on the shipped
model through the installed `spotrt` command, compared with the onnxruntime backend here.

It builds the environment (about 25 s with pip's cache, plus about 30 s of commands on 2 cores), so
it runs where SPOTRT_FRESH_VENV=1 (.ci/run sets it) and skips elsewhere.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import shared_data

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ("img_2", "img_3")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("SPOTRT_FRESH_VENV") != "1",
                       reason="builds a virtual environment without torch: set SPOTRT_FRESH_VENV=1 (.ci/run does)"),
]


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["OMP_NUM_THREADS"] = "1"
    return env


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """A fresh venv with spotrt[runtime] installed from a copy of the checkout (not editable)."""
    base = tmp_path_factory.mktemp("fresh")
    src = base / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "spotrt", src / "spotrt", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    env = base / "venv"
    python = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([python, "-m", "venv", str(env)], check=True, env=_env())
    pip = subprocess.run([str(env / "bin" / "python"), "-m", "pip", "install", "-q", f"{src}[runtime]"],
                         capture_output=True, text=True, env=_env(), cwd=base)
    assert pip.returncode == 0, pip.stderr[-2000:]
    return env


def _run(venv: Path, cwd: Path, *args) -> subprocess.CompletedProcess:
    return subprocess.run([str(venv / "bin" / "spotrt"), *map(str, args)], capture_output=True, text=True,
                          env=_env(), cwd=cwd, timeout=600)


@pytest.fixture(scope="module")
def here():
    """The onnxruntime backend on the shipped graph, in this (torch-equipped) environment."""
    from spotrt.api import load_spotter
    from spotrt.formats import shipped

    return load_spotter(shipped.ONNX, "onnxruntime", threads=1)


@pytest.fixture(scope="module")
def dev_subset(tmp_path_factory) -> Path:
    """Two ICDAR 2015 dev images with their ground truth and lexicons, in the dataset's layout."""
    root = tmp_path_factory.mktemp("ic15_subset")
    for sub in ("images", "gt", "lexicons"):
        (root / sub).mkdir()
    for vocabulary in ("generic_vocabulary.txt", "weak_vocabulary.txt"):
        shutil.copy(shared_data("ic15_dev", "lexicons", vocabulary), root / "lexicons")
    for name in IMAGES:
        shutil.copy(shared_data("ic15_dev", "images", f"{name}.jpg"), root / "images")
        shutil.copy(shared_data("ic15_dev", "gt", f"gt_{name}.txt"), root / "gt")
        shutil.copy(shared_data("ic15_dev", "lexicons", f"voc_{name}.txt"), root / "lexicons")
    return root


def _words(words) -> list:
    return [(w["text"], np.round(w["box"], 1).tolist()) for w in words]


def test_the_venv_has_no_torch_and_its_own_spotrt(venv, tmp_path):
    code = ("import importlib.util, spotrt; print(spotrt.__file__); "
            "print([m for m in ('torch', 'PIL', 'onnxruntime', 'onnxruntime_extensions', 'cuda.bindings') "
            "if importlib.util.find_spec(m.split('.')[0]) is not None])")
    out = subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, env=_env(),
                         cwd=tmp_path, check=True).stdout.splitlines()
    assert out[0].startswith(str(venv)), out  # the installed package, not this checkout
    assert out[1] == "['onnxruntime', 'onnxruntime_extensions', 'cuda.bindings']", out
    proc = subprocess.run([str(venv / "bin" / "python"), "-c", "import torch"], capture_output=True, text=True,
                          env=_env(), cwd=tmp_path)
    assert proc.returncode == 1 and "No module named 'torch'" in proc.stderr


def test_spot_and_run_find_the_words_of_the_onnxruntime_backend(venv, here, dev_subset, tmp_path):
    from spotrt.imageops import read_image

    images = [dev_subset / "images" / f"{n}.jpg" for n in IMAGES]
    expected = [_words([w.to_json() for w in here.spot(read_image(p))]) for p in images]
    assert sum(map(len, expected)) >= 5
    proc = _run(venv, tmp_path, "spot", *images, "--jsonl", tmp_path / "spot.jsonl", "--quiet")
    assert proc.returncode == 0, proc.stderr
    got = [json.loads(line) for line in (tmp_path / "spot.jsonl").read_text().splitlines()]
    assert [Path(r["image"]).name for r in got] == [p.name for p in images]
    assert [_words(r["words"]) for r in got] == expected
    proc = _run(venv, tmp_path, "run", dev_subset / "images", "--jsonl", tmp_path / "run.jsonl", "--quiet")
    assert proc.returncode == 0, proc.stderr
    frames = [json.loads(line) for line in (tmp_path / "run.jsonl").read_text().splitlines()]
    frames = [f for f in frames if "frame" in f and not f.get("dropped")]
    assert [[w["text"] for w in f["words"]] for f in frames] == [[t for t, _ in e] for e in expected]


def test_read_reads_crops_as_the_onnxruntime_backend(venv, here, dev_subset, tmp_path):
    from spotrt.imageops import read_image

    image = read_image(dev_subset / "images" / "img_2.jpg")
    crops = []
    for i, word in enumerate(here.spot(image)[:3]):
        quad = np.asarray(word.quad, np.float32).reshape(-1, 2)
        (x1, y1), (x2, y2) = np.floor(quad.min(axis=0)).astype(int), np.ceil(quad.max(axis=0)).astype(int)
        crops.append(tmp_path / f"crop{i}.png")
        cv2.imwrite(str(crops[-1]), image[max(y1, 0):y2, max(x1, 0):x2])
    expected = [f"{p}\t{here.read(read_image(p))[0]}" for p in crops]
    proc = _run(venv, tmp_path, "read", *crops)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == expected and all(line.split("\t")[1] for line in expected)


def test_eval_scores_as_the_onnxruntime_backend(venv, here, dev_subset, tmp_path):
    from spotrt.eval import runner

    expected = runner.evaluate_icdar(here, dev_subset, runner.LEXICONS, progress=False)
    expected["recognition"] = runner.recognition_accuracy(here, dev_subset, progress=False)
    proc = _run(venv, tmp_path, "eval", "--data", dev_subset, "--json", tmp_path / "eval.json", "--quiet")
    assert proc.returncode == 0, proc.stderr
    got = json.loads((tmp_path / "eval.json").read_text())
    assert got == json.loads(json.dumps(expected))
    assert got["detection"]["hmean"] > 0 and "| detection" in proc.stdout


def test_bench_measures_the_shipped_graph(venv, tmp_path):
    proc = _run(venv, tmp_path, "bench", "--duration", "0.2", "--warmup", "0", "--frames", "1", "--no-compare",
                "--json", tmp_path / "bench.json", "--quiet")
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "bench.json").read_text())
    assert result["environment"]["torch"] is None
    assert Path(result["settings"]["model"]).name == "spotrt_light.onnx"
    assert "OpenCV" in result["settings"]["frame_source"]  # no Pillow for the synthetic scenes
    (run,) = result["runs"]
    assert (run["backend"], run["precision"], run["input_size"]) == ("onnxruntime", "fp32", [736, 1280])
    assert run["end_to_end"]["n"] >= 1 and run["end_to_end"]["median_ms"] > 0
    assert "| onnxruntime | fp32 | 736x1280 | 1 |" in proc.stdout


@pytest.mark.parametrize("args,words", [
    (["spot", "IMG", "--backend", "torch"], "backend torch: found no torch installed"),
    (["spot", "IMG", "--model", "WEIGHTS"], "found a weights file, which only the torch backend reads"),
    (["train", "--out", "run", "--steps", "1"], "train: found no torch installed, expected pip install 'spotrt[train]'"),
    (["export", "--out", "exp"], "export: found no torch installed"),
])
def test_what_needs_torch_says_so_in_one_line(venv, dev_subset, tmp_path, args, words):
    from spotrt.formats import shipped

    args = [str(dev_subset / "images" / "img_2.jpg") if a == "IMG" else str(shipped.WEIGHTS) if a == "WEIGHTS"
            else a for a in args]
    proc = _run(venv, tmp_path, *args)
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(err) == 1 and words in err[0] and "Traceback" not in proc.stderr, proc.stderr
