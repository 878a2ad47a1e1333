"""How the served spotter answers requests (the tensors: spotrt.formats.triton). No torch, no Triton.

The server preprocesses, runs and postprocesses exactly as `spotrt run` does locally (same
letterbox, same graph or engine, same thresholds and NMS), so a frame gets the same words from
either. Shared by `spotrt serve` (PyTriton) and the stock repository's model.py.
"""

from __future__ import annotations

import numpy as np

from ..formats.triton import RequestError, check_request, pack_words
from ..imageops import preprocess
from ..postprocess import SpottedWord, note_capped_scale_once, words_of


def _cfg_for(cfg, min_score: float):
    return cfg if min_score < 0 else cfg.replace(word_score_thresh=float(min_score))


def spot_frames(spotter, frames, scales, min_scores) -> list[list[SpottedWord]]:
    """Words in each frame, through the spotter's fixed batch (`run`) when it has one, else `spot`.

    The same steps as the local pipeline (spotrt.runtime.pipeline): letterbox with `preprocess`,
    the graph or engine on a zero-padded batch of its size, `words_of` with the frame's threshold.
    """
    cfgs = [_cfg_for(spotter.cfg, float(m)) for m in min_scores]
    if not (callable(getattr(spotter, "run", None)) and hasattr(spotter, "input_size") and hasattr(spotter, "batch")):
        out = []
        for frame, s, cfg in zip(frames, scales, cfgs):  # torch: one frame per call, it preprocesses inside
            spotter.scale, keep = float(s), spotter.cfg
            spotter.cfg = cfg
            try:
                out.append(spotter.spot(frame))
            finally:
                spotter.cfg = keep
        return out
    prepped = []
    for frame, s in zip(frames, scales):
        x, lb = preprocess(frame, spotter.cfg.mean, spotter.cfg.std, spotter.input_size, multiple=32, fixed=True,
                           scale=float(s))
        note_capped_scale_once(spotter, float(s), lb, spotter.input_size)
        prepped.append((x, lb))
    words: list[list[SpottedWord]] = []
    n = int(spotter.batch)
    for start in range(0, len(prepped), n):
        part = prepped[start:start + n]
        x = np.zeros((n, *part[0][0].shape), dtype=np.float32)
        for i, (xi, _) in enumerate(part):
            x[i] = xi
        raw = spotter.run(x)
        for i, (_, lb) in enumerate(part):
            words.append(words_of(cfgs[start + i], raw["boxes"][i], raw["scores"][i], raw["tokens"][i],
                                  raw["token_probs"][i], int(raw["count"][i]), lb))
    return words


def answer(spotter, frames: np.ndarray, scale: np.ndarray, min_score: np.ndarray) -> dict[str, np.ndarray]:
    """One request's inputs -> its outputs; RequestError (one line) for inputs it cannot answer."""
    return answer_requests(spotter, [(frames, scale, min_score)])[0]


def answer_requests(spotter, requests) -> list:
    """Several requests' (frames, scale, min_score) -> for each, its outputs or its RequestError.

    The frames of every valid request go through the spotter together, so a graph or engine with a
    batch above 1 is filled across requests (what Triton's dynamic batcher gathered).
    """
    results: list = []
    frames, scales, scores, sizes = [], [], [], []
    for f, s, m in requests:
        try:
            check_request(f, s, m)
        except RequestError as exc:
            results.append(exc)
            continue
        results.append(None)
        frames.extend(f)
        scales.extend(s.reshape(-1))
        scores.extend(m.reshape(-1))
        sizes.append(len(f))
    words = spot_frames(spotter, frames, scales, scores) if frames else []
    start, k = 0, 0
    for i, r in enumerate(results):
        if r is None:
            results[i] = pack_words(words[start:start + sizes[k]])
            start, k = start + sizes[k], k + 1
    return results


__all__ = ["spot_frames", "answer", "answer_requests"]
