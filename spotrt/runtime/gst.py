"""GStreamer capture through PyGObject (`gi`): the native path on Jetson. Never imports torch.

Does not depend on how OpenCV was built: the pipeline is GStreamer's own, ending in an `appsink`
whose BGR frames are pulled into NumPy. What spotrt builds for each kind of source (`describe`):

    csi://N        nvarguscamerasrc sensor-id=N ! video/x-raw(memory:NVMM),... ! nvvidconv ! BGRx ! videoconvert ! BGR
    rtsp://...     rtspsrc location=... latency=200 protocols=tcp ! parsebin ! DECODE ! videoconvert ! BGR
    a file         filesrc location=... ! parsebin ! DECODE ! videoconvert ! BGR
    /dev/videoN    v4l2src device=/dev/videoN ! parsebin ! DECODE ! videoconvert ! BGR
    "a ! b ! c"    the pipeline as given (+ videoconvert ! BGR ! appsink when it has no appsink)

DECODE is chosen when parsebin has found the codec (`decode_chain`): `--decoder nv` is
`h264parse ! nvv4l2decoder ! nvvidconv ! video/x-raw,format=BGRx` (Jetson hardware decoding, H.264
and H.265), `sw` the highest-ranked software decoder for the codec (`avdec_h264` for H.264),
`auto` nv where the nvv4l2decoder element exists and takes the codec, else sw.

`GstCapture` reads one such pipeline with the interface of cv2.VideoCapture (isOpened, read, get,
release), so the runtime's LiveSource keeps its rules (newest frame only, reconnect with backoff,
give up): a bus error, a connection the server closed, or no frame for `read_timeout` s is a lost
stream (reconnect); the stream's own end (an RTSP server's RTCP BYE, a pipeline's EOS) ends it.
Whether a pipeline is live is GStreamer's own answer (NO_PREROLL on the way to PAUSED, or a live
latency query): rtspsrc, nvarguscamerasrc and v4l2src are; files and `videotestsrc` are not, and are read
by `GstFileSource`, which delivers every frame (backpressure, no drops) and accounts for each frame
the file holds: a frame the decoder skipped is a dropped record "corrupt", the frames after an
early end "truncated".
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
import time
from collections import deque
from typing import Callable, Iterator

import numpy as np

from ..errors import SpotrtError
from .frame import CSI_FPS, CSI_SIZE, DROP_CORRUPT, DROP_TRUNCATED, Frame, VideoSource

DECODERS = ("auto", "nv", "sw")
NV_DECODER = "nvv4l2decoder"
# Codecs nvv4l2decoder takes in `auto`, with the parser that gives it byte-stream access units.
NV_PARSERS = {"video/x-h264": "h264parse", "video/x-h265": "h265parse"}
NV_TAIL = "nvvidconv ! video/x-raw,format=BGRx"
# Element-name prefixes of hardware decoders, never picked by `sw`.
HW_PREFIXES = ("nv", "v4l2", "vaapi", "va", "msdk", "qsv", "d3d11", "d3d12", "vtdec", "amc", "omx")
BGR_TAIL = "videoconvert ! video/x-raw,format=BGR"
SINK = "spotrt_sink"
FORMATS = {"BGR": 3, "RGB": 3, "BGRx": 4, "BGRA": 4, "RGBx": 4, "RGBA": 4, "GRAY8": 1}  # appsink formats read
OPEN_TIMEOUT_S = 10.0    # first frame of a new pipeline (as OpenCV's CAP_PROP_OPEN_TIMEOUT_MSEC for streams)
READ_TIMEOUT_S = 5.0     # a live source without a frame this long is lost (as OpenCV's read timeout)
FILE_READ_TIMEOUT_S = 60.0
RTSP_LATENCY_MS = 200
# Frames a non-live pipeline's appsink holds before the decoder waits (memory stays bounded);
# a live pipeline's appsink holds a few (a burst from the network) and drops the oldest beyond
# them (counted, see GstCapture.skipped): memory stays bounded whatever the reader does.
FILE_SINK_BUFFERS = 4
LIVE_SINK_BUFFERS = 4

_gst = None
_gst_missing: str | None = None
_init_lock = threading.Lock()


def gst_missing() -> str | None:
    """None when PyGObject's GStreamer 1.x imports here, else one line saying what is missing."""
    _load()
    return _gst_missing


