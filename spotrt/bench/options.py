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
AUTO = "auto"  # torch with weights where torch is installed, else onnxruntime with an exported graph
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
    graph: str | None = None                  # an exported graph measured as it is (onnxruntime), instead of
                                              # graphs exported from the weights: an .onnx given as the model,
                                              # or the shipped model's graph where torch is not installed
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


def torch_missing() -> bool:
    return importlib.util.find_spec("torch") is None


def _graph_for(model, backend: str) -> tuple[str | None, str]:
    """(the exported graph to measure as it is, or None for weights; the backend) for `model`, `backend`."""
    is_graph = model is not None and str(model).endswith(".onnx")
    if backend == AUTO:
        backend = "onnxruntime" if is_graph or (model is None and torch_missing()) else "torch"
    if is_graph:
        if backend != "onnxruntime":
            raise SpotrtError(f"--model {model}: found an exported graph with --backend {backend}, expected "
                              "--backend onnxruntime or auto for it (or a .safetensors weights file)")
        return str(model), backend
    if torch_missing() and model is None and backend == "onnxruntime":
        from ..formats import shipped

        return str(shipped.ONNX), backend
    if torch_missing():
        raise SpotrtError(f"--backend {backend}: found no torch installed (a runtime install), which bench needs to "
                          "export and time the weights; expected pip install 'spotrt[train]', or --model with an "
                          ".onnx graph (or no --model: the shipped model's graph) on --backend onnxruntime or auto")
    return None, backend


def make_options(model=None, backend: str = AUTO, precision="fp32", input_size=None, batch=None,
                 prep_threads=1, warmup=1, iterations=None, duration=None, frames=4, images=None, device: str = "cpu",
                 threads=None, compare: bool = True) -> BenchOptions:
    """Check and normalize bench settings; SpotrtError (one line) for the first bad one.

    `precision`, `input_size` and `batch` may be lists (or comma-separated text): the run sweeps
    over every combination (default 384x640, batch 1). `iterations` and `duration` exclude each
    other; neither = DEFAULT_DURATION. `model`: weights (bench exports, calibrates and builds the
    graphs itself) or an exported .onnx, measured as it is on onnxruntime at its own input size and
    batch (fp32; int8 calibrates it on the bench frames). `backend` auto: torch for weights where
    torch is installed, else onnxruntime (without a model: the shipped model's exported graph).
    """
    if model is not None and not Path(model).is_file():
        raise SpotrtError(f"--model {model}: file not found, expected a .safetensors weights file or an .onnx graph")
    if model is not None and not str(model).endswith((".safetensors", ".onnx")):
        raise SpotrtError(f"--model {model}: found a {Path(model).suffix or 'suffix-less'} file, expected a "
                          ".safetensors weights file (bench exports and calibrates the graphs itself) or an .onnx graph")
    backend = str(backend).strip().lower()
    if backend not in BACKENDS + (AUTO,):
        raise SpotrtError(f"--backend: found {backend!r}, expected one of {', '.join(BACKENDS + (AUTO,))}")
    graph, backend = _graph_for(model, backend)
    if backend == "tensorrt" and tensorrt_missing():
        raise SpotrtError(f"--backend tensorrt: {tensorrt_missing()}, expected TensorRT (JetPack: apt install "
                          "python3-libnvinfer; desktop: pip install tensorrt) or --backend torch|onnxruntime")
    if backend == "onnxruntime" and importlib.util.find_spec("onnxruntime") is None:
        raise SpotrtError("--backend onnxruntime: onnxruntime is not installed, expected pip install 'spotrt[runtime]'")
    precisions = tuple(dict.fromkeys(p.lower() for p in _items(precision, "--precision")))
    for p in precisions:
        if p not in PRECISIONS[backend]:
            hint = " (int8 runs as a Q/DQ graph: --backend onnxruntime or tensorrt)" if p == "int8" else ""
            raise SpotrtError(f"--precision: found {p!r} for backend {backend}, expected one of "
                              f"{', '.join(PRECISIONS[backend])}{hint}")
    sizes = _sizes(DEFAULT_SIZE if input_size is None else input_size)
    items = [1] if batch is None else [batch] if isinstance(batch, int) else _items(batch, "--batch")
    batches = tuple(dict.fromkeys(parse_int(b, "--batch", 1, MAX_BATCH) for b in items))
    if graph is not None:
        sizes, batches = _graph_shape(graph, sizes if input_size is not None else None,
                                      batches if batch is not None else None)
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
        model=None if model is None or graph is not None else str(model), backend=backend, graph=graph,
        precisions=precisions, input_sizes=sizes, batches=batches,
        prep_threads=parse_int(prep_threads, "--prep-threads", 1, 64), warmup=parse_int(warmup, "--warmup", 0),
        iterations=iters, duration=duration, frames=parse_int(frames, "--frames", 1, 256),
        images=None if images is None else str(images), device=device,
        threads=None if threads is None else parse_int(threads, "--threads", 1, 256), compare=bool(compare))


def _graph_shape(graph: str, sizes, batches):
    """An exported graph has one input size and batch: those, checked against any asked for (None: not asked)."""
    from ..formats.onnx_graph import SPOTTING_KINDS, load_graph

    _, meta = load_graph(graph, SPOTTING_KINDS)
    try:
        size = tuple(int(v) for v in meta["spotrt_input_size"].split("x"))
        batch = int(meta.get("spotrt_batch", "1"))
    except (KeyError, ValueError) as exc:
        raise SpotrtError(f"model {graph}: its spotrt metadata is invalid ({exc})") from None
    if sizes is not None and sizes != (size,):
        raise SpotrtError(f"--input-size: found {','.join(f'{h}x{w}' for h, w in sizes)} for the graph {graph}, "
                          f"expected its own {size[0]}x{size[1]} (export weights at other sizes with spotrt export)")
    if batches is not None and batches != (batch,):
        raise SpotrtError(f"--batch: found {','.join(map(str, batches))} for the graph {graph}, expected its own "
                          f"{batch}")
    return (size,), (batch,)
