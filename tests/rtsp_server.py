"""A real RTSP server on 127.0.0.1 for the source tests (GstRtspServer, gst-rtsp-server 1.x).

    python tests/rtsp_server.py FILE.mp4 [--port N] [--mount /sign]

serves the H.264 track of an MP4 as it is (no re-encoding), in real time, each client from the
start; prints "ready PORT" once it listens, and quits when its stdin closes. Run it as a subprocess,
so that a test can stop it the way a camera goes away (SIGKILL: the connection breaks) and start it
again on the same port.
"""

import argparse
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    ap.add_argument("--mount", default="/sign")
    a = ap.parse_args()
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(a.port))
    factory = GstRtspServer.RTSPMediaFactory()
    location = a.file.replace("\\", "\\\\").replace('"', '\\"')
    factory.set_launch(f'( filesrc location="{location}" ! qtdemux ! h264parse ! '
                       'rtph264pay name=pay0 pt=96 config-interval=-1 )')
    factory.set_shared(False)
    server.get_mount_points().add_factory(a.mount, factory)
    if server.attach(None) == 0:
        print(f"error: cannot listen on 127.0.0.1:{a.port}", flush=True)
        return 1
    loop = GLib.MainLoop()
    # Ends with its parent: the test holds our stdin; when it is closed (or the test dies), we quit.
    GLib.io_add_watch(GLib.IOChannel.unix_new(sys.stdin.fileno()), GLib.PRIORITY_DEFAULT,
                      GLib.IOCondition.IN | GLib.IOCondition.HUP, lambda *_: loop.quit() or False)
    print(f"ready {server.get_bound_port()}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
