"""Side-by-side comparisons of `spotrt bench`, each measured interleaved in one run and reported as ratios.

- single pass vs two stages: the shared-feature spotter against detect, crop, recompute features
  on every crop, recognize (same weights, same frames; torch);
- precisions on CPU: PyTorch eager vs ONNX Runtime FP32 vs ONNX Runtime INT8 (Q/DQ), network only;
- GPU kernels (a CUDA device only): each plugin's kernel vs its PyTorch equivalent on the same
  inputs, and the pipeline with both kernels vs all-PyTorch on the GPU;
- TensorRT (installed, with a GPU): FP32 vs FP16 vs INT8 engines.

Each returns {"status": "measured", ...} or {"status": "skipped", "reason": one line}.
"""

from __future__ import annotations

import importlib.util

import numpy as np

from .timing import interleaved, summarize
from .workloads import GraphWorkload, TorchWorkload, stage_costs


def skipped(reason: str) -> dict:
    return {"status": "skipped", "reason": reason}


def _ratios(samples: dict, pairs) -> dict:
    med = {k: summarize(v)["median_ms"] for k, v in samples.items()}
    return {f"{a}_over_{b}": med[a] / med[b] for a, b in pairs}


def single_vs_two_stage(pipe: TorchWorkload, frames, budget) -> dict:
    """Latency per frame of the single pass and of the two-stage way; ratio two_stage / single_pass."""
    counts = {"single_pass": [], "two_stage": []}

    def single(i):
        counts["single_pass"].append(len(pipe.run([frames[i % len(frames)]])[0]))

    def two(i):
        counts["two_stage"].append(len(pipe.run_two_stage([frames[i % len(frames)]])[0]))

    samples = interleaved({"single_pass": single, "two_stage": two}, budget)
    flops = {"single_pass": stage_costs(pipe.model, lambda lap: pipe.run(frames[:1], lap)),
             "two_stage": stage_costs(pipe.model, lambda lap: pipe.run_two_stage(frames[:1], lap))}
    total = {k: sum(s["flops"] for s in v.values()) for k, v in flops.items()}
    return {"status": "measured", "input_size": list(pipe.input_size), "device": str(pipe.device),
            "single_pass": summarize(samples["single_pass"]), "two_stage": summarize(samples["two_stage"]),
            **_ratios(samples, [("two_stage", "single_pass")]),
            "words_per_frame": {k: float(np.mean(v)) if v else 0.0 for k, v in counts.items()},
            "flops_per_frame": total,
            "flops_two_stage_over_single_pass": total["two_stage"] / total["single_pass"] if total["single_pass"] else None}


def cpu_precisions(model_cpu, graphs, frames, size, budget) -> dict:
    """PyTorch eager vs ONNX Runtime FP32 vs INT8 on the CPU: network only, batch 1, same inputs.

    Both sessions are made with spinning off: with ONNX Runtime's default, the threads of the session
    that just ran busy-wait while the next one runs and take its cores (on 2 cores, FP32 / INT8 read
    0.90x in the order eager, FP32, INT8 and 1.05x in the order FP32, INT8; 1.03x either way without)."""
    if importlib.util.find_spec("onnxruntime") is None:
        return skipped("onnxruntime is not installed (pip install 'spotrt[onnx]')")
    import torch

    fp32 = graphs.spotter("onnxruntime", "fp32", size, 1, spinning=False)
    int8 = graphs.spotter("onnxruntime", "int8", size, 1, spinning=False)
    pipe = TorchWorkload(model_cpu, size, "cpu")
    xs = [pipe.prepare_one(f)[0][None] for f in frames]
    ts = [torch.from_numpy(x) for x in xs]

    def eager(i):
        with torch.no_grad():
            model_cpu(ts[i % len(ts)])

    steps = {"torch_eager": eager, "onnxruntime_fp32": lambda i: fp32.run(xs[i % len(xs)]),
             "onnxruntime_int8": lambda i: int8.run(xs[i % len(xs)])}
    samples = interleaved(steps, budget)
    a, b = GraphWorkload(fp32), GraphWorkload(int8)
    same = [_texts(a.run([f])[0]) == _texts(b.run([f])[0]) for f in frames]
    return {"status": "measured", "input_size": list(size), "batch": 1, "graph": "portable",
            "threads": fp32.threads or "default", "onnxruntime_spinning": False,
            **{k: summarize(v) for k, v in samples.items()},
            **_ratios(samples, [("torch_eager", "onnxruntime_fp32"), ("onnxruntime_fp32", "onnxruntime_int8"),
                                ("torch_eager", "onnxruntime_int8")]),
            "int8_same_words_pct": 100.0 * float(np.mean(same))}


