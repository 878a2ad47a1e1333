"""`spotrt bench`: the sweep (input size x batch x precision) and the comparisons -> one result dict.

Every field of the result is documented in report.SCHEMA. Latencies are per batch, in ms; FLOPs
and bytes are per frame, counted on the torch model at the same input size (the exported graphs
compute the same network).
"""

from __future__ import annotations

import copy
import importlib.util
import os
import platform
import tempfile
import time
from pathlib import Path

from ..errors import SpotrtError
from ..formats.digest import sha256_file
from .options import BenchOptions
from .timing import Budget, PeakMemory, interleaved, staged, summarize

FORMAT = "spotrt-bench-1"


def _version(module: str) -> str | None:
    try:
        return __import__(module).__version__
    except Exception:  # absent, or present but broken: either way not usable here
        return None


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict:
    torch = __import__("torch") if importlib.util.find_spec("torch") else None  # a runtime install has none
    return {"platform": platform.platform(), "python": platform.python_version(), "cpu": _cpu_name(),
            "cpu_count": os.cpu_count(), "load_average_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
            "torch": torch and torch.__version__, "torch_threads": torch and torch.get_num_threads(),
            "onnxruntime": _version("onnxruntime"), "tensorrt": _version("tensorrt"),
            "gpu": torch.cuda.get_device_name() if torch and torch.cuda.is_available() else None}


def _peak_fraction(flops_per_frame: float, fps: float, backend: str, precision: str, device: str):
    """(achieved / peak, which peak or why none): only for a GPU whose peak jetson.HOST_GPUS knows."""
    from .jetson import host_peak

    if device == "cpu":
        return None, "unknown: no published peak for this CPU"
    import torch

    name = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    peak = host_peak(name)
    if peak is None:
        return None, f"unknown: no peak known for {name or 'this GPU'}"
    p = precision if backend == "tensorrt" else "fp32"
    return flops_per_frame * fps / peak.peak(p), f"of the {peak.name} {p} peak ({peak.source})"


def measure_point(pipe, cost_pipe, frames, batch: int, opts: BenchOptions, backend: str, precision: str) -> dict:
    """Stages, end to end, pipelined throughput, memory and cost of one sweep point."""
    from .workloads import pipelined, stage_costs

    def batch_of(i: int):
        return [frames[(i * batch + j) % len(frames)] for j in range(batch)]

    budget = Budget(opts.iterations, opts.duration, opts.warmup)
    again = Budget(opts.iterations, opts.duration, 0)
    words: list[int] = []
    device = str(pipe.device)
    with PeakMemory(device if backend == "torch" else "cpu") as mem:  # torch's allocator only
        stage_samples = staged(lambda i, lap: pipe.run(batch_of(i), lap), budget, pipe.sync)
        e2e = interleaved({"e2e": lambda i: words.append(sum(len(w) for w in pipe.run(batch_of(i))))}, again)["e2e"]
        thr = pipelined(pipe, frames, batch, opts.prep_threads, again)
    e2e_stats = summarize(e2e)
    serial_fps = batch / (e2e_stats["median_ms"] / 1e3)
    if cost_pipe is None:  # a graph measured as it is: no torch model to count on
        cost = {"flops_per_frame": None, "bytes_per_frame": None, "bytes_fused_per_frame": None, "stages": {},
                "counted_on": None}
        fraction, note = None, "unknown: no FLOPs counted (they are counted on the torch model of a weights file)"
    else:
        costs = stage_costs(cost_pipe.model, lambda lap: cost_pipe.run(batch_of(0), lap))
        per_frame = {k: {n: c / batch for n, c in v.items()} for k, v in costs.items()}
        flops = sum(v["flops"] for v in per_frame.values())
        cost = {"flops_per_frame": flops, "bytes_per_frame": sum(v["bytes"] for v in per_frame.values()),
                "bytes_fused_per_frame": sum(v["bytes_fused"] for v in per_frame.values()),
                "stages": per_frame, "counted_on": f"torch {cost_pipe.device}"}
        fraction, note = _peak_fraction(flops, thr["frames_per_s"], backend, precision, device)
    return {
        "backend": backend, "precision": precision, "input_size": list(pipe.input_size), "batch": batch,
        "prep_threads": opts.prep_threads, "device": device,
        "stages": {s: summarize(stage_samples[s]) for s in pipe.stages if s in stage_samples},
        "end_to_end": {**e2e_stats, "frames_per_s": serial_fps},
        "throughput": {**thr, "speedup_over_serial": thr["frames_per_s"] / serial_fps},
        "memory": {"peak_rss_mib": mem.host_mib, "peak_rss_scope": mem.scope, "device_peak_mib": mem.device_mib},
        "cost": cost,
        "peak_fraction": fraction, "peak_fraction_note": note,
        "words_per_frame": sum(words) / (len(words) * batch) if words else 0.0,
    }


def _settings(opts: BenchOptions, model: Path) -> dict:
    return {"model": str(model), "model_sha256": sha256_file(model), "backend": opts.backend,
            "precisions": list(opts.precisions), "input_sizes": [list(s) for s in opts.input_sizes],
            "batches": list(opts.batches), "prep_threads": opts.prep_threads, "warmup": opts.warmup,
            "iterations": opts.iterations, "duration_s": opts.duration, "frames": opts.frames,
            "frame_source": opts.images or "synthetic scenes (spotrt.data.synth, level 1)",
            "device": opts.device, "threads": opts.threads}


