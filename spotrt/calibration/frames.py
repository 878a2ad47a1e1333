"""Calibration frames: a folder of images or a video, sampled evenly, preprocessed like the runtime.

Every frame goes through `imageops.preprocess(..., fixed=True)` at the graph's input size with the
graph's mean and std (from its spotrt metadata): exactly what the ONNX Runtime and TensorRT
backends feed the network, so the ranges describe the tensors the deployed model sees.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..errors import SpotrtError
from ..imageops import IMAGE_EXTS, preprocess, read_image

MIN_SIDE = 8  # a frame smaller than this carries no text to calibrate on


def even_indices(total: int, count: int) -> list[int]:
    """`count` indices spread evenly over range(total) (all of them when count >= total)."""
    if total <= 0 or count <= 0:
        return []
    if count >= total:
        return list(range(total))
    return [int((k + 0.5) * total / count) for k in range(count)]


def _check_frame(frame, source: str) -> np.ndarray:
    if frame is None or frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        shape = None if frame is None else frame.shape
        raise SpotrtError(f"calibration frame {source}: found {shape}, expected an (H, W, 3) BGR image")
    if min(frame.shape[:2]) < MIN_SIDE:
        raise SpotrtError(f"calibration frame {source}: found size {frame.shape[1]}x{frame.shape[0]}, expected at "
                          f"least {MIN_SIDE}x{MIN_SIDE} pixels")
    return frame


def image_frames(folder, count: int) -> Iterator[tuple[str, np.ndarray]]:
    """(name, BGR frame) for `count` images of `folder`, sampled evenly in name order."""
    p = Path(folder)
    if not p.is_dir():
        raise SpotrtError(f"calibration images {p}: no such folder, expected a folder of images")
    files = sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in IMAGE_EXTS)
    if not files:
        raise SpotrtError(f"calibration images {p}: found no image files, expected {', '.join(sorted(IMAGE_EXTS))}")
    for i in even_indices(len(files), count):
        yield str(files[i]), _check_frame(read_image(files[i]), str(files[i]))


def video_frames(path, count: int) -> Iterator[tuple[str, np.ndarray]]:
    """(name, BGR frame) for `count` frames of a video, sampled evenly (OpenCV)."""
    import cv2

    p = Path(path)
    if not p.is_file():
        raise SpotrtError(f"calibration video {p}: file not found, expected a video file")
    cap = cv2.VideoCapture(str(p))
    try:
        if not cap.isOpened():
            raise SpotrtError(f"calibration video {p}: OpenCV cannot open it, expected a readable video file")
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        if total <= 0:
            raise SpotrtError(f"calibration video {p}: found 0 frames, expected a video with frames")
        for i in even_indices(total, count):
            cap.set(cv2.CAP_PROP_POS_FRAMES, i)
            ok, frame = cap.read()
            if not ok:
                raise SpotrtError(f"calibration video {p}: frame {i} of {total} cannot be read, expected every "
                                  "frame to decode")
            yield f"{p}#{i}", _check_frame(frame, f"{p}#{i}")
    finally:
        cap.release()


def calibration_batches(frames, mean, std, input_size: tuple[int, int], batch: int = 1) -> list[np.ndarray]:
    """Preprocessed (batch, 3, H, W) float32 arrays from (name, frame) pairs; the last batch is padded
    by repeating its frames. SpotrtError when there are none."""
    xs = []
    for name, frame in frames:
        x, _ = preprocess(frame, mean, std, input_size, multiple=32, fixed=True)
        if x.shape != (3, *input_size):
            raise SpotrtError(f"calibration frame {name}: preprocessed to {x.shape}, expected (3, {input_size[0]}, "
                              f"{input_size[1]})")
        xs.append(x)
    if not xs:
        raise SpotrtError("calibration set: found no frames, expected at least one image or video frame")
    out = []
    for i in range(0, len(xs), batch):
        chunk = xs[i : i + batch]
        chunk += [chunk[k % len(chunk)] for k in range(batch - len(chunk))]
        out.append(np.stack(chunk).astype(np.float32))
    return out


def check_batch(array: np.ndarray, shape: tuple[int, ...], name: str = "calibration batch") -> np.ndarray:
    """A preprocessed batch given directly (API use) must have the graph's input shape exactly."""
    a = np.asarray(array)
    if a.shape != tuple(shape):
        raise SpotrtError(f"{name}: found shape {a.shape}, expected {tuple(shape)} (the graph's input size)")
    return np.ascontiguousarray(a, dtype=np.float32)
