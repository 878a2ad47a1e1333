"""Other OCR packages' outputs as ICDAR 2015 words (for `peers.py`; needs none of those packages).

PP-OCR and EasyOCR report text lines (a quad and a string that may hold several words), Tesseract
reports words as axis-aligned boxes; the ICDAR 2015 protocol scores words. The conversion, the same
for every reader, spotrt included:

- text is cleaned (`clean_text`): Unicode NFKC (full-width forms become ASCII), control characters
  dropped, runs of white space made one space;
- a line is split at its spaces into words; each word gets the part of the line's quad that its
  characters span, the line's top and bottom edges cut at the same fractions of the text's length
  (`split_line`);
- each word loses leading and trailing characters that are neither letters nor digits (the
  protocol lets the ground truth, never the detection, lose an edge punctuation mark) and its quad
  narrows to the characters kept; a word with no letter or digit left is dropped;
- quads are clockwise from the top-left corner, in image pixels (`order_quad`).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import numpy as np


@dataclass
class Word:
    quad: np.ndarray  # (4, 2) float, clockwise from the top-left corner, image pixels
    text: str
    score: float = 1.0


_SPACES = re.compile(r"\s+")


def clean_text(text: str) -> str:
    """NFKC, without control or format characters, white space collapsed to single spaces, stripped."""
    text = unicodedata.normalize("NFKC", str(text))
    text = "".join(" " if ch.isspace() else ch for ch in text
                   if ch.isspace() or not unicodedata.category(ch).startswith("C"))
    return _SPACES.sub(" ", text).strip()


def _is_alnum(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "LN"


def order_quad(points) -> np.ndarray:
    """Four points as a quad clockwise (in image coordinates, y down) from its top-left corner.

    The points may come in any order: they are sorted by angle around their centre, and the corner
    whose next edge points most nearly to the right (+x) comes first, so a box tilted by less than
    45 degrees starts at the top-left corner of its text."""
    p = np.asarray(points, dtype=np.float64).reshape(4, 2)
    if not np.all(np.isfinite(p)):
        raise ValueError(f"quad {p.tolist()}: expected 4 finite (x, y) points")
    c = p.mean(axis=0)
    p = p[np.argsort(np.arctan2(p[:, 1] - c[1], p[:, 0] - c[0]), kind="stable")]  # y down: clockwise
    edges = np.roll(p, -1, axis=0) - p
    tilt = np.abs(np.arctan2(edges[:, 1], edges[:, 0]))
    # Ties (a box at exactly 45 degrees, or a degenerate one): the corner nearest the image origin.
    start = min(range(4), key=lambda k: (round(float(tilt[k]), 9), float(p[k].sum())))
    return np.roll(p, -start, axis=0)


def box_quad(left: float, top: float, width: float, height: float) -> np.ndarray:
    """An axis-aligned box as a clockwise quad from its top-left corner."""
    x0, y0, x1, y1 = float(left), float(top), float(left) + float(width), float(top) + float(height)
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


def _sub_quad(q: np.ndarray, t0: float, t1: float) -> np.ndarray:
    top = q[0] + (q[1] - q[0]) * np.array([[t0], [t1]])
    bottom = q[3] + (q[2] - q[3]) * np.array([[t0], [t1]])
    return np.array([top[0], top[1], bottom[1], bottom[0]])


def split_line(quad, text: str, score: float = 1.0) -> list[Word]:
    """A text line (quad, string) -> its words with their parts of the quad (see the module doc)."""
    q = order_quad(quad)
    text = clean_text(text)
    n = len(text)
    words = []
    for m in re.finditer(r"\S+", text):
        start, end = m.start(), m.end()
        while start < end and not _is_alnum(text[start]):
            start += 1
        while end > start and not _is_alnum(text[end - 1]):
            end -= 1
        if start == end:
            continue
        words.append(Word(_sub_quad(q, start / n, end / n), text[start:end], float(score)))
    return words


def tesseract_tsv_words(tsv: str) -> list[Word]:
    """Words of Tesseract's TSV output (`tesseract IMAGE stdout tsv`): its level-5 rows with text,
    their boxes as quads, their confidence (0-100) as a score in 0..1."""
    lines = tsv.splitlines()
    if not lines:
        return []
    header = lines[0].split("\t")
    try:
        col = {name: header.index(name) for name in ("level", "left", "top", "width", "height", "conf", "text")}
    except ValueError:
        raise ValueError(f"tesseract TSV: found header {lines[0][:80]!r}, expected level, left, top, width, "
                         "height, conf and text columns") from None
    words = []
    for line in lines[1:]:
        cells = line.split("\t")
        if len(cells) <= col["text"] or cells[col["level"]] != "5":
            continue
        conf = float(cells[col["conf"]])
        if conf < 0:
            continue
        quad = box_quad(*(float(cells[col[k]]) for k in ("left", "top", "width", "height")))
        words += split_line(quad, cells[col["text"]], conf / 100.0)
    return words
