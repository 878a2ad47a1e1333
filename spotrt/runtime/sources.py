"""Video sources by URI, one factory (the pattern of jetson-utils' videoSource). Never imports torch.

    open_source("clip.mp4")            a video file (also file://clip.mp4): every frame, in order
    open_source("frames/")             a folder of images, in natural order
    open_source("0") / "/dev/video0"   a V4L2 camera (also v4l2:///dev/video0)
    open_source("rtsp://host/stream")  a network stream (rtsp, rtsps, rtmp, http, https)
    open_source("csi://0")             a Jetson CSI camera through GStreamer's nvarguscamerasrc
    open_source("videotestsrc ! ... ! appsink")   a raw GStreamer pipeline

Two ways to open cameras, streams, files and pipelines (`backend`): "gst", GStreamer's own pipeline
through PyGObject (spotrt.runtime.gst: hardware decoding and CSI cameras on Jetson, whatever
OpenCV was built with), and "opencv", cv2.VideoCapture (FFmpeg; GStreamer only where OpenCV was
built with it). "auto" takes gst where PyGObject's GStreamer imports, opencv otherwise; http(s)
and rtmp streams always open with opencv. One line on stderr says which opened each source.

A source yields `Frame`s from `frames(stop)`. Files (and folders) deliver every frame: a frame that
cannot be decoded is yielded as a dropped record with its reason, never skipped silently. Live
sources (cameras, streams, pipelines) keep only the newest frame: a capture thread overwrites a
one-slot buffer, and each frame overwritten before it was taken is yielded as a dropped record
("live: newer frame"), so a slow model never builds a backlog and every index is accounted for.
A live source that stops delivering reconnects with exponential backoff and reports each attempt;
the frames it would have delivered meanwhile (the outage times its frame rate) are dropped records
("live: lost while reconnecting"); an end-of-stream that GStreamer reports ends it. One that never
opens raises SpotrtError (with a reconnect timeout, after trying that long).
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable, Iterable, Iterator

import cv2

from ..errors import SpotrtError
from ..imageops import IMAGE_EXTS, read_image
from .frame import (CSI_FPS, CSI_SIZE, DROP_CORRUPT, DROP_LOST, DROP_NEWER, DROP_TRUNCATED,  # noqa: F401 (also here)
                    Frame, VideoSource)

NETWORK_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https")
# A file read that fails this many times in a row is treated as the end of the readable file.
FILE_MAX_CONSECUTIVE_FAILURES = 8

SOURCE_BACKENDS = ("auto", "gst", "opencv")


@dataclass
class SourceSpec:
    """What a URI names: `kind` is file, folder, v4l2, network, csi or gstreamer."""

    uri: str
    kind: str
    target: str | int            # what cv2.VideoCapture (or the folder reader) opens
    api: int = cv2.CAP_ANY

    @property
    def live(self) -> bool:
        return self.kind not in ("file", "folder")


def csi_pipeline(sensor: int, size=CSI_SIZE, fps: int = CSI_FPS) -> str:
    w, h = size
    return (f"nvarguscamerasrc sensor-id={sensor} ! video/x-raw(memory:NVMM), width={w}, height={h}, "
            f"framerate={fps}/1, format=NV12 ! nvvidconv ! video/x-raw, format=BGRx ! videoconvert ! "
            "video/x-raw, format=BGR ! appsink drop=true max-buffers=1 sync=false")


def parse_source(uri) -> SourceSpec:
    """Decide what `uri` names without opening it (a path must exist to be a file or folder)."""
    text = str(uri).strip()
    if not text:
        raise SpotrtError("source '': empty, expected a video file, folder, camera index, /dev/videoN, "
                          "rtsp:// or http:// URL, csi://N or a GStreamer pipeline")
    if "!" in text and "://" not in text.split("!")[0]:
        pipeline = text if "appsink" in text else text + " ! videoconvert ! video/x-raw, format=BGR ! appsink"
        return SourceSpec(text, "gstreamer", pipeline, cv2.CAP_GSTREAMER)
    m = re.fullmatch(r"([a-zA-Z][a-zA-Z0-9+.-]*)://(.*)", text)
    scheme, rest = (m.group(1).lower(), m.group(2)) if m else ("", text)
    if scheme == "csi":
        if not rest.isdigit():
            raise SpotrtError(f"source {text}: found sensor {rest!r}, expected csi://N with a sensor number")
        return SourceSpec(text, "csi", csi_pipeline(int(rest)), cv2.CAP_GSTREAMER)
    if scheme in NETWORK_SCHEMES:
        return SourceSpec(text, "network", text, cv2.CAP_FFMPEG)
    if scheme == "v4l2":
        rest = rest or "/dev/video0"
    elif scheme == "file":
        rest = rest
    elif scheme:
        raise SpotrtError(f"source {text}: unknown scheme {scheme}://, expected file://, v4l2://, csi://, "
                          f"{', '.join(s + '://' for s in NETWORK_SCHEMES)}")
    if scheme in ("", "v4l2"):
        if rest.isdigit():
            return SourceSpec(text, "v4l2", int(rest), cv2.CAP_V4L2)
        dev = re.fullmatch(r"/dev/video(\d+)", rest)
        if dev:  # by index: OpenCV's V4L2 backend does not open every build's devices by name
            return SourceSpec(text, "v4l2", int(dev.group(1)), cv2.CAP_V4L2)
        if scheme == "v4l2":
            raise SpotrtError(f"source {text}: found device {rest!r}, expected v4l2:///dev/videoN or a camera index")
    path = Path(os.path.expanduser(rest))
    if path.is_dir():
        return SourceSpec(text, "folder", str(path))
    if path.is_file():
        return SourceSpec(text, "folder" if path.suffix.lower() in IMAGE_EXTS else "file", str(path))
    raise SpotrtError(f"source {text}: no such file or folder, expected a video file, a folder of images, a camera "
                      "index, /dev/videoN, an rtsp:// or http:// URL, csi://N or a GStreamer pipeline")


def quiet_opencv() -> None:
    """Keep OpenCV's and FFmpeg's warnings off the terminal: a failed read or open is reported by
    spotrt as one line or a dropped record. Set OPENCV_FFMPEG_LOGLEVEL / OPENCV_LOG_LEVEL to see them."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    if "OPENCV_LOG_LEVEL" not in os.environ and hasattr(cv2, "utils") and hasattr(cv2.utils, "logging"):
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


