"""Readers for the ICDAR 2015 ground-truth formats (word crops and full-image quads)."""
from __future__ import annotations

import os

import numpy as np


def _read_lines(path) -> list[str]:
    # utf-8-sig strips a byte-order mark; splitlines() copes with CRLF and LF alike.
    with open(path, "r", encoding="utf-8-sig", errors="replace") as f:
        return [ln for ln in f.read().splitlines() if ln.strip()]


def _unquote(s: str) -> str:
    """Strip surrounding double quotes and undo ``\\"`` / ``\\\\`` escapes."""
    s = s.strip()
    if len(s) >= 2 and s[0] == '"' and s[-1] == '"':
        s = s[1:-1]
    out, i = [], 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s) and s[i + 1] in '"\\':
            out.append(s[i + 1])
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def read_word_crops(root) -> list[tuple[str, str]]:
    """Read ``root/gt.txt`` of an ICDAR word-crop folder.

    Lines look like ``word_1.png, "Genaxis Theatre"``. Returns ``(absolute image path,
    transcription)`` in file order.
    """
    root = os.path.abspath(os.fspath(root))
    out: list[tuple[str, str]] = []
    for ln in _read_lines(os.path.join(root, "gt.txt")):
        name, sep, rest = ln.partition(",")
        if not sep:
            continue
        out.append((os.path.join(root, name.strip()), _unquote(rest)))
    return out


def read_word_coords(root) -> dict[str, np.ndarray]:
    """Read ``root/coords.txt`` (``word_1.png,x1,y1,...,x4,y4``): the text quad inside each crop.

    Returns ``{absolute image path: (4, 2) float32}``; empty when the file is absent.
    """
    root = os.path.abspath(os.fspath(root))
    path = os.path.join(root, "coords.txt")
    out: dict[str, np.ndarray] = {}
    if not os.path.isfile(path):
        return out
    for ln in _read_lines(path):
        parts = [p.strip() for p in ln.split(",")]
        if len(parts) < 9:
            continue
        try:
            quad = np.array([float(v) for v in parts[1:9]], dtype=np.float32).reshape(4, 2)
        except ValueError:
            continue
        out[os.path.join(root, parts[0])] = quad
    return out


def read_icdar_gt(path) -> list[tuple[np.ndarray, str]]:
    """Read an ICDAR 2015 ``gt_img_N.txt``: ``x1,y1,...,x4,y4,transcription`` per line.

    The transcription is everything after the eighth comma (it may itself contain commas).
    Returns ``(quad (4, 2) float32, transcription)``; ``###`` (don't care) is kept as is.
    """
    out: list[tuple[np.ndarray, str]] = []
    for ln in _read_lines(path):
        parts = ln.split(",", 8)
        if len(parts) < 8:
            continue
        try:
            quad = np.array([float(v) for v in parts[:8]], dtype=np.float32).reshape(4, 2)
        except ValueError:
            continue
        text = parts[8] if len(parts) > 8 else ""
        out.append((quad, text))
    return out
