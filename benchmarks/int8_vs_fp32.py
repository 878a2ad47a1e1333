"""ONNX Runtime CPU: FP32 graph vs its INT8 Q/DQ copy, measured side by side in one run.

    .venv/bin/python benchmarks/int8_vs_fp32.py --fp32 export/model.portable.onnx \
        --int8 export/model.int8.onnx --runs 20 --threads 2

Runs alternate (fp32, int8, fp32, int8, ...) on the same normalized input, so both see the same
machine load; prints the median latency of each and the ratio fp32 / int8 (> 1: INT8 is faster).
Session creation and `--warmup` runs are excluded. Both sessions are made with spinning off (idle
threads sleep): with ONNX Runtime's default, the threads of the session that just ran busy-wait and
take cores from the other one. Speed is reported, never asserted by a test.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from spotrt.runtime.onnxruntime_backend import OnnxRuntimeSpotter


def measure(fp32: str, int8: str, runs: int = 20, warmup: int = 3, threads: int | None = None, seed: int = 0) -> dict:
    """Median latencies (ms) of both graphs, interleaved; and their ratio fp32/int8."""
    a = OnnxRuntimeSpotter(fp32, threads=threads, spinning=False)
    b = OnnxRuntimeSpotter(int8, threads=threads, spinning=False)
    if a.input_size != b.input_size or a.batch != b.batch:
        raise SystemExit(f"graphs differ: {a.input_size} batch {a.batch} vs {b.input_size} batch {b.batch}")
    x = np.random.default_rng(seed).standard_normal((a.batch, 3, *a.input_size)).astype(np.float32)
    for _ in range(warmup):
        a.run(x)
        b.run(x)
    ta, tb = [], []
    for _ in range(runs):
        for spotter, times in ((a, ta), (b, tb)):
            t = time.perf_counter()
            spotter.run(x)
            times.append(time.perf_counter() - t)
    ma, mb = statistics.median(ta) * 1e3, statistics.median(tb) * 1e3
    return {"fp32_ms": ma, "int8_ms": mb, "ratio_fp32_over_int8": ma / mb, "runs": runs, "threads": threads,
            "input_size": list(a.input_size), "batch": a.batch}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fp32", required=True, help="float graph (model.portable.onnx or model.onnx)")
    p.add_argument("--int8", required=True, help="its Q/DQ copy written by spotrt calibrate")
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads (default: its own)")
    p.add_argument("--json", default=None, help="also write the numbers here")
    a = p.parse_args()
    r = measure(a.fp32, a.int8, a.runs, a.warmup, a.threads)
    import onnxruntime

    print(f"onnxruntime {onnxruntime.__version__} CPU, input {r['input_size'][0]}x{r['input_size'][1]} batch "
          f"{r['batch']}, {a.threads or 'default'} threads, {a.runs} interleaved runs")
    print(f"fp32 median {r['fp32_ms']:.1f} ms | int8 median {r['int8_ms']:.1f} ms | fp32/int8 = "
          f"{r['ratio_fp32_over_int8']:.2f}x")
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump(r, f, indent=2)


if __name__ == "__main__":
    main()