def _open_capture(spec: SourceSpec):
    quiet_opencv()
    if spec.kind == "network":
        # Bounded waits so a dead stream is reported (and retried) instead of hanging the run.
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, 10000, cv2.CAP_PROP_READ_TIMEOUT_MSEC, 5000]
        try:
            return cv2.VideoCapture(spec.target, spec.api, params)
        except (cv2.error, TypeError):
            pass
    return cv2.VideoCapture(spec.target, spec.api)


def _why_not_opened(spec: SourceSpec) -> str:
    if spec.api == cv2.CAP_GSTREAMER and "GStreamer:                   NO" in cv2.getBuildInformation():
        return "this OpenCV is built without GStreamer, expected an OpenCV with GStreamer (JetPack's)"
    expected = {"file": "a video file OpenCV (FFmpeg) can decode",
                "v4l2": "a connected V4L2 camera",
                "network": "a reachable stream",
                "csi": "a CSI camera on a Jetson",
                "gstreamer": "a pipeline that plays and ends in appsink"}.get(spec.kind, "a readable source")
    return f"OpenCV cannot open it, expected {expected}"


class FileSource(VideoSource):
    """A video file: every frame, in order, blocking; failed reads become dropped records."""

    def __init__(self, spec: SourceSpec, stream: int = 0, opener: Callable | None = None) -> None:
        super().__init__(spec.uri, stream)
        self.spec = spec
        self.cap = (opener or _open_capture)(spec)
        if not self.cap.isOpened():
            raise SpotrtError(f"source {spec.uri}: {_why_not_opened(spec)}")
        fps = self.cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and fps > 0 else None
        count = self.cap.get(cv2.CAP_PROP_FRAME_COUNT)
        self.frame_count = int(count) if count and count > 0 else None

    def _time(self, index: int) -> float:
        return index / self.fps if self.fps else float(self.cap.get(cv2.CAP_PROP_POS_MSEC)) / 1000.0

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        index, failed = 0, []  # failed: indices of reads that failed since the last good one
        while not stop.is_set():
            t0 = time.perf_counter()
            ok, image = self.cap.read()
            dt = time.perf_counter() - t0
            if ok and image is not None:
                for i in failed:  # a good frame after failures: those were corrupt frames
                    yield Frame(self.stream, self.uri, i, self._time(i), None, DROP_CORRUPT)
                failed = []
                yield Frame(self.stream, self.uri, index, self._time(index), image, None, dt)
                index += 1
                continue
            if self.frame_count is None or index >= self.frame_count:
                break  # the end of the file
            failed.append(index)
            index += 1
            if len(failed) >= FILE_MAX_CONSECUTIVE_FAILURES:
                # The rest cannot be read: every frame the file says it holds is still accounted for.
                for i in range(failed[0], self.frame_count):
                    yield Frame(self.stream, self.uri, i, self._time(i), None, DROP_TRUNCATED)
                return
        reason = DROP_CORRUPT if stop.is_set() else DROP_TRUNCATED  # no good frame came after these
        for i in failed:
            yield Frame(self.stream, self.uri, i, self._time(i), None, reason)

    def close(self) -> None:
        self.cap.release()