def run_graph_bench(opts: BenchOptions, log=None) -> dict:
    """The sweep of an exported graph measured as it is (opts.graph), on ONNX Runtime; no torch.

    fp32 is the graph; int8 its Q/DQ copy, calibrated on the bench frames. No FLOPs, no Jetson
    estimates and no comparisons: those are computed on the torch model of a weights file."""
    from ..calibration.calibrate import calibrate
    from ..calibration.frames import calibration_batches
    from ..runtime.onnxruntime_backend import OnnxRuntimeSpotter
    from . import compare
    from .jetson import estimates
    from .workloads import GraphWorkload, bench_frames

    log = log or (lambda line: None)
    graph = Path(opts.graph)
    fp32 = OnnxRuntimeSpotter(graph, threads=opts.threads)
    size, batch = fp32.input_size, fp32.batch
    frames, source = bench_frames(size, opts.frames, fp32.cfg.charset, opts.images, with_source=True)
    result = {"format": FORMAT, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "environment": environment(),
              "settings": {**_settings(opts, graph), "frame_source": source}, "runs": [], "comparisons": {}}
    with tempfile.TemporaryDirectory(prefix="spotrt-bench-") as tmp:
        for precision in opts.precisions:
            log(f"bench: onnxruntime {precision} {size[0]}x{size[1]} batch {batch} ({graph.name})")
            spotter = fp32
            if precision == "int8":
                c = fp32.cfg
                data = calibration_batches(((str(i), f) for i, f in enumerate(frames)), c.mean, c.std, size, batch)
                spotter = OnnxRuntimeSpotter(calibrate(graph, Path(tmp) / "model.int8.onnx", batches=data,
                                                       threads=opts.threads).out, threads=opts.threads)
            result["runs"].append(measure_point(GraphWorkload(spotter), None, frames, batch, opts, "onnxruntime",
                                                precision))
    if opts.compare:
        reason = "needs the torch model: bench --model WEIGHTS.safetensors where torch is installed"
        result["comparisons"] = {name: compare.skipped(reason) for name in
                                 ("single_vs_two_stage", "cpu_precisions", "gpu_kernels", "tensorrt_precisions")}
    result["jetson_estimates"] = estimates(result["runs"])  # none: no FLOPs counted
    return result


def run_bench(opts: BenchOptions, log=None) -> dict:
    """Run the sweep and (opts.compare) the comparisons; `log(line)` hears progress. -> result dict."""
    if opts.graph is not None:
        return run_graph_bench(opts, log)
    import torch

    from ..model.weights import DEFAULT_WEIGHTS, load_weights
    from . import compare
    from .jetson import estimates
    from .workloads import GraphWorkload, Graphs, TorchWorkload, bench_frames

    log = log or (lambda line: None)
    if opts.threads:
        torch.set_num_threads(opts.threads)
    if opts.device != "cpu" and not torch.cuda.is_available():
        raise SpotrtError(f"--device {opts.device}: torch.cuda is not available here, expected a CUDA build of torch "
                          "and a GPU (or --device cpu)")
    weights = Path(opts.model) if opts.model else DEFAULT_WEIGHTS
    model = load_weights(weights, "cpu").eval()
    dev_model = model if opts.device == "cpu" else copy.deepcopy(model).to(opts.device)
    frames_cache: dict = {}

    def frames_at(size):
        if tuple(size) not in frames_cache:
            frames_cache[tuple(size)] = bench_frames(tuple(size), opts.frames, model.cfg.charset, opts.images)
        return frames_cache[tuple(size)]

    budget = Budget(opts.iterations, opts.duration, opts.warmup)
    result = {
        "format": FORMAT, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "environment": environment(),
        "settings": _settings(opts, weights),
        "runs": [], "comparisons": {},
    }
    with tempfile.TemporaryDirectory(prefix="spotrt-bench-") as tmp:
        graphs = Graphs(model, frames_at, tmp, opts.threads)
        for size in opts.input_sizes:
            frames = frames_at(size)
            torch_pipe = TorchWorkload(dev_model if opts.backend == "torch" else model, size,
                                       opts.device if opts.backend == "torch" else "cpu")
            for batch in opts.batches:
                for precision in opts.precisions:
                    log(f"bench: {opts.backend} {precision} {size[0]}x{size[1]} batch {batch}")
                    pipe = torch_pipe if opts.backend == "torch" else \
                        GraphWorkload(graphs.spotter(opts.backend, precision, size, batch))
                    result["runs"].append(measure_point(pipe, torch_pipe, frames, batch, opts, opts.backend, precision))
        if opts.compare:
            size = opts.input_sizes[0]
            frames = frames_at(size)
            log(f"compare: single pass vs two-stage ({size[0]}x{size[1]}, torch {opts.device})")
            c = result["comparisons"]
            c["single_vs_two_stage"] = compare.single_vs_two_stage(TorchWorkload(dev_model, size, opts.device),
                                                                    frames, budget)
            log("compare: PyTorch eager vs ONNX Runtime FP32 vs INT8 (CPU)")
            c["cpu_precisions"] = compare.cpu_precisions(model, graphs, frames, size, budget)
            log("compare: plugin CUDA kernels vs PyTorch (GPU)")
            gpu_model = dev_model if opts.device != "cpu" else (
                copy.deepcopy(model).cuda() if torch.cuda.is_available() else model)
            c["gpu_kernels"] = compare.gpu_kernels(gpu_model, frames, size, budget)
            log("compare: TensorRT FP32 vs FP16 vs INT8")
            c["tensorrt_precisions"] = compare.tensorrt_precisions(graphs, frames, size, budget)
    result["jetson_estimates"] = estimates(result["runs"])
    return result
