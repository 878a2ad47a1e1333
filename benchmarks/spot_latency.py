"""Latency of `spot` on one image with the torch backend: model load excluded, median of N runs.

    .venv/bin/python benchmarks/spot_latency.py ../shared/data/ic15_dev/images/img_1.jpg --runs 10
    .venv/bin/python benchmarks/spot_latency.py IMAGE --scale 1 1.5 2   # scales interleaved, ratios to the first
    .venv/bin/python benchmarks/spot_latency.py IMAGE --model A.safetensors --model B.safetensors  # models interleaved
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from spotrt.api import load_spotter
from spotrt.imageops import read_image


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("image")
    p.add_argument("--model", action="append", default=None,
                   help="weights (default: the shipped model); repeat to time several models interleaved")
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--scale", type=float, nargs="+", default=[1.0],
                   help="one or more --scale values, timed interleaved run by run (default 1.0)")
    a = p.parse_args()
    models = a.model or [None]
    cases = [(m, s) for m in models for s in a.scale]
    spotters = [load_spotter(m, scale=s) for m, s in cases]
    image = read_image(a.image)
    for sp in spotters:
        for _ in range(a.warmup):
            sp.spot(image)
    times: list[list[float]] = [[] for _ in spotters]
    words = [0] * len(spotters)
    for _ in range(a.runs):  # interleaved: a noisy machine slows every scale alike
        for i, sp in enumerate(spotters):
            t = time.perf_counter()
            words[i] = len(sp.spot(image))
            times[i].append(time.perf_counter() - t)
    print(f"image {a.image} {image.shape[1]}x{image.shape[0]}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    base = statistics.median(times[0])
    for (m, s), ts, n in zip(cases, times, words):
        med = statistics.median(ts)
        name = f"{m or 'shipped model'}, " if len(models) > 1 else ""
        print(f"{name}scale {s:g}: spot latency median {med * 1000:.0f} ms, min {min(ts) * 1000:.0f} ms, "
              f"max {max(ts) * 1000:.0f} ms over {a.runs} runs, {n} words, {med / base:.2f}x the first")


if __name__ == "__main__":
    main()