class FolderSource(VideoSource):
    """A folder of images (or one image), in natural order; an unreadable image is a dropped record."""

    def __init__(self, spec: SourceSpec, stream: int = 0, fps: float | None = None) -> None:
        super().__init__(spec.uri, stream)
        p = Path(spec.target)
        if p.is_dir():
            self.paths = sorted((q for q in p.iterdir() if q.is_file() and q.suffix.lower() in IMAGE_EXTS),
                                key=lambda q: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", q.name)])
        else:
            self.paths = [p]
        if not self.paths:
            raise SpotrtError(f"source {spec.uri}: found no image files, expected {', '.join(sorted(IMAGE_EXTS))}")
        self.fps = fps
        self.frame_count = len(self.paths)

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        for i, path in enumerate(self.paths):
            if stop.is_set():
                return
            t0 = time.perf_counter()
            try:
                image = read_image(path)
            except SpotrtError as exc:
                yield Frame(self.stream, self.uri, i, i / (self.fps or 1.0), None, f"corrupt: {exc}")
                continue
            yield Frame(self.stream, self.uri, i, i / (self.fps or 1.0), image, None, time.perf_counter() - t0)


class IterableSource(VideoSource):
    """Frames from a Python iterable of BGR images (or None for a frame that could not be read).

    Not live: every frame is delivered (the demo's sample stream and the soak test use it).
    """

    def __init__(self, images: Iterable, name: str = "frames", stream: int = 0, fps: float | None = None) -> None:
        super().__init__(name, stream)
        self.images, self.fps = images, fps

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        it = iter(self.images)
        index = 0
        while not stop.is_set():
            t0 = time.perf_counter()
            try:
                image = next(it)
            except StopIteration:
                return
            t = index / (self.fps or 1.0)
            if image is None:
                yield Frame(self.stream, self.uri, index, t, None, DROP_CORRUPT)
            else:
                yield Frame(self.stream, self.uri, index, t, image, None, time.perf_counter() - t0)
            index += 1


def _log(line: str) -> None:
    print(f"spotrt: {line}", file=sys.stderr, flush=True)


@dataclass
class _Slot:
    frame: Frame | None = None
    dropped: list = field(default_factory=list)  # (index, time, reason) of frames dropped before they were taken
    ended: bool = False


class LiveSource(VideoSource):
    """A camera or stream: a capture thread keeps only the newest frame and reconnects with backoff.

    `give_up_s`: end the stream after this long without a frame (None = keep trying forever).
    `opener(spec)` returns a cv2.VideoCapture-like object (tests pass fakes; GstCapture is one);
    `cap`: one already opened by it. A capture may tell more than cv2's: `ended == "eos"` (the
    stream ended: no reconnect), `skipped` (frames it dropped before the one read), `error` (why).
    """

    live = True

    def __init__(self, spec: SourceSpec, stream: int = 0, opener: Callable | None = None,
                 backoff=(0.5, 8.0), give_up_s: float | None = None, log: Callable[[str], None] = _log,
                 cap=None) -> None:
        super().__init__(spec.uri, stream)
        self.spec, self.opener, self.backoff, self.give_up_s, self.log = spec, opener or _open_capture, backoff, give_up_s, log
        self.cap = cap if cap is not None else self.opener(spec)
        if not self.cap.isOpened():
            self.cap.release()
            raise SpotrtError(f"source {spec.uri}: {_why_not_opened(spec)}")
        fps = self.cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and 0 < fps < 1000 else None
        self._slot = _Slot()
        self._cond = threading.Condition()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._capture, name=f"capture-{stream}", daemon=True)
        self._thread.start()

    def _why(self) -> str:
        why = getattr(self.cap, "error", None)
        return f": {why}" if why else ""

    def _reconnect(self) -> bool:
        """Reopen until it delivers or `give_up_s` passes -> whether it is back."""
        why = self._why()
        self.cap.release()
        delay, lost_at, attempt = self.backoff[0], time.monotonic(), 0
        while not self._closed.is_set():
            attempt += 1
            if self.give_up_s is not None and time.monotonic() - lost_at >= self.give_up_s:
                self.log(f"source {self.uri}: no frame for {self.give_up_s:.0f} s, giving up after {attempt - 1} attempts")
                return False
            self.log(f"source {self.uri}: lost, reconnecting in {delay:.1f} s (attempt {attempt}){why}")
            if self._closed.wait(delay):
                return False
            self.cap = self.opener(self.spec)
            if self.cap.isOpened():
                self.reconnects += 1
                self.log(f"source {self.uri}: reconnected (attempt {attempt})")
                return True
            why = self._why()
            self.cap.release()
            delay = min(delay * 2, self.backoff[1])
        return False

    def _capture(self) -> None:
        index, last, after_loss = 0, None, False
        try:
            while not self._closed.is_set():
                t0 = time.perf_counter()
                ok, image = self.cap.read()
                dt = time.perf_counter() - t0
                if not ok or image is None:
                    if getattr(self.cap, "ended", None) == "eos":
                        self.log(f"source {self.uri}: end of stream")
                        break
                    if self._reconnect():
                        after_loss = True
                        continue
                    break
                now, missed = time.time(), []
                if after_loss and last is not None and self.fps:
                    # The frames the source would have sent while it was away, at its frame rate.
                    n = max(0, int(round((now - last.time) * self.fps)) - 1)
                    missed = [(index + i, last.time + (i + 1) / self.fps, DROP_LOST) for i in range(n)]
                    index += n
                after_loss = False
                skipped = int(getattr(self.cap, "skipped", 0) or 0)  # dropped by the capture for a newer one
                missed += [(index + i, now, DROP_NEWER) for i in range(skipped)]
                index += skipped
                frame = Frame(self.stream, self.uri, index, now, image, None, dt)
                index += 1
                last = frame
                with self._cond:
                    old = self._slot.frame
                    if old is not None:
                        self._slot.dropped.append((old.index, old.time, DROP_NEWER))
                    self._slot.dropped.extend(missed)
                    self._slot.frame = frame
                    self._cond.notify_all()
        finally:
            self.cap.release()  # here, not in close(): releasing a capture inside read() is unsafe
            with self._cond:
                self._slot.ended = True
                self._cond.notify_all()

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        while not stop.is_set():
            with self._cond:
                while self._slot.frame is None and not self._slot.ended and not stop.is_set():
                    self._cond.wait(0.05)
                frame, dropped = self._slot.frame, self._slot.dropped
                self._slot.frame, self._slot.dropped = None, []
                ended = self._slot.ended
            for i, t, reason in dropped:
                yield Frame(self.stream, self.uri, i, t, None, reason)
            if frame is not None:
                yield frame
            elif ended:
                return

    def close(self) -> None:
        self._closed.set()
        # A network read returns within its read timeout (5 s); the daemon thread ends on its own after.
        self._thread.join(timeout=6.0)


