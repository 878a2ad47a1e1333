"""Let this virtual environment import the system's PyGObject (`gi`), and nothing else of the system.

GStreamer's Python bindings come from the OS (Debian/Ubuntu/JetPack: python3-gi, gir1.2-gstreamer-1.0);
they are not a pip package that builds everywhere. A venv made without --system-site-packages cannot
see them, and --system-site-packages would also expose the OS's numpy and cv2. This links only the
`gi` package into the venv's site-packages, when its compiled module fits this Python (same
major.minor and ABI). Run with the venv's Python: `.venv/bin/python tools/link_system_gi.py`.
Prints one line; exits 0 either way (without gi, spotrt's sources use OpenCV).
"""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import sysconfig

CHECK = ("import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstApp', '1.0'); "
         "from gi.repository import Gst; Gst.init(None); import numpy, cv2; "
         "print(Gst.version_string(), gi.__file__, numpy.__file__, cv2.__file__, sep='|')")


def candidates() -> list[str]:
    ver = f"python{sys.version_info.major}.{sys.version_info.minor}"
    dirs = ["/usr/lib/python3/dist-packages", f"/usr/lib/{ver}/dist-packages", f"/usr/lib/{ver}/site-packages",
            f"/usr/lib64/{ver}/site-packages"]
    return [d for d in dirs if os.path.isdir(os.path.join(d, "gi"))]


def check() -> tuple[bool, str]:
    r = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True)
    lines = (r.stdout or r.stderr).strip().splitlines()
    return r.returncode == 0, lines[-1] if lines else ""


def main() -> int:
    site = sysconfig.get_paths()["purelib"]
    if sys.prefix == sys.base_prefix:
        print("link_system_gi: not a virtual environment, nothing to do")
        return 0
    link = os.path.join(site, "gi")
    ok, detail = check()
    if ok:
        print(f"link_system_gi: gi already importable: {detail.split('|')[0]}")
        return 0
    suffix = sysconfig.get_config_var("EXT_SUFFIX")  # e.g. .cpython-311-x86_64-linux-gnu.so
    for d in candidates():
        if not glob.glob(os.path.join(d, "gi", "_gi" + suffix)):
            found = [os.path.basename(p) for p in glob.glob(os.path.join(d, "gi", "_gi*.so"))]
            print(f"link_system_gi: {d}/gi: found {', '.join(found) or 'no _gi module'}, expected _gi{suffix} "
                  f"(this venv's Python {sys.version.split()[0]}): GStreamer sources will use OpenCV")
            continue
        if os.path.islink(link) or not os.path.exists(link):
            if os.path.islink(link):
                os.unlink(link)
            os.symlink(os.path.join(d, "gi"), link)
        ok, detail = check()
        if ok:
            gst, gi_file, np_file, cv_file = detail.split("|")
            inside = all(p.startswith(sys.prefix) for p in (np_file, cv_file))
            print(f"link_system_gi: {link} -> {d}/gi: {gst}"
                  + ("" if inside else f"; warning: numpy/cv2 from {np_file}, {cv_file}"))
            return 0
        print(f"link_system_gi: {d}/gi links but does not import ({detail}); removed")
        if os.path.islink(link):
            os.unlink(link)
    if not candidates():
        print("link_system_gi: no system PyGObject found (Debian/Ubuntu: apt install python3-gi gir1.2-gstreamer-1.0 "
              "gir1.2-gst-plugins-base-1.0): GStreamer sources will use OpenCV")
    return 0


if __name__ == "__main__":
    sys.exit(main())
