"""Annotating frames with what was read."""

from __future__ import annotations

import cv2
import numpy as np

GREEN = (60, 220, 60)


def draw_words(image: np.ndarray, words, color=GREEN) -> np.ndarray:
    """A copy of `image` with each word's quad and text drawn on it."""
    out = image.copy()
    scale = max(0.4, min(out.shape[:2]) / 900)
    for w in words:
        quad = np.round(w.quad).astype(np.int32)
        cv2.polylines(out, [quad], True, color, max(1, int(round(2 * scale))), cv2.LINE_AA)
        label = w.text
        x, y = int(quad[:, 0].min()), int(quad[:, 1].min())
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        y0 = max(th + base, y - 2)
        cv2.rectangle(out, (x, y0 - th - base), (x + tw, y0), (0, 0, 0), -1)
        cv2.putText(out, label, (x, y0 - base), cv2.FONT_HERSHEY_SIMPLEX, scale, color, 1, cv2.LINE_AA)
    return out