def source_backend(spec: SourceSpec, backend: str = "auto") -> str:
    """"gst" or "opencv": which opens `spec` (see the module docstring); SpotrtError for gst without PyGObject."""
    from .gst import gst_missing

    if backend not in SOURCE_BACKENDS:
        raise SpotrtError(f"--source-backend: found {backend!r}, expected one of {', '.join(SOURCE_BACKENDS)}")
    if backend == "opencv" or spec.kind == "folder":
        return "opencv"
    if spec.kind == "network" and not spec.uri.lower().startswith(("rtsp://", "rtsps://")):
        if backend == "gst":
            raise SpotrtError(f"--source-backend gst: found {spec.uri.split('://')[0]}:// in {spec.uri}, expected "
                              "rtsp:// or rtsps:// (http(s) and rtmp streams open with OpenCV: --source-backend auto)")
        return "opencv"
    missing = gst_missing()
    if backend == "gst":
        if missing:
            raise SpotrtError(f"--source-backend gst: {missing}, expected python3-gi and gir1.2-gstreamer-1.0 "
                              "visible to this Python (README: camera sources)")
        return "gst"
    return "opencv" if missing else "gst"


def _gst_failure(spec: SourceSpec, cap) -> SpotrtError:
    expected = {"file": "a video file GStreamer can demux and decode",
                "v4l2": "a connected V4L2 camera",
                "network": "a reachable stream",
                "csi": "a CSI camera on a Jetson with JetPack's GStreamer plugins (nvarguscamerasrc, nvvidconv)",
                "gstreamer": "a pipeline that plays and ends in appsink"}.get(spec.kind, "a readable source")
    why = cap.error or "no frame"
    if why.startswith("cannot build"):
        return SpotrtError(f"source {spec.uri}: GStreamer {why}, expected {expected}")
    return SpotrtError(f"source {spec.uri}: GStreamer cannot open it ({why}), expected {expected}")


