"""Sources by URI: parsing every kind without hardware, files deliver every frame (through OpenCV and
through GStreamer), live sources keep the newest frame and reconnect (with fake captures, and through
a real HTTP MJPEG stream on localhost), and nothing is lost without a record. The RTSP server and
pipeline strings are in test_runtime_gst.py."""

import threading

import cv2
import numpy as np
import pytest
from runtime_helpers import FakeCapture, frame_image, require_gst, write_h264, write_video

from spotrt.errors import SpotrtError
from spotrt.runtime.sources import (DROP_CORRUPT, DROP_LOST, DROP_NEWER, DROP_TRUNCATED, FileSource, FolderSource,
                                    LiveSource, open_source, parse_source)

FILE_SOURCE = {"opencv": "FileSource", "gst": "GstFileSource"}


@pytest.fixture(params=["opencv", "gst"])
def backend(request):
    """Both ways of opening files: OpenCV's FFmpeg, and GStreamer through PyGObject."""
    if request.param == "gst":
        require_gst("avdec_mpeg4", "avdec_mjpeg")
    return request.param


def quiet(line):
    pass


def drain(source, limit=10_000):
    stop = threading.Event()
    out = []
    for f in source.frames(stop):
        out.append(f)
        if len(out) >= limit:
            stop.set()
    return out


def test_parse_every_kind(tmp_path):
    video = write_video(tmp_path / "a.mp4", 2)
    (tmp_path / "imgs").mkdir()
    cv2.imwrite(str(tmp_path / "imgs" / "1.png"), frame_image(1))
    cases = {
        str(video): ("file", str(video), cv2.CAP_ANY),
        f"file://{video}": ("file", str(video), cv2.CAP_ANY),
        str(tmp_path / "imgs"): ("folder", str(tmp_path / "imgs"), cv2.CAP_ANY),
        str(tmp_path / "imgs" / "1.png"): ("folder", str(tmp_path / "imgs" / "1.png"), cv2.CAP_ANY),
        "0": ("v4l2", 0, cv2.CAP_V4L2),
        "/dev/video2": ("v4l2", 2, cv2.CAP_V4L2),
        "v4l2:///dev/video1": ("v4l2", 1, cv2.CAP_V4L2),
        "rtsp://10.0.0.2:8554/cam": ("network", "rtsp://10.0.0.2:8554/cam", cv2.CAP_FFMPEG),
        "http://host/live.mjpg": ("network", "http://host/live.mjpg", cv2.CAP_FFMPEG),
    }
    for uri, (kind, target, api) in cases.items():
        spec = parse_source(uri)
        assert (spec.kind, spec.target, spec.api) == (kind, target, api), uri
        assert spec.live == (kind not in ("file", "folder"))
    csi = parse_source("csi://1")
    assert csi.kind == "csi" and csi.api == cv2.CAP_GSTREAMER
    assert "nvarguscamerasrc sensor-id=1" in csi.target and csi.target.endswith("sync=false")
    gst = parse_source("videotestsrc num-buffers=10 ! videoconvert")
    assert gst.kind == "gstreamer" and gst.target.endswith("appsink") and gst.live
    assert parse_source("videotestsrc ! appsink").target == "videotestsrc ! appsink"


@pytest.mark.parametrize("uri, words", [
    ("/no/such/clip.mp4", "no such file"), ("ftp://host/x", "unknown scheme"), ("csi://left", "csi://N"),
    ("v4l2://camera", "v4l2:///dev/videoN"), ("", "empty")])
def test_parse_errors(uri, words):
    with pytest.raises(SpotrtError, match=words):
        parse_source(uri)


def test_file_delivers_every_frame_in_order(tmp_path, backend):
    path = write_video(tmp_path / "clip.mp4", 23)
    with open_source(path, backend=backend, log=quiet) as src:
        assert type(src).__name__ == FILE_SOURCE[backend]
        assert not src.live and src.fps == 10.0 and src.frame_count == 23
        frames = drain(src)
    assert [f.index for f in frames] == list(range(23))
    assert all(f.dropped is None and f.image.shape == (120, 200, 3) for f in frames)
    assert [f.time for f in frames[:3]] == pytest.approx([0.0, 0.1, 0.2])
    assert all(abs(int(f.image[2, 2, 0]) - 10 * (f.index % 25)) <= 6 for f in frames)  # the right frames