def _load():
    global _gst, _gst_missing
    with _init_lock:
        if _gst is not None or _gst_missing is not None:
            return _gst
        _one_unwinder()
        try:
            import gi

            gi.require_version("Gst", "1.0")
            gi.require_version("GstApp", "1.0")
            gi.require_version("GstVideo", "1.0")
            from gi.repository import GLib, Gst, GstApp, GstVideo  # noqa: F401  (GstApp: appsink's methods)
        except (ImportError, ValueError) as exc:
            _gst_missing = f"PyGObject's GStreamer cannot be imported ({str(exc).strip().splitlines()[0]})"
            return None
        Gst.init(None)
        _gst = (Gst, GstVideo, GLib)
        return _gst


def _one_unwinder() -> None:
    """Put libgcc_s in the process's global symbol scope before GStreamer comes in.

    libgstreamer links libunwind, and GModule loads it with global symbols; a C++ library loaded
    after that (torch) binds _Unwind_Resume to libunwind while libstdc++ throws through libgcc_s,
    and its next exception aborts the process ("terminate called after throwing an instance of
    pybind11::stop_iteration"). With libgcc_s global first, every library uses the one unwinder.
    """
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libgcc_s.so.1", mode=ctypes.RTLD_GLOBAL)
        except OSError:
            pass


def _require():
    gst = _load()
    if gst is None:
        raise SpotrtError(f"--source-backend gst: {_gst_missing}, expected python3-gi and gir1.2-gstreamer-1.0 "
                          "visible to this Python (README: camera sources)")
    return gst


def element_exists(name: str) -> bool:
    Gst = _require()[0]
    return Gst.ElementFactory.find(name) is not None


def _quote(value: str) -> str:
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def csi_pipeline(sensor: int, size=CSI_SIZE, fps: int = CSI_FPS) -> str:
    w, h = size
    return (f"nvarguscamerasrc sensor-id={sensor} ! video/x-raw(memory:NVMM),width={w},height={h},"
            f"framerate={fps}/1,format=NV12 ! {NV_TAIL} ! {BGR_TAIL} ! appsink name={SINK}")


def source_part(spec) -> str | None:
    """The pipeline's head, up to the point where parsebin finds the codec; None for kinds that are
    one fixed string (csi, a user's pipeline)."""
    if spec.kind == "file":
        return f"filesrc location={_quote(os.path.abspath(spec.target))}"
    if spec.kind == "v4l2":
        dev = f"/dev/video{spec.target}" if isinstance(spec.target, int) else spec.target
        return f"v4l2src device={dev}"
    if spec.kind == "network":
        return f"rtspsrc location={_quote(spec.uri)} latency={RTSP_LATENCY_MS} protocols=tcp"
    return None


def user_pipeline(text: str) -> str:
    """A user's pipeline string, ending in an appsink (added, with BGR conversion, when it has none)."""
    return text if "appsink" in text else f"{text} ! {BGR_TAIL} ! appsink name={SINK}"


def describe(spec, chain: str = "DECODE") -> str:
    """The pipeline spotrt builds for `spec`, with the decoder part `chain` (as gst-launch-1.0 would take it)."""
    head = source_part(spec)
    if spec.kind == "csi":
        return csi_pipeline(int(spec.uri.split("://", 1)[1]))
    if head is None:
        return user_pipeline(spec.uri)
    return f"{head} ! parsebin ! {chain} ! {BGR_TAIL} ! appsink"