def _texts(words) -> list[str]:
    return sorted(w.text for w in words)


def tensorrt_precisions(graphs, frames, size, budget) -> dict:
    """TensorRT FP32 vs FP16 vs INT8 engines (network only, batch 1, same inputs)."""
    from ..plugins.nvrtc import gpu_unavailable_reason
    from .options import tensorrt_missing

    reason = tensorrt_missing() or gpu_unavailable_reason()
    if reason:
        return skipped(f"TensorRT not measured: {reason}")
    engines = {p: graphs.spotter("tensorrt", p, size, 1) for p in ("fp32", "fp16", "int8")}
    pipe = GraphWorkload(engines["fp32"])
    xs = [pipe.prepare_one(f)[0][None] for f in frames]
    samples = interleaved({f"tensorrt_{p}": (lambda i, e=e: e.run(xs[i % len(xs)])) for p, e in engines.items()},
                          budget)
    return {"status": "measured", "input_size": list(size), "batch": 1, **{k: summarize(v) for k, v in samples.items()},
            **_ratios(samples, [("tensorrt_fp32", "tensorrt_fp16"), ("tensorrt_fp32", "tensorrt_int8")])}


def gpu_kernels(model, frames, size, budget) -> dict:
    """The plugins' CUDA kernels vs their PyTorch equivalents on the GPU (skipped without one)."""
    import torch

    from ..plugins.nvrtc import gpu_unavailable_reason

    reason = gpu_unavailable_reason() if torch.cuda.is_available() else "torch.cuda is not available"
    if reason:
        return skipped(f"no CUDA device ({reason}): plugin kernels vs PyTorch not measured")
    from .kernels import KernelRunner

    pipe = TorchWorkload(model, size, "cuda")
    kr = KernelRunner(pipe)
    try:
        return _gpu_kernels(kr, pipe, frames, size, budget)
    finally:
        kr.close()


def _gpu_kernels(kr, pipe, frames, size, budget) -> dict:
    import torch

    inputs = [kr.region_inputs(f) for f in frames]
    sync = torch.cuda.synchronize

    def timed(fn):
        def step(i):
            fn(inputs[i % len(inputs)])
            sync()
        return step

    steps = {"var_roi_pool_kernel": timed(kr.pool_kernel), "var_roi_pool_torch": timed(kr.pool_torch),
             "attn_decoder_kernel": timed(kr.decode_kernel), "attn_decoder_torch": timed(kr.decode_torch),
             "pipeline_kernels": lambda i: kr.run_with_kernels([frames[i % len(frames)]]),
             "pipeline_torch": lambda i: pipe.run([frames[i % len(frames)]])}
    agree = [kr.agreement(x) for x in inputs]
    samples = interleaved(steps, budget)
    return {"status": "measured", "device": torch.cuda.get_device_name(), "input_size": list(size),
            **{k: summarize(v) for k, v in samples.items()},
            **_ratios(samples, [("var_roi_pool_torch", "var_roi_pool_kernel"),
                                ("attn_decoder_torch", "attn_decoder_kernel"), ("pipeline_torch", "pipeline_kernels")]),
            "max_abs_diff_pooled": max(a[0] for a in agree), "tokens_equal_pct": 100.0 * float(np.mean([a[1] for a in agree]))}
