"""Several ONNX Runtime spotters at once in one process (as `spotrt serve --instances N` runs them):
frames/s in all with the sessions' idle threads spinning (ONNX Runtime's default) and sleeping,
measured in interleaved rounds, the ratio printed.

    .venv/bin/python benchmarks/ort_instances.py ../shared/data/ic15_dev/images/img_1.jpg --instances 2
    .venv/bin/python benchmarks/ort_instances.py IMAGE --model export/model.onnx --seconds 10 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time

from spotrt.api import load_spotter
from spotrt.imageops import read_image


def frames_per_s(model, image, instances: int, spinning: bool, seconds: float) -> float:
    """Each spotter in its own thread, reading `image` over and over for `seconds`: frames/s in all."""
    spotters = [load_spotter(model, "onnxruntime", spinning=spinning) for _ in range(instances)]
    for sp in spotters:
        sp.spot(image)  # warm-up
    counts = [0] * instances
    stop = time.perf_counter() + seconds

    def work(i: int) -> None:
        while time.perf_counter() < stop:
            spotters[i].spot(image)
            counts[i] += 1

    threads = [threading.Thread(target=work, args=(i,)) for i in range(instances)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for sp in spotters:
        sp.close()
    return sum(counts) / seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("image")
    p.add_argument("--model", default=None, help="an exported .onnx (default: the shipped model's graph)")
    p.add_argument("--instances", type=int, default=2)
    p.add_argument("--seconds", type=float, default=8.0, help="per measurement")
    p.add_argument("--rounds", type=int, default=2, help="spinning on, then off, this many times")
    a = p.parse_args()
    image = read_image(a.image)
    rates: dict[bool, list[float]] = {True: [], False: []}
    for r in range(a.rounds):  # interleaved: a noisy machine slows both alike
        for spinning in (True, False):
            rates[spinning].append(frames_per_s(a.model, image, a.instances, spinning, a.seconds))
            print(f"round {r + 1}: spinning {'on ' if spinning else 'off'}: {rates[spinning][-1]:.2f} frames/s",
                  flush=True)
    on, off = statistics.median(rates[True]), statistics.median(rates[False])
    print(f"image {a.image} {image.shape[1]}x{image.shape[0]}, {a.instances} instances, {os.cpu_count()} CPUs, "
          f"ONNX Runtime's default threads each: median {on:.2f} frames/s spinning, {off:.2f} sleeping, "
          f"{off / on:.2f}x")


if __name__ == "__main__":
    main()