def _software_decoders(caps) -> list[str]:
    Gst = _require()[0]
    factories = Gst.ElementFactory.list_get_elements(Gst.ELEMENT_FACTORY_TYPE_DECODER, Gst.Rank.MARGINAL)
    # Subset, not just overlap: a decoder that wants "parsed=true" does not take an unparsed stream.
    factories = Gst.ElementFactory.list_filter(factories, caps, Gst.PadDirection.SINK, True)
    ranked = sorted(factories, key=lambda f: (-f.get_rank(), f.get_name()))
    return [f.get_name() for f in ranked if not f.get_name().startswith(HW_PREFIXES)]


def _nv_takes(caps) -> bool:
    Gst = _require()[0]
    f = Gst.ElementFactory.find(NV_DECODER)
    return f is not None and f.can_sink_any_caps(caps)


def decode_chain(codec: str, mode: str, nv_takes: Callable[[], bool], software: Callable[[], list[str]]):
    """(chain, decoder) for a parsed stream of media type `codec` (e.g. "video/x-h264").

    `nv_takes()`: whether nvv4l2decoder exists and takes this stream; `software()`: software decoders
    for it, best first. Raises SpotrtError (one line) when `mode` cannot be met.
    """
    if codec == "video/x-raw":
        return "identity", "none (raw video)"
    if mode not in DECODERS:
        raise SpotrtError(f"--decoder: found {mode!r}, expected one of {', '.join(DECODERS)}")
    nv = mode == "nv" or (mode == "auto" and codec in NV_PARSERS)
    if nv and nv_takes():
        parser = NV_PARSERS.get(codec)
        return (f"{parser} ! " if parser else "") + f"{NV_DECODER} ! {NV_TAIL}", NV_DECODER
    if mode == "nv":
        raise SpotrtError(f"--decoder nv: found no {NV_DECODER} element that decodes {codec}, expected a Jetson "
                          "with JetPack's GStreamer plugins (nvidia-l4t-gstreamer), or --decoder sw|auto")
    names = software()
    if not names:
        raise SpotrtError(f"decoder for {codec}: found no software decoder, expected gstreamer1.0-libav "
                          "(avdec_*) or gstreamer1.0-plugins-good/bad/ugly")
    return names[0], names[0]


def _first_line(text: str) -> str:
    lines = [ln.strip() for ln in str(text).strip().splitlines() if ln.strip()]
    return lines[0][:200] if lines else "no detail"