def _open_retrying(open_once, spec: SourceSpec, give_up_s, backoff, log):
    """The first open of a camera or stream; with `give_up_s`, retried with backoff for that long
    (a camera that comes up after spotrt). -> the opened capture, or the last one that failed."""
    cap = open_once()
    if cap.isOpened() or not give_up_s or spec.kind not in ("network", "v4l2", "csi"):
        return cap
    deadline, delay, attempt = time.monotonic() + give_up_s, backoff[0], 1
    while not cap.isOpened() and (left := deadline - time.monotonic()) > 0:
        why = getattr(cap, "error", None)
        wait = min(delay, left)
        log(f"source {spec.uri}: not open, retrying in {wait:.1f} s (attempt {attempt}" + (f": {why})" if why else ")"))
        cap.release()
        time.sleep(wait)
        cap, delay, attempt = open_once(), min(delay * 2, backoff[1]), attempt + 1
    return cap


def open_source(uri, stream: int = 0, backend: str = "auto", decoder: str = "auto", **live_options) -> VideoSource:
    """The source a URI names, opened (SpotrtError, one line, when it cannot be).

    `backend`: auto, gst or opencv (module docstring); `decoder`: auto, nv or sw, for GStreamer
    pipelines (spotrt.runtime.gst). `live_options` go to LiveSource (backoff, give_up_s, log).
    """
    spec = parse_source(uri)
    if spec.kind == "folder":
        return FolderSource(spec, stream)
    log = live_options.get("log", _log)
    backoff = live_options.get("backoff", (0.5, 8.0))
    give_up_s = live_options.get("give_up_s")
    use = source_backend(spec, backend)
    if use == "gst":
        from .gst import DECODERS, GstCapture, GstFileSource

        if decoder not in DECODERS:
            raise SpotrtError(f"--decoder: found {decoder!r}, expected one of {', '.join(DECODERS)}")
        opener = partial(GstCapture, decoder=decoder)
        cap = _open_retrying(lambda: opener(spec), spec, give_up_s, backoff, log)
        if not cap.isOpened():
            cap.release()
            raise _gst_failure(spec, cap)
        log(f"source {spec.uri}: GStreamer{' (live)' if cap.live else ''}, decoder {cap.decoder or 'as given'}: "
            f"{cap.description}")
        if not cap.live:
            return GstFileSource(spec, cap, stream, log=log)
        return LiveSource(spec, stream, opener=opener, cap=cap, **live_options)
    if decoder != "auto":
        raise SpotrtError(f"--decoder {decoder}: found source {spec.uri} opened by OpenCV, expected a GStreamer "
                          "source (--source-backend gst; --decoder picks GStreamer's decoder)")
    if spec.kind == "file":
        src = FileSource(spec, stream)
        log(f"source {spec.uri}: OpenCV ({src.cap.getBackendName()})")
        return src
    cap = _open_retrying(lambda: live_options.get("opener", _open_capture)(spec), spec, give_up_s, backoff, log)
    src = LiveSource(spec, stream, cap=cap, **live_options)
    log(f"source {spec.uri}: OpenCV ({cap.getBackendName() if hasattr(cap, 'getBackendName') else 'capture'})")
    return src


__all__ = ["Frame", "SourceSpec", "VideoSource", "FileSource", "FolderSource", "IterableSource", "LiveSource",
           "parse_source", "open_source", "source_backend", "csi_pipeline", "DROP_NEWER", "DROP_CORRUPT",
           "DROP_TRUNCATED", "DROP_LOST", "SOURCE_BACKENDS"]
