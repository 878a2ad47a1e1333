"""Fakes and small files shared by the runtime tests (no model, no hardware)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from spotrt.model.config import SpotterConfig
from spotrt.postprocess import box_to_quad
from spotrt.runner import INPUT, AnySizeRunner, Runner

SIZE = (120, 200)  # height, width of the test videos


def spinning_entry(session, key: str | None = None) -> str | None:
    """An ONNX Runtime session's spinning setting (`key`: one of plugins.ort_session.SPINNING_KEYS, default
    the intra-op one): "0" when switched off, None when not set (ONNX Runtime's default: spin)."""
    from spotrt.plugins.ort_session import SPINNING_KEYS

    try:
        return session.get_session_options().get_session_config_entry(key or SPINNING_KEYS[0])
    except RuntimeError:  # not set
        return None


def free_ports(n: int) -> list[int]:
    """n distinct TCP ports on 127.0.0.1 that were free a moment ago (all held at once while chosen)."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


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


def _tokens(cfg, text: str) -> np.ndarray:
    tokens = np.zeros(cfg.max_word_len, np.int64)
    for j, c in enumerate(text):
        tokens[j] = cfg.charset.index(c) + 1
    return tokens


class FakeSpotter(AnySizeRunner):
    """A runner of any input size (like torch): one word, "w<grey level>", in a box at the image's centre."""

    name = "fake"

    def __init__(self, delay: float = 0.0) -> None:
        self.cfg = SpotterConfig()
        self.input_size = (self.cfg.input_height, self.cfg.input_width)
        self.delay, self.calls = delay, 0
        self.load()

    def _load(self) -> None:
        pass

    def _close(self) -> None:
        pass

    def _infer(self, feed):
        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        grey = int(round(float(feed[INPUT][0, 0, 2, 2]) * self.cfg.std[0] + self.cfg.mean[0]))
        t = self.cfg.max_word_len
        return {"boxes": np.zeros((1, 1, 4), np.float32), "scores": np.full((1, 1), 0.9, np.float32),
                "tokens": _tokens(self.cfg, f"w{grey}")[None, None], "token_probs": np.ones((1, 1, t), np.float32),
                "count": np.ones(1, np.int64)}

    def words(self, out, lb):
        words = super().words(out, lb)
        for w in words:  # the box at the centre of the image, in its own pixels
            w.quad = box_to_quad(np.array([lb.width * 0.25, lb.height * 0.25, lb.width * 0.75, lb.height * 0.75],
                                          np.float32))
        return words


class FakeBatchedSpotter(Runner):
    """A runner with a fixed (N,3,32,64) input like an exported graph: each image reads as the
    digits of its own grey level, so results that land on the wrong frame are caught."""

    name = "fake-batched"

    def __init__(self, batch: int = 3, delay: float = 0.02) -> None:
        self.cfg = SpotterConfig(input_height=32, input_width=64, score_thresh=0.5)
        self.batch, self.input_size, self.delay = batch, (32, 64), delay
        self.calls, self.sizes = 0, []
        self.load()

    def _load(self) -> None:
        pass

    def _close(self) -> None:
        pass

    def _infer(self, feed):
        x = feed[INPUT]
        assert x.shape == (self.batch, 3, 32, 64), x.shape
        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        n, t = x.shape[0], self.cfg.max_word_len
        grey = np.round(x[:, 0, 1, 1] * self.cfg.std[0] + self.cfg.mean[0]).astype(int)
        tokens = np.stack([_tokens(self.cfg, str(g)) for g in grey])[:, None]
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


def write_h264(path, images, fps: int = 25):
    """An H.264 MP4 of BGR `images` (one size, even width and height) through GStreamer's x264enc,
    frame i stamped at exactly i / fps, its index (moov) first so that a truncated copy still says how
    many frames it held. Needs PyGObject's GStreamer (the caller skips without it)."""
    from spotrt.runtime.gst import _require

    Gst = _require()[0]  # through spotrt's loader (see gst._one_unwinder)
    h, w = images[0].shape[:2]
    pipe = Gst.parse_launch(
        f"appsrc name=src format=time caps=video/x-raw,format=BGR,width={w},height={h},framerate={fps}/1 ! "
        f"videoconvert ! x264enc speed-preset=ultrafast key-int-max={fps} bframes=0 threads=1 ! h264parse ! "
        f'mp4mux faststart=true ! filesink location="{path}"')
    src = pipe.get_by_name("src")
    pipe.set_state(Gst.State.PLAYING)
    for i, image in enumerate(images):
        buf = Gst.Buffer.new_wrapped(np.ascontiguousarray(image).tobytes())
        buf.pts, buf.duration = i * Gst.SECOND // fps, Gst.SECOND // fps
        assert src.emit("push-buffer", buf) == Gst.FlowReturn.OK
    src.emit("end-of-stream")
    msg = pipe.get_bus().timed_pop_filtered(60 * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR)
    pipe.set_state(Gst.State.NULL)
    assert msg is not None and msg.type == Gst.MessageType.EOS, msg and msg.parse_error()
    return path


def require_gst(*elements: str) -> None:
    """Skip when PyGObject's GStreamer (or one of `elements`) is absent here; fail instead where
    SPOTRT_REQUIRE_GST=1 (CI sets it: there the GStreamer tests must run, never skip)."""
    import pytest

    from spotrt.runtime.gst import element_exists, gst_missing

    missing = gst_missing() or next((f"GStreamer element {e} is not installed" for e in elements
                                     if not element_exists(e)), None)
    if missing:
        (pytest.fail if os.environ.get("SPOTRT_REQUIRE_GST") == "1" else pytest.skip)(
            f"{missing} (Debian: make gst-packages; see README, camera sources)")


class RtspServer:
    """tests/rtsp_server.py in a subprocess, serving an MP4's H.264 at `url`. `kill()` stops it the
    way a camera goes away (the connection breaks); `start()` brings it back on the same port."""

    SCRIPT = Path(__file__).with_name("rtsp_server.py")

    def __init__(self, path, mount: str = "/sign", port: int = 0) -> None:
        self.path, self.mount, self.port, self.proc = path, mount, port, None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}{self.mount}"

    def start(self) -> "RtspServer":
        self.proc = subprocess.Popen([sys.executable, str(self.SCRIPT), str(self.path), "--port", str(self.port),
                                      "--mount", self.mount], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().split()
        if not line or line[0] != "ready":
            self.kill()
            raise RuntimeError(f"rtsp_server.py did not start: {line}")
        self.port = int(line[1])
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.stdin.close()  # the server quits when its stdin closes
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kill()


def counting_images(n: int, size=SIZE) -> list:
    """n frames whose grey level 4 * i rises without wrapping (for n <= 60): frame i is told by its level."""
    return [np.full((*size, 3), 4 * i, np.uint8) for i in range(n)]


def rtsp_outage(server: RtspServer, backend: str, kill_after: int = 20, down_s: float = 1.0, clip_frames: int = 50,
                give_up_s: float = 10.0):
    """Read `server`'s stream (a clip of `clip_frames` frames), kill the server after `kill_after`
    frames were read and start it again `down_s` s later. GStreamer's source ends with the second
    session's end of stream; OpenCV's cannot tell an end from a loss, so it is stopped once the
    second session has given `clip_frames` frames (read, or dropped for a newer one). -> (frames, [(seconds, log line)], source)."""
    import threading

    from spotrt.runtime.sources import DROP_LOST, open_source

    t0, lines = time.monotonic(), []

    def log(line):
        lines.append((round(time.monotonic() - t0, 2), line))

    src = open_source(server.url, backend=backend, backoff=(0.1, 0.4), give_up_s=give_up_s, log=log)
    restart, stop, frames, good, after = threading.Timer(down_s, server.start), threading.Event(), [], 0, None
    for f in src.frames(stop):
        frames.append(f)
        good += f.dropped is None
        if good == kill_after and not restart.is_alive() and not restart.finished.is_set():
            log("test: server killed")
            server.kill()
            restart.start()
        if f.dropped == DROP_LOST and after is None:
            after = 0  # the outage's records come just before the first frame after reconnecting
        elif f.dropped != DROP_LOST and after is not None:
            # every frame of the second session counts, read or dropped as a newer frame came (a
            # slow moment of this machine): counting only the frames read would wait past the
            # session's end and reconnect once more
            after += 1
            if backend == "opencv" and after >= clip_frames:
                stop.set()
    src.close()
    restart.join()
    return frames, lines, src