class GstCapture:
    """One GStreamer pipeline ending in appsink, read like a cv2.VideoCapture.

    After construction: `isOpened()` (the first frame arrived within `open_timeout`), else `error`
    says why in one line. `live`: GStreamer's own answer for the pipeline. `read()` -> (ok, BGR
    image); after a failed read `ended` is "eos", "error" or "timeout" and `error` says more.
    `skipped`: frames the appsink dropped (a newer one came) just before the last one read.
    `pull()` gives the frame's stream time too (files). Release from the thread that reads.
    """

    def __init__(self, spec, decoder: str = "auto", open_timeout: float = OPEN_TIMEOUT_S,
                 read_timeout: float = READ_TIMEOUT_S) -> None:
        self.Gst, self.GstVideo, GLib = _require()
        if decoder not in DECODERS:
            raise SpotrtError(f"--decoder: found {decoder!r}, expected one of {', '.join(DECODERS)}")
        self.spec, self.mode, self.read_timeout = spec, decoder, read_timeout
        self.error: str | None = None
        self.ended: str | None = None
        self.live = False
        self.skipped = 0
        self.decoder: str | None = None
        self.fps: float | None = None
        self.frame_count: int | None = None
        self.pos_s = 0.0
        self.pipeline = None
        self._chain_error: str | None = None
        self._broken: str | None = None
        self._pts: deque = deque(maxlen=256)
        self._first = None
        self._opened = False
        head = source_part(spec)
        # Two chains in one pipeline: the head up to parsebin, and the converter to appsink; the
        # decoder joins them once parsebin has found the codec (_pad_added).
        text = describe(spec) if head is None else (
            f"{head} ! parsebin name=spotrt_parse  videoconvert name=spotrt_conv ! video/x-raw,format=BGR ! "
            f"appsink name={SINK}")
        self.description = describe(spec)
        try:
            self.pipeline = self.Gst.parse_launch(text)
        except GLib.Error as exc:
            self.error = f"cannot build the pipeline: {_first_line(exc.message)}"
            return
        self.sink = self.pipeline.get_by_name(SINK) if hasattr(self.pipeline, "get_by_name") else None
        if self.sink is None:
            self.sink = self._find_appsink()
        if self.sink is None:
            self.error = "GStreamer pipeline has no appsink"
            self.pipeline = None
            return
        self.sink.set_property("emit-signals", False)
        self.sink.set_property("sync", False)
        self.sink.set_property("max-buffers", FILE_SINK_BUFFERS)
        self.sink.set_property("drop", False)
        self.sink.get_static_pad("sink").add_probe(self.Gst.PadProbeType.BUFFER, self._arrived)
        if head is not None:
            self.pipeline.get_by_name("spotrt_parse").connect("pad-added", self._pad_added)
        self._open(open_timeout)

    # -- opening ----------------------------------------------------------------------------------
    def _find_appsink(self):
        it = self.pipeline.iterate_recurse() if hasattr(self.pipeline, "iterate_recurse") else None
        while it is not None:
            ok, element = it.next()
            if ok != self.Gst.IteratorResult.OK:
                return None
            factory = element.get_factory()
            if factory is not None and factory.get_name() == "appsink":
                return element
        return None

    def _arrived(self, pad, info):
        self._pts.append(info.get_buffer().pts)
        return self.Gst.PadProbeReturn.OK

    def _pad_added(self, parsebin, pad) -> None:
        """A parsed stream appeared: the first video one gets a decoder, anything else a fakesink."""
        Gst = self.Gst
        caps = pad.get_current_caps() or pad.query_caps(None)
        codec = caps.get_structure(0).get_name() if caps and caps.get_size() else "unknown"
        if self.decoder is None and (codec.startswith("video/") or codec == "image/jpeg"):
            try:
                chain, self.decoder = decode_chain(codec, self.mode, lambda: _nv_takes(caps),
                                                   lambda: _software_decoders(caps))
                self.description = describe(self.spec, chain)
                tail = Gst.parse_bin_from_description(chain, True)
            except SpotrtError as exc:
                self._chain_error = str(exc)
                return
            except Exception as exc:  # GLib.Error: an element of the chain is missing
                self._chain_error = f"cannot build the decoder {chain!r}: {_first_line(exc)}"
                return
            self.pipeline.add(tail)
            tail.sync_state_with_parent()
            conv = self.pipeline.get_by_name("spotrt_conv")
            if pad.link(tail.get_static_pad("sink")) != Gst.PadLinkReturn.OK or not tail.link(conv):
                self._chain_error = f"GStreamer cannot link {codec} to {chain}"
            return
        fake = Gst.ElementFactory.make("fakesink", None)
        fake.set_property("sync", False)
        fake.set_property("async", False)
        self.pipeline.add(fake)
        fake.sync_state_with_parent()
        pad.link(fake.get_static_pad("sink"))

    def _bus_error(self) -> str | None:
        """The first error on the bus, as "element: message"; also notes a broken connection."""
        Gst = self.Gst
        while True:
            msg = self.pipeline.get_bus().pop_filtered(Gst.MessageType.ERROR | Gst.MessageType.WARNING)
            if msg is None:
                return None
            err, _debug = msg.parse_error() if msg.type == Gst.MessageType.ERROR else msg.parse_warning()
            line = f"{msg.src.get_name() if msg.src is not None else 'pipeline'}: {_first_line(err.message)}"
            if msg.type == Gst.MessageType.ERROR:
                return line
            # rtspsrc says "the server closed the connection" as a read warning, then ends the stream:
            # that end is a lost stream (reconnect), not the server's end of stream (an RTCP BYE).
            if err.matches(Gst.ResourceError.quark(), Gst.ResourceError.READ):
                self._broken = line

    def _open(self, timeout: float) -> None:
        Gst = self.Gst
        # Live elements say so going to PAUSED (NO_PREROLL); NULL -> PLAYING in one step hides it.
        ret = self.pipeline.set_state(Gst.State.PAUSED)
        no_preroll = ret == Gst.StateChangeReturn.NO_PREROLL
        if ret != Gst.StateChangeReturn.FAILURE:
            ret = self.pipeline.set_state(Gst.State.PLAYING)
        deadline = time.monotonic() + timeout
        sample = None
        while sample is None:
            if ret == Gst.StateChangeReturn.FAILURE or self._chain_error:
                break
            sample = self.sink.try_pull_sample(50 * Gst.MSECOND)
            if sample is not None or self.sink.is_eos() or time.monotonic() >= deadline:
                break
            err = self._bus_error()
            if err:
                self.error = err
                break
        if sample is None:
            err = self._chain_error or self.error or self._bus_error()
            if err is None:
                err = ("ended before its first frame" if self.sink.is_eos() else
                       f"no frame within {timeout:.0f} s" if ret != Gst.StateChangeReturn.FAILURE else
                       "the pipeline did not start")
            self.error = err
            self._stop()
            return
        fmt = sample.get_caps().get_structure(0).get_value("format")
        if fmt not in FORMATS:
            self.error = (f"appsink gives {fmt}, expected BGR (end the pipeline with videoconvert ! "
                          "video/x-raw,format=BGR ! appsink)")
            self._stop()
            return
        q = Gst.Query.new_latency()
        live = self.pipeline.query(q) and q.parse_latency()[0]
        self.live = bool(no_preroll or live)
        if self.live:  # from now on a slow reader gets the newest frame (older ones are counted)
            self.sink.set_property("max-buffers", LIVE_SINK_BUFFERS)
            self.sink.set_property("drop", True)
        caps = sample.get_caps().get_structure(0)
        ok, num, den = caps.get_fraction("framerate")
        self.fps = num / den if ok and num > 0 and den > 0 else None
        ok, duration = self.pipeline.query_duration(Gst.Format.TIME)
        if not self.live and ok and duration > 0 and self.fps:
            self.frame_count = int(round(duration / Gst.SECOND * self.fps))
        self._first = sample
        self._opened = True

    # -- the cv2.VideoCapture interface -----------------------------------------------------------
    def isOpened(self) -> bool:  # noqa: N802 (cv2's name)
        return self._opened

    def get(self, prop) -> float:
        import cv2

        if prop == cv2.CAP_PROP_FPS:
            return self.fps or 0.0
        if prop == cv2.CAP_PROP_FRAME_COUNT:
            return float(self.frame_count or 0)
        if prop == cv2.CAP_PROP_POS_MSEC:
            return 1000.0 * self.pos_s
        return 0.0

    def getBackendName(self) -> str:  # noqa: N802
        return "GStreamer (PyGObject)"

    def read(self):
        got = self.pull()
        return (False, None) if got is None else (True, got[0])

    def release(self) -> None:
        self._stop()
        self._opened = False

    # -- frames -----------------------------------------------------------------------------------
    def pull(self, timeout: float | None = None):
        """-> (BGR image, stream time in s or None) of the next frame, or None (see `ended`, `error`)."""
        if self.pipeline is None:
            self.ended = self.ended or "error"
            return None
        Gst = self.Gst
        sample, self._first = self._first, None
        deadline = time.monotonic() + (self.read_timeout if timeout is None else timeout)
        while sample is None:
            sample = self.sink.try_pull_sample(100 * Gst.MSECOND)
            if sample is not None:
                break
            err = self._bus_error()
            if self.sink.is_eos() and not err:
                err = self._broken
                if err is None:
                    self.ended = "eos"
                    return None
            if err:
                self.ended, self.error = "error", err
                return None
            if time.monotonic() >= deadline:
                self.ended, self.error = "timeout", f"no frame for {self.read_timeout:.0f} s"
                return None
        buf = sample.get_buffer()
        self.skipped = 0
        if self._pts and buf.pts in self._pts:  # frames that came before this one and were dropped
            while self._pts and self._pts[0] != buf.pts:
                self._pts.popleft()
                self.skipped += 1
            self._pts.popleft()
        t = None
        if buf.pts != Gst.CLOCK_TIME_NONE:
            st = sample.get_segment().to_stream_time(Gst.Format.TIME, buf.pts)
            if 0 <= st < Gst.CLOCK_TIME_NONE:
                t = st / Gst.SECOND
                self.pos_s = t
        return self._image(sample), t

    def _image(self, sample) -> np.ndarray:
        caps = sample.get_caps()
        s = caps.get_structure(0)
        fmt, w, h = s.get_value("format"), s.get_value("width"), s.get_value("height")
        channels = FORMATS[fmt]  # checked on the first frame (_open)
        buf = sample.get_buffer()
        meta = self.GstVideo.buffer_get_video_meta(buf)
        stride = meta.stride[0] if meta is not None else (w * channels + 3) // 4 * 4
        offset = meta.offset[0] if meta is not None else 0
        data = np.frombuffer(buf.extract_dup(0, buf.get_size()), np.uint8)
        rows = data[offset:offset + stride * h].reshape(h, stride)[:, :w * channels].reshape(h, w, channels)
        if fmt == "BGR":
            return np.ascontiguousarray(rows)
        if fmt == "GRAY8":
            return np.ascontiguousarray(np.repeat(rows, 3, axis=2))
        return np.ascontiguousarray(rows[:, :, 2::-1] if fmt.startswith("RGB") else rows[:, :, :3])

    def _stop(self) -> None:
        if self.pipeline is not None:
            self.pipeline.set_state(self.Gst.State.NULL)
            self.pipeline = None


