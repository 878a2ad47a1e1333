"""The Python API behind the CLI: load a spotter, spot words in images, read crops."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from .errors import SpotrtError
from .fileio import check_writable, ensure_dir, open_partial
from .imageops import IMAGE_EXTS, collect_images, read_image  # noqa: F401 (the API's)
from .options import check_min_score, check_scale, set_min_score

BACKENDS = ("torch", "onnxruntime", "tensorrt", "auto")
ENGINE_EXTS = (".engine", ".plan")


def _is_onnx(model) -> bool:
    return model is not None and str(model).lower().endswith(".onnx")


def _is_engine(model) -> bool:
    return model is not None and str(model).lower().endswith(ENGINE_EXTS)


def load_spotter(model=None, backend: str = "auto", device: str = "cpu", threads: int | None = None,
                 scale: float = 1.0, min_score: float | None = None, spinning: bool = True):
    """A spotter for `model` on `backend`.

    `model`: a weights file (None = the shipped default), an exported .onnx (plugin or portable
    graph) or a TensorRT engine (.engine, with its .engine.json). `backend`: torch (weights files),
    onnxruntime (.onnx; without a model the shipped model's exported graph), tensorrt (.engine) or
    auto (see resolve_backend: the shipped graph on onnxruntime where torch is not installed).
    `threads`: ONNX Runtime intra-op threads (None = its default).
    `spinning` (onnxruntime): False lets the session's idle threads sleep instead of busy-waiting, for
    several spotters that run at once on the same cores (`spotrt serve --instances N` turns it off for N > 1:
    each spinning session takes the cores the others are computing on).
    `scale`: resize every image by this before the network, boxes still in the image's pixels
    (below 1 for text taller than the largest anchor, about 70 px, or than the largest pyramid factor
    times that for a model with coarse passes: about 270 px for the shipped one; above 1 for tiny text: the torch
    backend grows the frame, a fixed-size graph or engine reads it at the largest scale its input holds
    and says so once on stderr).
    `min_score`: report only words scoring at least this (detection x character probability;
    None = the model's own `word_score_thresh`, 0 = every word read).
    """
    scale = check_scale(scale)  # before loading: a bad option costs no model load
    min_score = check_min_score(min_score)
    spotter = _load(model, backend, device, threads, spinning)
    spotter.scale = scale
    set_min_score(spotter, min_score)
    return spotter


def torch_installed() -> bool:
    """Whether torch can be imported here (looked up, not imported: a runtime install has none)."""
    return importlib.util.find_spec("torch") is not None


def resolve_backend(model, backend: str) -> tuple:
    """(model, backend) that `model` and `backend` stand for, checked; SpotrtError (one line) otherwise.

    auto: tensorrt for an .engine, onnxruntime for an .onnx, torch for a weights file. Without a
    model: torch with the shipped weights where torch is installed, else the shipped model's exported
    graph (spotrt.formats.shipped) on onnxruntime, as with --backend onnxruntime.
    """
    if backend not in BACKENDS:
        raise SpotrtError(f"backend {backend!r}: not available, expected one of {', '.join(BACKENDS)}")
    if backend == "auto":
        if model is None:
            backend = "torch" if torch_installed() else "onnxruntime"
        else:
            backend = "tensorrt" if _is_engine(model) else "onnxruntime" if _is_onnx(model) else "torch"
    if backend == "onnxruntime" and model is None:
        from .formats import shipped

        if not shipped.ONNX.is_file():
            raise SpotrtError(f"model {shipped.ONNX}: file not found, expected the shipped model's exported graph "
                              f"(the package is incomplete; regenerate it with {shipped.EXPORT_COMMAND})")
        model = shipped.ONNX
    if backend == "torch" and not torch_installed():
        if model is None:
            raise SpotrtError("backend torch: found no torch installed (a runtime install), expected pip install "
                              "'spotrt[train]', or --backend auto or onnxruntime for the shipped model's exported graph")
        if not _is_onnx(model) and not _is_engine(model):
            raise SpotrtError(f"model {model}: found a weights file, which only the torch backend reads, and no torch "
                              "installed (a runtime install); expected pip install 'spotrt[train]', or an .onnx "
                              "exported by spotrt export, or a TensorRT .engine")
    return model, backend


def _load(model, backend: str, device: str, threads: int | None, spinning: bool = True):
    model, backend = resolve_backend(model, backend)
    if backend == "tensorrt" or _is_engine(model):
        if not _is_engine(model):
            raise SpotrtError(f"model{'' if model is None else ' ' + str(model)}: found "
                              f"{'no --model' if model is None else 'a non-engine file'}, "
                              "expected a TensorRT .engine written by spotrt build for the tensorrt backend")
        if backend != "tensorrt":
            raise SpotrtError(f"model {model}: found a TensorRT engine, expected --backend tensorrt or auto for it")
        if not Path(model).is_file():
            raise SpotrtError(f"model {model}: file not found, expected a TensorRT .engine written by spotrt build")
        from .runtime.tensorrt_backend import TensorRTSpotter

        return TensorRTSpotter(model)
    if model is not None and not Path(model).is_file():
        expected = "an exported .onnx graph" if backend == "onnxruntime" else "a .safetensors weights file"
        raise SpotrtError(f"model {model}: file not found, expected {expected}")
    if backend == "onnxruntime":
        if not _is_onnx(model):
            raise SpotrtError(f"model{'' if model is None else ' ' + str(model)}: found "
                              f"{'no --model' if model is None else 'a non-.onnx file'}, "
                              "expected an .onnx graph written by spotrt export for the onnxruntime backend")
        try:
            from .runtime.onnxruntime_backend import OnnxRuntimeSpotter
        except ImportError as exc:
            raise SpotrtError(f"backend onnxruntime: {exc.name or exc} is not installed, expected "
                              "pip install 'spotrt[runtime]'") from None
        return OnnxRuntimeSpotter(model, threads=threads, spinning=spinning)
    if _is_onnx(model):
        raise SpotrtError(f"model {model}: found an .onnx graph, expected a .safetensors weights file for the "
                          "torch backend (use --backend onnxruntime or auto)")
    check_device(device)
    from .model.infer import TorchSpotter

    return TorchSpotter(model, device=device)


def run_stream(sources, model=None, backend: str = "auto", device: str = "cpu", threads: int | None = None,
               spotter=None, **options) -> dict:
    """`spotrt run`: read every source with `spotter`, or with the one `model`/`backend`/`device`/`threads`
    load (as load_spotter; loaded after the sources and outputs are checked) -> the run's summary.
    `options`: those of spotrt.runtime.stream.run_stream (output, jsonl, every, max_frames, scale, ...)."""
    from functools import partial

    from .runtime.stream import run_stream as run

    if spotter is not None:
        return run(sources, spotter=spotter, **options)
    resolve_backend(model, backend)  # a missing backend or torch fails before the sources open
    return run(sources, load=partial(_load, model, backend, device, threads), **options)


def check_device(device: str) -> str:
    """A torch device the torch backend can use here ('cpu', 'cuda', 'cuda:N'), or one clear error line."""
    name = str(device)
    index = name.partition(":")[2]
    if name == "cpu":
        return name
    if not (name == "cuda" or (name.startswith("cuda:") and index.isdigit())):
        raise SpotrtError(f"device {name!r}: not known, expected cpu, cuda or cuda:N")
    import torch

    if not torch.cuda.is_available():
        raise SpotrtError(f"device {name}: found no CUDA device here, expected --device cpu")
    if index and int(index) >= torch.cuda.device_count():
        raise SpotrtError(f"device {name}: found {torch.cuda.device_count()} CUDA devices, expected an index below that")
    return name


def check_writable_file(path) -> Path:
    """Fail now, in one line, when `path` cannot be written (its folder is created if missing)."""
    return check_writable(path)


@dataclass
class SpotReport:
    images: int = 0
    words: int = 0
    failed: list[str] = field(default_factory=list)  # one line per unreadable image


def spot_images(spotter, paths, jsonl=None, rrc_out=None, draw=None, progress: bool = True) -> SpotReport:
    """Spot words in every image; write JSON Lines, ICDAR 2015 result files and drawings.

    An unreadable image does not stop the run: it is listed in the report's `failed` and the others
    are still written. Files are written through a temporary name and renamed when complete.
    """
    from .draw import draw_words
    from .eval.icdar15 import DetWord, write_submission_dir

    rrc_dir = ensure_dir(rrc_out) if rrc_out else None
    draw_dir = ensure_dir(draw) if draw else None
    out, partial = open_partial(jsonl) if jsonl else (None, None)
    report = SpotReport()
    dets: dict[str, list] = {}
    complete = False
    try:
        for path in tqdm(paths, desc="spot", unit="img", disable=not progress):
            try:
                image = read_image(path)
            except SpotrtError as exc:
                report.failed.append(str(exc))
                continue
            words = spotter.spot(image)
            report.images += 1
            report.words += len(words)
            if out:
                out.write(json.dumps({"image": str(path), "words": [w.to_json() for w in words]}) + "\n")
            if rrc_dir is not None:
                dets[Path(path).stem] = [DetWord(w.quad, w.text, w.score) for w in words]
            if draw_dir is not None:
                import cv2

                cv2.imwrite(str(draw_dir / (Path(path).stem + ".jpg")), draw_words(image, words))
        complete = True
    finally:
        if out:
            out.close()
            if complete:  # published only when whole; an interrupted run keeps its lines apart
                os.replace(partial, jsonl)
            else:
                print(f"spotrt: note: interrupted: the words of {report.images} images are in {partial}",
                      file=sys.stderr)
    if rrc_dir is not None:
        write_submission_dir(rrc_dir, dets)
    return report


def read_crops(spotter, paths, progress: bool = True) -> tuple[list[tuple[str, str, float]], list[str]]:
    """Recognize each crop as one word -> ([(path, text, score)], [unreadable image lines])."""
    results, failed = [], []
    for path in tqdm(paths, desc="read", unit="crop", disable=not progress):
        try:
            crop = read_image(path)
        except SpotrtError as exc:
            failed.append(str(exc))
            continue
        text, score = spotter.read(crop)
        results.append((str(path), text, score))
    return results, failed