def _mjpeg_with_bad_frame(tmp_path, bad: int, frames: int = 20):
    path = write_video(tmp_path / "clip.avi", frames, "MJPG")
    data = bytearray(path.read_bytes())
    starts = [i for i in range(len(data) - 2) if data[i:i + 3] == b"\xff\xd8\xff"]
    assert len(starts) == frames
    data[starts[bad]:starts[bad] + 200] = bytes(200)  # the JPEG's header is gone: undecodable
    path.write_bytes(bytes(data))
    return path


def test_corrupted_frame_is_a_record_and_the_file_continues(tmp_path, backend):
    path = _mjpeg_with_bad_frame(tmp_path, bad=5)
    with open_source(path, backend=backend, log=quiet) as src:
        frames = drain(src)
    assert [f.index for f in frames] == list(range(20))
    assert [f.index for f in frames if f.dropped] == [5]
    assert frames[5].dropped == DROP_CORRUPT and frames[5].image is None
    # The frames after it are the right ones (grey level 10 * index, JPEG-rounded).
    assert abs(int(frames[6].image[2, 2, 0]) - 60) <= 3 and abs(int(frames[19].image[2, 2, 0]) - 190) <= 3


def _check_truncated(frames, total):
    assert [f.index for f in frames] == list(range(total))
    good = [f.index for f in frames if f.dropped is None]
    assert good and good == list(range(len(good))) and len(good) < total
    assert {f.dropped for f in frames[len(good):]} == {DROP_TRUNCATED}


def test_file_that_stops_mid_stream_accounts_for_the_rest(tmp_path):
    """An AVI cut in half: OpenCV reads its header's frame count (GStreamer's avidemux counts only the
    frames it finds in a file without its index, so the H.264 test below covers GStreamer)."""
    path = write_video(tmp_path / "clip.avi", 20, "MJPG")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with open_source(path, backend="opencv", log=quiet) as src:
        assert src.frame_count == 20
        _check_truncated(drain(src), 20)


def test_h264_file_that_stops_mid_stream_accounts_for_the_rest(tmp_path, backend):
    require_gst("x264enc", "avdec_h264")  # to write the file
    path = write_h264(tmp_path / "clip.mp4", [frame_image(i) for i in range(40)])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with open_source(path, backend=backend, log=quiet) as src:
        assert src.frame_count == 40
        _check_truncated(drain(src), 40)


def test_folder_with_an_unreadable_image(tmp_path):
    d = tmp_path / "imgs"
    d.mkdir()
    for i in (1, 2, 10):
        cv2.imwrite(str(d / f"f{i}.png"), frame_image(i))
    (d / "f3.jpg").write_text("not an image")
    with open_source(d) as src:
        assert isinstance(src, FolderSource)
        frames = drain(src)
    assert [f.index for f in frames] == [0, 1, 2, 3]
    assert [f.dropped is None for f in frames] == [True, True, False, True]  # natural order: f1 f2 f3 f10
    assert frames[2].dropped.startswith("corrupt:") and "f3.jpg" in frames[2].dropped


def test_a_source_that_never_opens(tmp_path, backend):
    with pytest.raises(SpotrtError, match="cannot open"):
        LiveSource(parse_source("rtsp://127.0.0.1:9/none"), opener=lambda spec: FakeCapture(opened=False))
    bad = tmp_path / "not_a_video.mp4"
    bad.write_bytes(b"\x00" * 1000)
    name = {"opencv": "OpenCV", "gst": "GStreamer"}[backend]
    with pytest.raises(SpotrtError, match=f"not_a_video.mp4: {name} cannot open it"):
        open_source(bad, backend=backend)