class GstFileSource(VideoSource):
    """A non-live pipeline (a file, videotestsrc): every frame, in order, blocking.

    Frame k is the one at stream time k / fps; a frame the decoder did not give (a corrupt one) is a
    dropped record "corrupt" when a later frame comes, and the frames between an early end (an error,
    or end-of-stream before the file's stated duration) and that duration are dropped "truncated".
    """

    def __init__(self, spec, cap: GstCapture, stream: int = 0, log: Callable[[str], None] | None = None) -> None:
        super().__init__(spec.uri, stream)
        self.cap, self.log = cap, log
        self.fps, self.frame_count = cap.fps, cap.frame_count

    def _time(self, index: int) -> float:
        return index / self.fps if self.fps else 0.0

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        index = 0
        while not stop.is_set():
            t0 = time.perf_counter()
            got = self.cap.pull(FILE_READ_TIMEOUT_S)
            dt = time.perf_counter() - t0
            if got is None:
                break
            image, t = got
            k = index
            if t is not None and self.fps:  # its place in the file; never back, so every index is used once
                k = max(index, int(round(t * self.fps)))
            for i in range(index, k):
                yield Frame(self.stream, self.uri, i, self._time(i), None, DROP_CORRUPT)
            yield Frame(self.stream, self.uri, k, t if t is not None else self._time(k), image, None, dt)
            index = k + 1
        if stop.is_set():
            return
        if self.cap.ended != "eos" and self.log:
            self.log(f"source {self.uri}: stopped at frame {index}: {self.cap.error}")
        for i in range(index, self.frame_count or 0):
            yield Frame(self.stream, self.uri, i, self._time(i), None, DROP_TRUNCATED)

    def close(self) -> None:
        self.cap.release()


__all__ = ["GstCapture", "GstFileSource", "gst_missing", "element_exists", "decode_chain", "describe", "csi_pipeline",
           "user_pipeline", "DECODERS", "NV_DECODER"]
