"""`spotrt demo`: the shipped model on the project's own sample stream.

The stream is made here, not shipped: a synthetic street sign scene (seeded, so every run sees the
same frames) filmed by a slowly panning and zooming virtual camera.
"""

from __future__ import annotations

import time

import cv2
import numpy as np

from .errors import SpotrtError


FRAME_SIZE = (360, 640)  # height, width
SCENE_SEED = 2017


def sample_stream(frames: int = 90, seed: int = SCENE_SEED):
    """Yield BGR frames of a virtual camera panning over one synthetic scene."""
    from .data.synth import SynthGenerator

    h, w = FRAME_SIZE
    scene = SynthGenerator().scene(seed, level=0, height=int(h * 1.25), width=int(w * 1.25)).image
    sh, sw = scene.shape[:2]
    for i in range(frames):
        t = i / max(1, frames - 1)
        zoom = 1.0 + 0.08 * np.sin(np.pi * t)
        cx = sw / 2 + (sw - w) * 0.4 * np.cos(2 * np.pi * t)
        cy = sh / 2 + (sh - h) * 0.3 * np.sin(2 * np.pi * t)
        m = np.array([[zoom, 0, w / 2 - zoom * cx], [0, zoom, h / 2 - zoom * cy]], dtype=np.float32)
        yield cv2.warpAffine(scene, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


class _PrintReadings:
    """Prints a frame's reading whenever it changes (words in reading order), and counts them."""

    def __init__(self) -> None:
        self.last_line, self.counts = None, {}

    def write(self, result) -> None:
        if result.frame.dropped is not None:
            return
        for tw in result.words:
            self.counts[tw.text] = self.counts.get(tw.text, 0) + 1
        words = sorted(result.words, key=lambda x: (x.quad[0, 1] // 40, x.quad[0, 0]))
        line = " ".join(tw.text for tw in words)
        if line != self.last_line:
            print(f"frame {result.frame.index:3d}: {line or '(nothing)'}")
            self.last_line = line

    def close(self) -> None:
        pass


def run_demo(model=None, output="demo_out/demo.mp4", jsonl="demo_out/demo.jsonl", frames: int = 90,
             backend: str = "auto") -> dict:
    """The stream runtime (spotrt.runtime) over the sample stream: every frame read, tracked, written."""
    from .api import load_spotter
    from .runtime.sources import IterableSource
    from .runtime.stream import run_stream

    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
        raise SpotrtError(f"demo --frames: found {frames}, expected a number of frames >= 1")
    spotter = load_spotter(model, backend)
    printer = _PrintReadings()
    source = IterableSource(sample_stream(frames), name="demo stream", fps=15.0)
    t0 = time.perf_counter()
    summary = run_stream([source], spotter=spotter, output=output, jsonl=jsonl, quiet=True,
                         extra_sinks=[printer], print_summary=False)
    elapsed = time.perf_counter() - t0
    n = summary["frames_in"]
    common = sorted(printer.counts.items(), key=lambda kv: -kv[1])[:8]
    print(f"{n} frames in {elapsed:.1f} s ({n / elapsed:.1f} frames/s, pipeline overlap {summary['overlap']:.2f}x); "
          "most read: " + ", ".join(f"{t} ({k})" for t, k in common))
    print(f"annotated video: {output}\nper-frame words: {jsonl}")
    return {"frames": n, "seconds": elapsed, "counts": printer.counts, "summary": summary}
