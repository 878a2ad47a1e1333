"""Latency of `spot` on one image with the torch backend: model load excluded, median of N runs.

    .venv/bin/python benchmarks/spot_latency.py ../shared/data/ic15_dev/images/img_1.jpg --runs 10
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
    p.add_argument("--model", default=None)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    a = p.parse_args()
    spotter = load_spotter(a.model)
    image = read_image(a.image)
    for _ in range(a.warmup):
        spotter.spot(image)
    times = []
    for _ in range(a.runs):
        t = time.perf_counter()
        words = spotter.spot(image)
        times.append(time.perf_counter() - t)
    print(f"image {a.image} {image.shape[1]}x{image.shape[0]}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {len(words)} words")
    print(f"spot latency: median {statistics.median(times) * 1000:.0f} ms, min {min(times) * 1000:.0f} ms, "
          f"max {max(times) * 1000:.0f} ms over {a.runs} runs")


if __name__ == "__main__":
    main()
