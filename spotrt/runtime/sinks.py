"""Where a stream's results go: JSON Lines, an annotated video, a window. Never imports torch.

Every sink takes every frame result, processed or dropped, in each stream's order:
`write(result)` then `close()` once at the end (also after Ctrl-C / SIGTERM, so files are complete).
A sink checks its output when it is made, so an unwritable path fails before the run starts.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np

from ..errors import SpotrtError
from ..fileio import check_writable

VIDEO_EXTS = (".mp4", ".avi", ".mkv", ".mov")
DEFAULT_FPS = 25.0


def frame_record(result) -> dict:
    """One JSON object for one frame: its words (with track and stable text) and its capture-to-result
    latency, or why it was dropped."""
    f = result.frame
    rec = {"stream": f.stream, "source": f.source, "frame": f.index, "time": round(float(f.time), 4)}
    if f.dropped is not None:
        rec["dropped"] = f.dropped
    else:
        rec["words"] = [w.to_json() for w in result.words]
        if getattr(result, "latency_s", None) is not None:
            rec["latency_ms"] = round(1000.0 * result.latency_s, 2)
    return rec


class JsonlSink:
    """One JSON object per frame, each line flushed as written (a live run can be followed with tail -f)."""

    def __init__(self, path) -> None:
        self.path = check_writable(path, "output file")
        self._f = open(self.path, "w", encoding="utf-8")
        self.records = 0

    def write(self, result) -> None:
        self._f.write(json.dumps(frame_record(result)) + "\n")
        self._f.flush()
        self.records += 1

    def close(self) -> None:
        if not self._f.closed:
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()


def stream_video_path(path: Path, stream: int, streams: int) -> Path:
    """With several streams each gets its own file: out.mp4 -> out.0.mp4, out.1.mp4, ..."""
    return path if streams <= 1 else path.with_name(f"{path.stem}.{stream}{path.suffix}")


class VideoSink:
    """An annotated video per stream (mp4v): one frame out per frame in.

    Frames dropped with their image (`--every`) are written unannotated; frames that could not be
    read are written black, so the output's frame count always equals the input's.
    """

    def __init__(self, path, streams: int = 1, fps: dict[int, float | None] | None = None) -> None:
        p = Path(path)
        if p.suffix.lower() not in VIDEO_EXTS:
            raise SpotrtError(f"output video {p}: found suffix {p.suffix or '(none)'!r}, expected one of "
                              f"{', '.join(VIDEO_EXTS)}")
        self.paths = {i: check_writable(stream_video_path(p, i, streams), "output video") for i in range(streams)}
        self.fps = fps or {}
        self._writers: dict[int, cv2.VideoWriter] = {}
        self._sizes: dict[int, tuple[int, int]] = {}
        self.frames: dict[int, int] = {i: 0 for i in range(streams)}
        self._pending: dict[int, int] = {}  # unreadable frames seen before a stream's first image

    def _writer(self, stream: int, image: np.ndarray | None) -> cv2.VideoWriter | None:
        w = self._writers.get(stream)
        if w is None and image is not None:
            h, wd = image.shape[:2]
            path = self.paths[stream]
            w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), float(self.fps.get(stream) or DEFAULT_FPS),
                                (wd, h))
            if not w.isOpened():
                raise SpotrtError(f"output video {path}: OpenCV cannot open it for writing, expected a writable "
                                  ".mp4 path")
            self._writers[stream], self._sizes[stream] = w, (wd, h)
            for _ in range(self._pending.pop(stream, 0)):  # unreadable frames before the first good one
                w.write(np.zeros((h, wd, 3), np.uint8))
                self.frames[stream] += 1
        return w

    def write(self, result) -> None:
        f = result.frame
        image = result.annotated() if f.dropped is None else f.image
        w = self._writer(f.stream, image)
        if w is None:  # nothing readable yet on this stream: write it once the size is known
            self._pending[f.stream] = self._pending.get(f.stream, 0) + 1
            return
        size = self._sizes[f.stream]
        if image is None:
            image = np.zeros((size[1], size[0], 3), np.uint8)
        elif (image.shape[1], image.shape[0]) != size:  # a live stream that came back at another size
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        w.write(image)
        self.frames[f.stream] += 1

    def close(self) -> None:
        for w in self._writers.values():
            w.release()
        self._writers.clear()


class DisplaySink:
    """A window per stream (OpenCV highgui). `q` or Esc in a window stops the run."""

    def __init__(self, streams: int = 1, on_quit=None) -> None:
        if os.name == "posix" and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise SpotrtError("--display: found no DISPLAY or WAYLAND_DISPLAY, expected a desktop session "
                              "(or drop --display and write --output)")
        try:
            cv2.namedWindow("spotrt 0", cv2.WINDOW_NORMAL)
        except cv2.error as exc:
            line = str(exc).strip().splitlines()[-1] if str(exc).strip() else "cv2.error"
            raise SpotrtError(f"--display: OpenCV cannot open a window ({line[:160]}), expected opencv-python "
                              "with GUI support (not -headless)") from None
        self.on_quit = on_quit

    def write(self, result) -> None:
        if result.frame.dropped is not None:
            return
        cv2.imshow(f"spotrt {result.frame.stream}", result.annotated())
        if cv2.waitKey(1) & 0xFF in (ord("q"), 27) and self.on_quit:
            self.on_quit("window closed")

    def close(self) -> None:
        try:
            cv2.destroyAllWindows()
        except cv2.error:
            pass


__all__ = ["JsonlSink", "VideoSink", "DisplaySink", "frame_record", "stream_video_path"]
