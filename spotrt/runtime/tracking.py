"""Video text tracking: words associated across frames, their readings stabilised by voting.

Each track predicts its box with constant velocity (per frame index, so `--every N` and dropped
frames only lengthen the step); detections are matched to predictions greedily by IoU. A track's
stable text is the reading with the highest summed score over its last `window` readings, and it is
reported only once the track has been seen `min_hits` times (a single-frame misreading never
becomes a stable word).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np


@dataclass
class TrackedWord:
    """A word read in one frame, with its track and the track's stable reading (None until stable)."""

    word: object          # SpottedWord: .text, .score, .quad
    track: int
    stable: str | None
    hits: int

    @property
    def text(self) -> str:
        return self.word.text

    @property
    def quad(self) -> np.ndarray:
        return self.word.quad

    def to_json(self) -> dict:
        d = self.word.to_json()
        d["track"] = self.track
        d["stable"] = self.stable
        return d


@dataclass
class Track:
    id: int
    box: np.ndarray                      # x1, y1, x2, y2 at `last`
    last: int                            # frame index last seen
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4, np.float32))
    hits: int = 1
    readings: deque = field(default_factory=deque)  # (text, score)

    def predict(self, index: int) -> np.ndarray:
        return self.box + self.velocity * (index - self.last)

    def vote(self) -> str:
        totals: dict[str, float] = {}
        for text, score in self.readings:
            totals[text] = totals.get(text, 0.0) + max(float(score), 1e-6)
        return max(totals.items(), key=lambda kv: kv[1])[0]


def quad_box(quad) -> np.ndarray:
    q = np.asarray(quad, dtype=np.float32).reshape(-1, 2)
    return np.array([q[:, 0].min(), q[:, 1].min(), q[:, 0].max(), q[:, 1].max()], dtype=np.float32)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in a (N,4) with every box in b (M,4)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), dtype=np.float32)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-6)


class Tracker:
    """Tracks the words of one stream.

    iou: least IoU between a track's predicted box and a word to continue it. max_gap: frames a
    track may go unseen before it ends. window: readings voted over. min_hits: sightings before the
    stable text is reported. smoothing: weight of the newest motion in the velocity estimate.
    """

    def __init__(self, iou: float = 0.3, max_gap: int = 10, window: int = 15, min_hits: int = 3,
                 smoothing: float = 0.5) -> None:
        if not 0 < iou <= 1 or max_gap < 1 or window < 1 or min_hits < 1:
            raise ValueError("tracker: expected 0 < iou <= 1, max_gap >= 1, window >= 1, min_hits >= 1")
        self.iou, self.max_gap, self.window, self.min_hits, self.smoothing = iou, max_gap, window, min_hits, smoothing
        self.tracks: list[Track] = []
        self._next_id = 1

    def update(self, words, index: int) -> list[TrackedWord]:
        """Words read in frame `index` (increasing) -> the same words, in order, with their tracks."""
        self.tracks = [t for t in self.tracks if index - t.last <= self.max_gap]
        boxes = np.array([quad_box(w.quad) for w in words], dtype=np.float32).reshape(-1, 4)
        preds = np.array([t.predict(index) for t in self.tracks], dtype=np.float32).reshape(-1, 4)
        iou = iou_matrix(preds, boxes)
        assigned: dict[int, Track] = {}
        if iou.size:
            # Greedy by IoU: highest first, each track and word used once.
            order = np.dstack(np.unravel_index(np.argsort(-iou, axis=None), iou.shape))[0]
            used_t: set[int] = set()
            for ti, wi in order:
                if iou[ti, wi] < self.iou:
                    break
                if ti in used_t or wi in assigned:
                    continue
                used_t.add(int(ti))
                assigned[int(wi)] = self.tracks[ti]
        out = []
        for wi, word in enumerate(words):
            track = assigned.get(wi)
            if track is None:
                track = Track(self._next_id, boxes[wi], index)
                self._next_id += 1
                self.tracks.append(track)
            elif index > track.last:
                step = (boxes[wi] - track.box) / (index - track.last)
                track.velocity = step if track.hits == 1 else (1 - self.smoothing) * track.velocity + self.smoothing * step
                track.box, track.last = boxes[wi], index
                track.hits += 1
            track.readings.append((word.text, float(word.score)))
            while len(track.readings) > self.window:
                track.readings.popleft()
            stable = track.vote() if track.hits >= self.min_hits else None
            out.append(TrackedWord(word, track.id, stable, track.hits))
        return out


__all__ = ["Tracker", "TrackedWord", "Track", "iou_matrix", "quad_box"]
