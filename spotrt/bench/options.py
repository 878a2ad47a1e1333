"""What `spotrt bench` measures: its settings, parsed and checked before anything heavy is loaded.

Every option can be given as the CLI's text ("384x640,736x1280", "1,2", "fp32,int8") or as Python
values; a bad one is a SpotrtError of one line naming the option, what was found and what was expected.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from ..errors import SpotrtError
from ..options import parse_size

BACKENDS = ("torch", "onnxruntime", "tensorrt")
# int8 on ONNX Runtime and TensorRT is the Q/DQ graph of spotrt.calibration; the plugin kernels are fp32.
PRECISIONS = {"torch": ("fp32",), "onnxruntime": ("fp32", "int8"), "tensorrt": ("fp32", "fp16", "int8")}
DEFAULT_SIZE = (384, 640)  # small enough that the default run ends in under 2 minutes on a 2-core CPU
MAX_BATCH = 64
# Seconds per measurement when neither --iterations nor --duration is given: the default run then
# takes about the same time on a fast and on a slow (or busy) machine.
DEFAULT_DURATION = 3.0


@dataclass(frozen=True)
class BenchOptions:
    """Checked settings of one bench run (see `make_options`)."""

    model: str | None = None                  # weights (.safetensors); None = the shipped model
    backend: str = "torch"
    precisions: tuple[str, ...] = ("fp32",)
    input_sizes: tuple[tuple[int, int], ...] = (DEFAULT_SIZE,)
    batches: tuple[int, ...] = (1,)
    prep_threads: int = 1
    warmup: int = 1
    iterations: int | None = None             # timed runs per measurement; None when `duration` is given
    duration: float | None = DEFAULT_DURATION  # seconds per measurement (at least one run)
    frames: int = 4                           # distinct frames cycled through (and INT8 calibration)
    images: str | None = None                 # folder of frames; None = synthetic scenes
    device: str = "cpu"                       # torch device of the torch backend
    threads: int | None = None                # torch and ONNX Runtime intra-op threads (None: theirs)
    compare: bool = True                      # also run the side-by-side comparisons


def _items(value, what: str) -> list[str]:
    items = [v.strip() for v in value.split(",")] if isinstance(value, str) else [str(v).strip() for v in value]
    if not items or any(not v for v in items):
        raise SpotrtError(f"{what}: found {value!r}, expected a comma-separated list without empty items")
    return items


def parse_int(value, what: str, low: int, high: int | None = None) -> int:
    text = str(value).strip()
    ok = text.lstrip("-").isdigit() and low <= int(text) and (high is None or int(text) <= high)
    if not ok:
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise SpotrtError(f"{what}: found {value!r}, expected an integer {bound}")
    return int(text)


def _sizes(value) -> tuple[tuple[int, int], ...]:
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, int) for v in value):
        value = [value]
    items = [f"{v[0]}x{v[1]}" if isinstance(v, (tuple, list)) else v for v in
             ([value] if isinstance(value, str) else value)]
    return tuple(dict.fromkeys(parse_size(t) for s in items for t in _items(s, "--input-size")))


def tensorrt_missing() -> str | None:
    """None when the tensorrt bindings can be imported, else one line saying they are absent."""
    if importlib.util.find_spec("tensorrt") is None:
        return "the tensorrt Python bindings are not installed"
    return None


def make_options(model=None, backend: str = "torch", precision="fp32", input_size=DEFAULT_SIZE, batch=1,
                 prep_threads=1, warmup=1, iterations=None, duration=None, frames=4, images=None, device: str = "cpu",
                 threads=None, compare: bool = True) -> BenchOptions:
    """Check and normalize bench settings; SpotrtError (one line) for the first bad one.

    `precision`, `input_size` and `batch` may be lists (or comma-separated text): the run sweeps
    over every combination. `iterations` and `duration` exclude each other; neither = DEFAULT_DURATION.
    """
    if model is not None and not Path(model).is_file():
        raise SpotrtError(f"--model {model}: file not found, expected a .safetensors weights file")
    if model is not None and not str(model).endswith(".safetensors"):
        raise SpotrtError(f"--model {model}: found a {Path(model).suffix or 'suffix-less'} file, expected a "
                          ".safetensors weights file (bench exports and calibrates the graphs itself)")
    backend = str(backend).strip().lower()
    if backend not in BACKENDS:
        raise SpotrtError(f"--backend: found {backend!r}, expected one of {', '.join(BACKENDS)}")
    if backend == "tensorrt" and tensorrt_missing():
        raise SpotrtError(f"--backend tensorrt: {tensorrt_missing()}, expected TensorRT (JetPack: apt install "
                          "python3-libnvinfer; desktop: pip install tensorrt) or --backend torch|onnxruntime")
    if backend == "onnxruntime" and importlib.util.find_spec("onnxruntime") is None:
        raise SpotrtError("--backend onnxruntime: onnxruntime is not installed, expected pip install 'spotrt[onnx]'")
    precisions = tuple(dict.fromkeys(p.lower() for p in _items(precision, "--precision")))
    for p in precisions:
        if p not in PRECISIONS[backend]:
            hint = " (int8 runs as a Q/DQ graph: --backend onnxruntime or tensorrt)" if p == "int8" else ""
            raise SpotrtError(f"--precision: found {p!r} for backend {backend}, expected one of "
                              f"{', '.join(PRECISIONS[backend])}{hint}")
    sizes = _sizes(input_size)
    batches = tuple(dict.fromkeys(parse_int(b, "--batch", 1, MAX_BATCH)
                                  for b in ([batch] if isinstance(batch, int) else _items(batch, "--batch"))))
    if iterations is not None and duration is not None:
        raise SpotrtError(f"--iterations/--duration: found both ({iterations} and {duration}), expected one of them")
    if duration is not None:
        try:
            seconds = float(duration)
        except ValueError:
            seconds = -1.0
        if not 0 < seconds <= 3600:
            raise SpotrtError(f"--duration: found {duration!r}, expected seconds in (0, 3600]")
        duration = seconds
    if iterations is None and duration is None:
        duration = DEFAULT_DURATION
    iters = None if iterations is None else parse_int(iterations, "--iterations", 1)
    device = str(device).strip().lower()
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise SpotrtError(f"--device: found {device!r}, expected cpu or cuda")
    if device != "cpu" and backend != "torch":
        raise SpotrtError(f"--device: found {device!r} with backend {backend}, expected cpu (the device applies to "
                          "the torch backend; onnxruntime runs on CPU, tensorrt on the GPU)")
    if images is not None and not Path(images).is_dir():
        raise SpotrtError(f"--images {images}: no such folder, expected a folder of images")
    return BenchOptions(
        model=None if model is None else str(model), backend=backend, precisions=precisions, input_sizes=sizes,
        batches=batches, prep_threads=parse_int(prep_threads, "--prep-threads", 1, 64), warmup=parse_int(warmup, "--warmup", 0),
        iterations=iters, duration=duration, frames=parse_int(frames, "--frames", 1, 256),
        images=None if images is None else str(images), device=device,
        threads=None if threads is None else parse_int(threads, "--threads", 1, 256), compare=bool(compare))