def test_live_source_keeps_the_newest_frame_and_counts_the_rest():
    src = LiveSource(parse_source("rtsp://cam/x"), opener=lambda s: FakeCapture(frames=60, delay=0.002),
                     give_up_s=0.0, log=lambda line: None)
    stop = threading.Event()
    frames = []
    for f in src.frames(stop):
        frames.append(f)
        if f.dropped is None:
            threading.Event().wait(0.02)  # a slow consumer: the camera runs ahead
    src.close()
    assert [f.index for f in sorted(frames, key=lambda f: f.index)] == list(range(60))
    newer = [f for f in frames if f.dropped == DROP_NEWER]
    assert newer and all(f.image is None for f in newer)
    assert sum(f.dropped is None for f in frames) < 30


def test_live_source_reconnects_with_backoff():
    caps = iter([FakeCapture(frames=5), FakeCapture(opened=False), FakeCapture(frames=4, start=100)])
    lines = []
    src = LiveSource(parse_source("rtsp://cam/x"), opener=lambda s: next(caps, FakeCapture(opened=False)),
                     backoff=(0.01, 0.04), give_up_s=0.3, log=lines.append)
    frames = drain(src)
    src.close()
    assert [f.index for f in frames] == list(range(9))
    good = [int(f.image[2, 2, 0]) for f in frames if f.dropped is None]
    assert len(good) >= 2
    assert src.reconnects == 1
    assert any("lost, reconnecting in 0.0 s (attempt 1)" in ln for ln in lines)
    assert any("reconnected (attempt 2)" in ln for ln in lines)
    assert any("giving up" in ln for ln in lines)


class _MjpegServer:
    """A real HTTP MJPEG stream on localhost: each connection sends `per_connection` JPEG frames
    (frame k of connection c is a flat image of value 20 + 100*c + 5*k) and then closes, like a camera that drops."""

    def __init__(self, per_connection: int, connections: int):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                c = server.served
                server.served += 1
                if c >= connections:
                    self.send_error(503)  # the camera stays down: reconnects fail
                    return
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                for k in range(per_connection):
                    data = cv2.imencode(".jpg", np.full((48, 64, 3), 20 + 100 * c + 5 * k, np.uint8))[1].tobytes()
                    try:
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"
                                         % len(data) + data + b"\r\n")
                        self.wfile.flush()
                    except OSError:
                        return
                    threading.Event().wait(0.01)

        self.served = 0
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/stream.mjpg"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_real_http_stream_drops_reconnects_and_gives_up():
    """Through OpenCV's FFmpeg, no fakes: a stream that drops after 12 frames, comes back for 12 more,
    then stays down. Every frame is delivered or recorded as dropped, in order, once; the frames of
    the outage (its length times the stream's frame rate) are records too."""
    server = _MjpegServer(per_connection=12, connections=2)
    lines = []
    try:
        src = open_source(server.url, backoff=(0.05, 0.1), give_up_s=1.0, log=lines.append)
        frames = drain(src)
        src.close()
    finally:
        server.close()
    assert [f.index for f in frames] == list(range(len(frames)))
    values = [int(f.image[20, 30, 0]) for f in frames if f.dropped is None]
    assert all(b > a for a, b in zip(values, values[1:]))  # in order, none twice (JPEG keeps them within +-2)
    assert min(values) < 90 and max(values) > 110  # frames from before and after the reconnect
    assert len(frames) - sum(f.dropped == DROP_LOST for f in frames) == 24  # the 24 the server sent
    assert {f.dropped for f in frames if f.image is None} <= {DROP_NEWER, DROP_LOST}
    assert src.reconnects == 1
    assert any("reconnected" in ln for ln in lines) and any("giving up" in ln for ln in lines)


def test_real_http_stream_that_never_opens():
    server = _MjpegServer(per_connection=1, connections=0)
    try:
        with pytest.raises(SpotrtError, match="OpenCV cannot open it, expected a reachable stream"):
            open_source(server.url)
    finally:
        server.close()
