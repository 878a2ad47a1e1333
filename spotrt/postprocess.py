"""From the network's raw outputs to words (NumPy only: every backend shares this, through spotrt/runner.py)."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from .imageops import Letterbox


@dataclass
class SpottedWord:
    """One word read in an image: quad (4,2) clockwise from top-left, in image pixels."""

    text: str
    score: float
    quad: np.ndarray
    det_score: float = 0.0
    rec_score: float = 0.0

    def to_json(self) -> dict:
        return {
            "text": self.text,
            "score": round(float(self.score), 4),
            "box": [round(float(v), 1) for v in self.quad.reshape(-1)],
        }


def decode_tokens(tokens: np.ndarray, charset: str) -> str:
    """Token ids (T,) -> text, stopping at the first end-of-word (0)."""
    chars = []
    for t in tokens.tolist():
        if t == 0:
            break
        if 1 <= t <= len(charset):
            chars.append(charset[t - 1])
    return "".join(chars)


def text_confidence(token_probs: np.ndarray, text: str) -> float:
    """Mean probability of a read's characters and its end token (token_probs: (T,))."""
    return float(np.mean(token_probs[: min(len(text) + 1, token_probs.shape[0])]))


def nms_np(boxes: np.ndarray, scores: np.ndarray, iou_thresh: float) -> list[int]:
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    area = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    while order.size:
        i = order[0]
        keep.append(int(i))
        rest = order[1:]
        lt = np.maximum(boxes[i, :2], boxes[rest, :2])
        rb = np.minimum(boxes[i, 2:], boxes[rest, 2:])
        inter = np.prod(np.clip(rb - lt, 0, None), axis=1)
        iou = inter / np.maximum(area[i] + area[rest] - inter, 1e-6)
        order = rest[iou <= iou_thresh]
    return keep


def box_to_quad(box: np.ndarray) -> np.ndarray:
    x1, y1, x2, y2 = box
    return np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], dtype=np.float32)


def words_from_outputs(
    boxes: np.ndarray,
    scores: np.ndarray,
    tokens: np.ndarray,
    token_probs: np.ndarray,
    count: int,
    letterbox: Letterbox,
    charset: str,
    score_thresh: float,
    nms_iou: float,
    word_thresh: float = 0.0,
) -> list[SpottedWord]:
    """One image's outputs (K,...) -> words in original image pixels, best first.

    A word's score is its detection probability times the mean probability of its characters
    and end token; regions that read as empty, or whose word score is below `word_thresh`, are
    dropped (before NMS: a dropped region could only have suppressed lower-scored ones).
    """
    n = int(count)
    boxes, scores, tokens, token_probs = boxes[:n], scores[:n], tokens[:n], token_probs[:n]
    cand = []
    for i in range(n):
        if scores[i] < score_thresh:
            continue
        text = decode_tokens(tokens[i], charset)
        if not text:
            continue
        rec = text_confidence(token_probs[i], text)
        if float(scores[i]) * rec < word_thresh:
            continue
        cand.append((i, text, float(scores[i]) * rec, rec))
    if not cand:
        return []
    idx = np.array([c[0] for c in cand])
    keep = nms_np(boxes[idx], np.array([c[2] for c in cand]), nms_iou)
    words = []
    for j in keep:
        i, text, score, rec = cand[j]
        box = boxes[i] / letterbox.scale
        box[0::2] = np.clip(box[0::2], 0, letterbox.width)
        box[1::2] = np.clip(box[1::2], 0, letterbox.height)
        words.append(SpottedWord(text, score, box_to_quad(box), float(scores[i]), rec))
    return words


def words_of(cfg, boxes, scores, tokens, token_probs, count, letterbox: Letterbox) -> list[SpottedWord]:
    """`words_from_outputs` with a model config's charset and thresholds."""
    return words_from_outputs(boxes, scores, tokens, token_probs, count, letterbox, cfg.charset,
                              cfg.score_thresh, cfg.det_nms_iou, cfg.word_score_thresh)


def capped_scale_note(scale: float, lb: Letterbox, input_size: tuple[int, int]) -> str | None:
    """The line that says a fixed-size graph could not honour a `scale` above 1 (None if it did).

    A graph or engine has one input size; a frame that does not fit it at `scale` is read at the
    largest scale that fits, and the user who asked for more (to read small text) must be told.
    """
    if scale <= 1.0 or lb.scale >= scale - 1e-6:
        return None
    return (f"note: --scale {scale:g}: a {lb.width}x{lb.height} frame fits this graph's {input_size[1]}x"
            f"{input_size[0]} input only up to scale {lb.scale:.2f}, so it is read at {lb.scale:.2f} (export "
            "with a larger --input-size, or use the torch backend, to read smaller text)")


def note_capped_scale_once(owner, scale: float, lb: Letterbox, input_size: tuple[int, int]) -> None:
    """Print capped_scale_note on stderr the first time it applies to `owner` (a spotter)."""
    if getattr(owner, "_scale_note_done", False):
        return
    line = capped_scale_note(scale, lb, input_size)
    if line is not None:
        owner._scale_note_done = True
        print(f"spotrt: {line}", file=sys.stderr, flush=True)

