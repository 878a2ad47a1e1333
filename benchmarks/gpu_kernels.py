"""On a CUDA GPU: the plugins' CUDA kernels against their PyTorch equivalents, on real frames.

The `gpu_kernels` comparison of `spotrt bench --compare`, alone and without ONNX Runtime or
TensorRT: VarRoIPool and AttnDecoder compiled with NVRTC for this GPU, launched on the same torch
tensors as `var_roi_pool` and `AttentionDecoder.greedy`, timed interleaved (each call synchronised),
then the whole torch pipeline with and without the two kernels. It also reports how far the kernel
outputs are from torch's (max |pooled difference|, share of regions read the same).

    python benchmarks/gpu_kernels.py --images DIR [--model W.safetensors] [--size 736x1280] \
        [--iterations 200] [--json out/gpu_kernels.json]

Without a GPU it prints one line saying why and exits 1.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from spotrt.errors import SpotrtError  # noqa: E402
from spotrt.fileio import write_bytes_atomic  # noqa: E402
from spotrt.options import parse_size  # noqa: E402

PAIRS = (("var_roi_pool_torch", "var_roi_pool_kernel"), ("attn_decoder_torch", "attn_decoder_kernel"),
         ("pipeline_torch", "pipeline_kernels"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="weights (default: the shipped model)")
    ap.add_argument("--images", default=None, help="frames from this folder (default: synthetic scenes)")
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--size", default="736x1280", metavar="HxW")
    ap.add_argument("--iterations", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    try:
        import torch

        from spotrt.bench import compare
        from spotrt.bench.timing import Budget
        from spotrt.bench.workloads import bench_frames
        from spotrt.model.weights import DEFAULT_WEIGHTS, load_weights

        if not torch.cuda.is_available():
            raise SpotrtError("gpu_kernels: found no CUDA device for torch, expected a GPU machine")
        size = parse_size(a.size, "--size")
        weights = a.model or DEFAULT_WEIGHTS
        model = load_weights(weights, "cpu").eval().cuda()
        frames = bench_frames(size, a.frames, model.cfg.charset, a.images)
        res = compare.gpu_kernels(model, frames, size, Budget(a.iterations, None, a.warmup))
    except SpotrtError as exc:
        print(f"gpu_kernels: error: {exc}", file=sys.stderr)
        return 1
    res = {"weights": str(weights), "frames": a.images or "synthetic", "torch": torch.__version__, **res}
    if res.get("status") != "measured":
        print(f"gpu_kernels: {res.get('reason', res)}")
        return 1
    print(f"{res['device']}, {size[0]}x{size[1]}, {len(frames)} frames, torch {torch.__version__}")
    print(f"{'what':<14} {'torch ms':>9} {'kernel ms':>10} {'torch/kernel':>13}")
    for t, k in PAIRS:
        mt, mk = res[t]["median_ms"], res[k]["median_ms"]
        print(f"{t.rsplit('_', 1)[0]:<14} {mt:>9.3f} {mk:>10.3f} {mt / mk:>12.2f}x")
    print(f"max |pooled kernel - torch| {res['max_abs_diff_pooled']:.3g}; regions read the same "
          f"{res['tokens_equal_pct']:.1f} %")
    if a.json:
        write_bytes_atomic(Path(a.json), json.dumps(res, indent=1).encode(), "gpu_kernels --json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
