"""How the served spotter answers requests (the tensors: spotrt.formats.triton). No torch, no Triton.

The server preprocesses, runs and postprocesses exactly as `spotrt run` does locally (same
letterbox, same graph or engine, same thresholds and NMS), so a frame gets the same words from
either. Shared by `spotrt serve` (PyTriton) and the stock repository's model.py.
"""

from __future__ import annotations

import numpy as np

from ..formats.triton import RequestError, check_request, pack_words
from ..postprocess import SpottedWord, words_of


def _cfg_for(cfg, min_score: float):
    return cfg if min_score < 0 else cfg.replace(word_score_thresh=float(min_score))


def spot_frames(runner, frames, scales, min_scores) -> list[list[SpottedWord]]:
    """Words in each frame through the runner's shared path (spotrt/runner.py: prepare -> stack ->
    run -> words, the local pipeline's steps), at each frame's scale and word threshold; frames go
    `runner.batch` to a network call (consecutive frames of one prepared size)."""
    prepped = []
    for frame, s in zip(frames, scales):
        runner.scale = float(s)
        prepped.append(runner.prepare(frame))
    cfgs = [_cfg_for(runner.cfg, float(m)) for m in min_scores]
    words: list[list[SpottedWord]] = []
    start = 0
    while start < len(prepped):
        stop = start + 1
        while stop < len(prepped) and stop - start < runner.batch and prepped[stop][0].shape == prepped[start][0].shape:
            stop += 1
        out = runner.run(runner.stack([x for x, _ in prepped[start:stop]]))
        for i in range(start, stop):
            o = {k: v[i - start] for k, v in out.items()}
            words.append(words_of(cfgs[i], o["boxes"], o["scores"], o["tokens"], o["token_probs"], int(o["count"]),
                                  prepped[i][1]))
        start = stop
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
