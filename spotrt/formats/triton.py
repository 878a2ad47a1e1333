"""The tensors of spotrt's Triton model (NumPy only: the server, the stock repository's model.py and the
client share them; no torch, no Triton).

A request holds a batch of frames; Triton's dynamic batcher joins requests of the same frame size:

    inputs   frames     UINT8  [n, H, W, 3]  BGR frames as a camera gives them (any H, W >= 1)
             scale      FP32   [n, 1]        resize before the network (spotrt run --scale; 1.0 = as is)
             min_score  FP32   [n, 1]        word-score threshold; below 0 = the model's own
    outputs  count      INT32  [n, 1]        words found in each frame
             quads      FP32   [n, K, 4, 2]  their boxes in the frame's own pixels, clockwise from top-left
             texts      BYTES  [n, K]        UTF-8 text
             scores     FP32   [n, K]        detection x character probability
             det_scores FP32   [n, K]        detection probability
             rec_scores FP32   [n, K]        mean character probability

K is the largest count in the request (at least 1); slots past a frame's count are padding. How the
server reads the frames: spotrt.serve.answer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..options import SCALE_RANGE
from ..postprocess import SpottedWord

MODEL_NAME = "spotrt"
MODEL_DEFAULT_SCORE = -1.0  # min_score below 0: the model's own word_score_thresh


@dataclass(frozen=True)
class TensorSpec:
    name: str
    datatype: str               # Triton's name: UINT8, FP32, INT32, BYTES
    dims: tuple[int, ...]       # without the batch dimension; -1 = any size

    @property
    def numpy(self):
        return {"UINT8": np.uint8, "FP32": np.float32, "INT32": np.int32, "BYTES": np.bytes_}[self.datatype]


INPUTS = (TensorSpec("frames", "UINT8", (-1, -1, 3)), TensorSpec("scale", "FP32", (1,)),
          TensorSpec("min_score", "FP32", (1,)))
OUTPUTS = (TensorSpec("count", "INT32", (1,)), TensorSpec("quads", "FP32", (-1, 4, 2)),
           TensorSpec("texts", "BYTES", (-1,)), TensorSpec("scores", "FP32", (-1,)),
           TensorSpec("det_scores", "FP32", (-1,)), TensorSpec("rec_scores", "FP32", (-1,)))


class RequestError(ValueError):
    """A request the model cannot answer: one line (what, found, expected), sent back as the error response."""


def check_request(frames: np.ndarray, scale: np.ndarray, min_score: np.ndarray) -> None:
    """RequestError unless the three inputs of one request agree with INPUTS (Triton checks the
    declared types and shapes itself; this checks what a config cannot say)."""
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[3] != 3:
        raise RequestError(f"input frames: found {frames.dtype} {list(frames.shape)}, expected uint8 [n, H, W, 3]")
    n, h, w = frames.shape[:3]
    if n < 1 or h < 1 or w < 1:
        raise RequestError(f"input frames: found shape {list(frames.shape)}, expected at least one frame of 1x1 or more")
    for spec, value in ((INPUTS[1], scale), (INPUTS[2], min_score)):
        if value.shape != (n, 1):
            raise RequestError(f"input {spec.name}: found shape {list(value.shape)}, expected [{n}, 1] (one per frame)")
    lo, hi = SCALE_RANGE
    bad = [float(s) for s in scale.reshape(-1) if not lo <= float(s) <= hi]
    if bad:
        raise RequestError(f"input scale: found {bad[0]}, expected {lo} to {hi}")
    bad = [float(s) for s in min_score.reshape(-1) if not float(s) <= 1.0]  # also NaN
    if bad:
        raise RequestError(f"input min_score: found {bad[0]}, expected at most 1 (below 0: the model's own)")


def pack_words(words: list[list[SpottedWord]]) -> dict[str, np.ndarray]:
    """Each frame's words -> the OUTPUTS tensors (padded to the largest count, at least 1)."""
    n, k = len(words), max(1, max((len(w) for w in words), default=0))
    out = {"count": np.array([[len(w)] for w in words], np.int32),
           "quads": np.zeros((n, k, 4, 2), np.float32),
           "texts": np.full((n, k), b"", dtype=object),
           "scores": np.zeros((n, k), np.float32),
           "det_scores": np.zeros((n, k), np.float32),
           "rec_scores": np.zeros((n, k), np.float32)}
    for i, frame_words in enumerate(words):
        for j, w in enumerate(frame_words):
            out["quads"][i, j] = w.quad
            out["texts"][i, j] = w.text.encode("utf-8")
            out["scores"][i, j], out["det_scores"][i, j], out["rec_scores"][i, j] = w.score, w.det_score, w.rec_score
    return out


def unpack_words(out: dict[str, np.ndarray]) -> list[list[SpottedWord]]:
    """The OUTPUTS tensors of one response -> each frame's words (the inverse of pack_words)."""
    frames = []
    for i, count in enumerate(np.asarray(out["count"]).reshape(-1)):
        frame = []
        for j in range(int(count)):
            text = out["texts"][i, j]
            frame.append(SpottedWord(text.decode("utf-8") if isinstance(text, bytes) else str(text),
                                     float(out["scores"][i, j]), np.array(out["quads"][i, j], np.float32),
                                     float(out["det_scores"][i, j]), float(out["rec_scores"][i, j])))
        frames.append(frame)
    return frames


__all__ = ["MODEL_NAME", "MODEL_DEFAULT_SCORE", "INPUTS", "OUTPUTS", "TensorSpec", "RequestError", "check_request",
           "pack_words", "unpack_words"]
