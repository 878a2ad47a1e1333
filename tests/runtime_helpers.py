"""Fakes and small files shared by the runtime tests (no model, no hardware)."""

from __future__ import annotations

import time

import cv2
import numpy as np

from spotrt.model.config import SpotterConfig
from spotrt.postprocess import SpottedWord, box_to_quad

SIZE = (120, 200)  # height, width of the test videos


def frame_image(i: int, size=SIZE) -> np.ndarray:
    """Frame i: uniform grey level 10 * (i % 25) (readable back after compression) and its number."""
    img = np.full((*size, 3), 10 * (i % 25), np.uint8)
    cv2.putText(img, str(i), (10, 60), cv2.FONT_HERSHEY_SIMPLEX, 1, (255, 255, 255), 2)
    return img


def write_video(path, frames: int, fourcc: str = "mp4v", size=SIZE, fps: float = 10.0):
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (size[1], size[0]))
    assert w.isOpened()
    for i in range(frames):
        w.write(frame_image(i, size))
    w.release()
    return path


def count_video_frames(path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


class FakeSpotter:
    """`.spot(image)`: one word, "w<grey level>", in a box at the image's centre."""

    name = "fake"

    def __init__(self, delay: float = 0.0) -> None:
        self.cfg = SpotterConfig()
        self.delay, self.calls = delay, 0

    def spot(self, image):
        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        h, w = image.shape[:2]
        box = np.array([w * 0.25, h * 0.25, w * 0.75, h * 0.75], np.float32)
        return [SpottedWord(f"w{int(image[2, 2, 0])}", 0.9, box_to_quad(box))]


class FakeBatchedSpotter:
    """`.run(batch)` on a fixed (N,3,32,64) input like an exported graph: each image reads as the
    digits of its own grey level, so results that land on the wrong frame are caught."""

    name = "fake-batched"

    def __init__(self, batch: int = 3, delay: float = 0.02) -> None:
        self.cfg = SpotterConfig(input_height=32, input_width=64, score_thresh=0.5)
        self.batch, self.input_size, self.delay = batch, (32, 64), delay
        self.calls, self.sizes = 0, []

    def run(self, x):
        assert x.shape == (self.batch, 3, 32, 64), x.shape
        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        n, t = x.shape[0], self.cfg.max_word_len
        grey = np.round(x[:, 0, 1, 1] * self.cfg.std[0] + self.cfg.mean[0]).astype(int)
        tokens = np.zeros((n, 1, t), np.int64)
        for i, g in enumerate(grey):
            for j, c in enumerate(str(g)):
                tokens[i, 0, j] = self.cfg.charset.index(c) + 1
        return {"boxes": np.tile(np.array([[[4, 4, 20, 12]]], np.float32), (n, 1, 1)),
                "scores": np.full((n, 1), 0.9, np.float32),
                "tokens": tokens,
                "token_probs": np.ones((n, 1, t), np.float32),
                "count": np.ones((n,), np.int64)}


class FakeCapture:
    """A cv2.VideoCapture stand-in: delivers `frames` images (then fails), or never opens."""

    def __init__(self, frames: int = 0, opened: bool = True, delay: float = 0.0, start: int = 0) -> None:
        self.left, self.opened, self.delay, self.i = frames, opened, delay, start

    def isOpened(self):
        return self.opened

    def get(self, prop):
        return 30.0 if prop == cv2.CAP_PROP_FPS else 0.0

    def read(self):
        if self.delay:
            time.sleep(self.delay)
        if not self.opened or self.left <= 0:
            return False, None
        self.left -= 1
        self.i += 1
        return True, frame_image(self.i)

    def release(self):
        self.opened = False
