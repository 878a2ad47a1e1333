"""Drop / reconnect / give-up figures of both source backends, from the test suite's own scenarios.

    python benchmarks/source_faults.py [--sign ../shared/data/video/sign_bw_960x506.mp4]

Runs, for GStreamer (PyGObject) and OpenCV (FFmpeg), the scenarios of tests/test_runtime_gst.py
and tests/test_runtime_sources.py against real servers on 127.0.0.1 and prints a Markdown table:
the sign video's first 50 frames over RTSP (tests/rtsp_server.py, H.264 as the file holds it),
that server killed after 20 frames and back 1 s later, a server that never starts
(--reconnect-timeout 2), and an HTTP MJPEG stream that drops, comes back and stays down (OpenCV
only: http(s) always opens with OpenCV). Needs the Debian GStreamer packages (make gst-packages).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from runtime_helpers import RtspServer, counting_images, rtsp_outage, write_h264  # noqa: E402

from spotrt.errors import SpotrtError  # noqa: E402
from spotrt.runtime.sources import DROP_LOST, DROP_NEWER, open_source  # noqa: E402


def drain(src, limit: int | None = None):
    stop, out = threading.Event(), []
    for f in src.frames(stop):
        out.append(f)
        if limit is not None and len(out) >= limit:
            stop.set()
    src.close()
    return out


def counts(frames) -> str:
    c = Counter(f.dropped for f in frames)
    return (f"{len(frames)} records: {c[None]} frames, {c[DROP_NEWER]} dropped newer, "
            f"{c[DROP_LOST]} dropped lost")


def sign_over_rtsp(backend: str, clip: Path) -> str:
    srv = RtspServer(clip).start()
    try:
        t0 = time.monotonic()
        # OpenCV cannot tell the stream's end from a loss (it would reconnect and play it again): stop at 50.
        frames = drain(open_source(srv.url, backend=backend, backoff=(0.1, 0.4), give_up_s=3, log=lambda line: None),
                       limit=50)
        took = time.monotonic() - t0
    finally:
        srv.close()
    ref = drain(open_source(clip, backend=backend, log=lambda line: None))
    same = sum(a.image is not None and np.array_equal(a.image, b.image) for a, b in zip(frames, ref))
    read = sum(f.image is not None for f in frames)
    return f"{counts(frames)}; {same} of those {read} pixel-equal to the file read by {backend}; {took:.1f} s"


def outage(backend: str, tmp: Path) -> str:
    clip = write_h264(tmp / f"counting_{backend}.mp4", counting_images(50))
    srv = RtspServer(clip).start()
    try:
        frames, lines, src = rtsp_outage(srv, backend)
    finally:
        srv.close()
    killed = next(t for t, ln in lines if ln == "test: server killed")
    back = next(t for t, ln in lines if "reconnected" in ln)
    end = "ended at the stream's end (RTCP BYE)" if lines[-1][1].endswith("end of stream") else \
        "stopped by the test after the second session's 50 frames (an end looks like a loss to OpenCV)"
    return (f"{counts(frames)}; reconnects {src.reconnects}, back {back - killed:.1f} s after the kill "
            f"(server down 1.0 s); {end}")


def never_starts(backend: str) -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    try:
        open_source(f"rtsp://127.0.0.1:{port}/sign", backend=backend, backoff=(0.5, 8.0), give_up_s=2.0,
                    log=lambda line: None)
        return "opened (unexpected)"
    except SpotrtError as exc:
        line = str(exc).replace(str(port), "PORT")
        return f"SpotrtError after {time.monotonic() - t0:.1f} s: `{line}`"


def mjpeg_drop() -> str:
    from test_runtime_sources import _MjpegServer

    server = _MjpegServer(per_connection=12, connections=2)
    lines = []
    try:
        t0 = time.monotonic()
        src = open_source(server.url, backoff=(0.05, 0.1), give_up_s=1.0, log=lines.append)
        frames = drain(src)
        took = time.monotonic() - t0
    finally:
        server.close()
    gave_up = any("giving up" in ln for ln in lines)
    return f"{counts(frames)}; reconnects {src.reconnects}; gave up: {gave_up}; {took:.1f} s"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sign", default=str(ROOT.parent / "shared" / "data" / "video" / "sign_bw_960x506.mp4"))
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cap = cv2.VideoCapture(a.sign)
        clip = write_h264(tmp / "sign50.mp4", [cap.read()[1] for _ in range(50)])
        for backend in ("gst", "opencv"):
            print(f"source_faults: {backend}", file=sys.stderr, flush=True)
            rows.append((backend, "sign video, 50 frames over RTSP", sign_over_rtsp(backend, clip)))
            rows.append((backend, "RTSP server killed after 20 frames, back 1 s later", outage(backend, tmp)))
            rows.append((backend, "RTSP server never starts, --reconnect-timeout 2", never_starts(backend)))
        rows.append(("opencv", "HTTP MJPEG: 12 frames, drop, 12 frames, down", mjpeg_drop()))
    print("| backend | scenario | result |\n|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
