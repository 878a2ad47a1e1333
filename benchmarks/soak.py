"""Soak test of the stream runtime: a looping source over many small frames through the whole
pipeline (tracking, JSON Lines, annotated video); checks that no frame record is lost and reports
RSS at the start and the end.

    nice -n 19 .venv/bin/python benchmarks/soak.py --frames 20000                  # fake spotter
    nice -n 19 .venv/bin/python benchmarks/soak.py --frames 20000 --model m.onnx   # a real backend

The fake spotter (default) reads one word per frame instantly, so the run measures the runtime
itself; with --model the backend runs too (slow on a CPU for 20,000 frames).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from spotrt.model.config import SpotterConfig
from spotrt.runner import INPUT, AnySizeRunner
from spotrt.runtime.pipeline import Pipeline, format_summary
from spotrt.runtime.sinks import JsonlSink, VideoSink
from spotrt.runtime.sources import IterableSource


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class FakeSpotter(AnySizeRunner):
    """A runner of any input size: one word per frame at the bright square's place (so the tracker
    follows it), through the same prepare -> stack -> run -> words path as the real backends."""

    name = "fake"

    def __init__(self) -> None:
        self.cfg = SpotterConfig()
        self.input_size = (self.cfg.input_height, self.cfg.input_width)
        self.load()

    def _load(self) -> None:
        pass

    def _close(self) -> None:
        pass

    def _infer(self, feed):
        green = feed[INPUT][0, 1] * self.cfg.std[1] + self.cfg.mean[1]
        ys, xs = np.nonzero(green > 200)
        t = self.cfg.max_word_len
        tokens = np.zeros((1, 1, t), np.int64)
        tokens[0, 0, :4] = [self.cfg.charset.index(c) + 1 for c in "soak"]
        box = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1] if len(xs) else [0, 0, 0, 0]
        return {"boxes": np.array([[box]], np.float32), "scores": np.full((1, 1), 0.9, np.float32),
                "tokens": tokens, "token_probs": np.ones((1, 1, t), np.float32),
                "count": np.array([1 if len(xs) else 0])}


def clip(frames: int, size) -> list[np.ndarray]:
    h, w = size
    out = []
    for i in range(frames):
        img = np.full((h, w, 3), 40, np.uint8)
        x = int((w - 20) * i / max(1, frames - 1))
        img[h // 3:h // 3 + 10, x:x + 20] = 255
        out.append(img)
    return out


class RssProbe:
    def __init__(self, every: int) -> None:
        self.every, self.samples, self.indices = every, [], []

    def write(self, r) -> None:
        self.indices.append(r.frame.index)
        if r.frame.index % self.every == 0:
            self.samples.append((r.frame.index, rss_mb()))

    def close(self) -> None:
        pass


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=20000)
    p.add_argument("--size", default="48x64", help="HxW of the frames (default 48x64)")
    p.add_argument("--every", type=int, default=1)
    p.add_argument("--model", default=None, help="run this model instead of the fake spotter")
    p.add_argument("--backend", default="auto")
    p.add_argument("--out", default=None, help="folder for soak.jsonl and soak.mp4 (default: a temporary one)")
    p.add_argument("--json", default=None, help="write the result here")
    a = p.parse_args()
    h, w = (int(v) for v in a.size.split("x"))
    loop = clip(50, (h, w))
    n = a.frames

    def looping():
        for i in range(n):
            yield loop[i % len(loop)]

    if a.model:
        from spotrt.api import load_spotter

        spotter = load_spotter(a.model, a.backend)
    else:
        spotter = FakeSpotter()
    out = Path(a.out or tempfile.mkdtemp(prefix="spotrt_soak_"))
    out.mkdir(parents=True, exist_ok=True)
    probe = RssProbe(every=max(1, n // 20))
    jsonl, video = out / "soak.jsonl", out / "soak.mp4"
    rss0 = rss_mb()
    t0 = time.perf_counter()
    summary = Pipeline([IterableSource(looping(), "loop", fps=25.0)], spotter,
                       [JsonlSink(jsonl), VideoSink(video, fps={0: 25.0}), probe], every=a.every).run()
    wall = time.perf_counter() - t0
    records = sum(1 for _ in jsonl.open())
    cap = cv2.VideoCapture(str(video))
    video_frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    lost = n - records
    ordered = probe.indices == list(range(n))
    # Warm-up allocations settle in the first frames: compare the sample after 5% with the last.
    start = probe.samples[1][1] if len(probe.samples) > 1 else rss0
    end = probe.samples[-1][1]
    print(format_summary(summary))
    print(f"frames {n}, records {records} (lost {lost}, in order: {ordered}), video frames {video_frames}")
    print(f"RSS: {rss0:.1f} MB before, {start:.1f} MB at frame {probe.samples[1][0] if len(probe.samples) > 1 else 0}, "
          f"{end:.1f} MB at frame {probe.samples[-1][0]} (growth {end - start:+.1f} MB); {wall:.1f} s")
    result = {"frames": n, "records": records, "lost": lost, "in_order": ordered, "video_frames": video_frames,
              "rss_mb": probe.samples, "rss_growth_mb": end - start, "wall_s": wall, "fps": summary["fps"],
              "overlap": summary["overlap"]}
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0 if lost == 0 and ordered and video_frames == n else 1


if __name__ == "__main__":
    sys.exit(main())
