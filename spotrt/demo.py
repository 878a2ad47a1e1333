"""`spotrt demo`: the shipped model on the project's own sample stream.

The stream is made here, not shipped: a synthetic street sign scene (seeded, so every run sees the
same frames) filmed by a slowly panning and zooming virtual camera.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

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


def run_demo(model=None, output="demo_out/demo.mp4", jsonl="demo_out/demo.jsonl", frames: int = 90) -> dict:
    from .api import load_spotter
    from .draw import draw_words

    spotter = load_spotter(model)
    out_path = Path(output)
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        Path(jsonl).parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SpotrtError(f"output {out_path.parent}: cannot be created ({exc.strerror}), expected a writable folder") from None
    h, w = FRAME_SIZE
    tmp_video = out_path.with_name(out_path.stem + ".part" + out_path.suffix)
    writer = cv2.VideoWriter(str(tmp_video), cv2.VideoWriter_fourcc(*"mp4v"), 15.0, (w, h))
    if not writer.isOpened():
        raise SpotrtError(f"output video {out_path}: OpenCV cannot open it for writing, expected a writable .mp4 path")
    tmp_jsonl = Path(str(jsonl) + ".tmp")
    last_line, counts, t0 = None, {}, time.perf_counter()
    with open(tmp_jsonl, "w") as log:
        for i, frame in enumerate(sample_stream(frames)):
            words = spotter.spot(frame)
            writer.write(draw_words(frame, words))
            log.write(json.dumps({"frame": i, "words": [wd.to_json() for wd in words]}) + "\n")
            for wd in words:
                counts[wd.text] = counts.get(wd.text, 0) + 1
            line = " ".join(wd.text for wd in sorted(words, key=lambda x: (x.quad[0, 1] // 40, x.quad[0, 0])))
            if line != last_line:
                print(f"frame {i:3d}: {line or '(nothing)'}")
                last_line = line
    writer.release()
    os.replace(tmp_video, out_path)
    os.replace(tmp_jsonl, jsonl)
    elapsed = time.perf_counter() - t0
    common = sorted(counts.items(), key=lambda kv: -kv[1])[:8]
    print(f"{frames} frames in {elapsed:.1f} s ({frames / elapsed:.1f} frames/s); most read: "
          + ", ".join(f"{t} ({n})" for t, n in common))
    print(f"annotated video: {out_path}\nper-frame words: {jsonl}")
    return {"frames": frames, "seconds": elapsed, "counts": counts}
