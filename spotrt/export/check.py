"""`spotrt check`: torch, the plugin graph and the portable graph on the same inputs, compared.

Per output: the largest absolute difference against torch (valid slots of both), the share of
images with the same valid count, box agreement (valid boxes within 1 px) and transcription
agreement (same token sequence) in %. Plain NumPy: the comparison is slot by slot.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from ..formats.onnx_graph import KIND_PLUGIN, KIND_PORTABLE

OUTPUTS = ("boxes", "scores", "tokens", "token_probs", "count")


def _inputs(cfg, size, images=None, synthetic: int = 0, seed: int = 1):
    from ..imageops import collect_images, preprocess, read_image

    batch = []
    if images:
        for p in collect_images([images]):
            x, _ = preprocess(read_image(p), cfg.mean, cfg.std, size, multiple=32, fixed=True)
            batch.append(x)
    return batch


def compare(weights=None, images=None, synthetic: int = 0, input_size=None, seed: int = 1, threads=None) -> dict:
    import torch

    from ..formats.onnx_graph import load_graph
    from ..model.spotter import Spotter
    from ..model.weights import load_weights
    from ..plugins.ort_session import cpu_session
    from .onnx_export import export_model

    model = weights if isinstance(weights, Spotter) else load_weights(weights, "cpu")
    cfg = model.cfg
    size = tuple(input_size or (cfg.input_height, cfg.input_width))
    xs = []
    if images:
        xs = _inputs(cfg, size, images)
    rng = np.random.default_rng(seed)
    for _ in range(max(0, synthetic)):
        xs.append(_synthetic_input(cfg, size, rng))
    if not xs:
        from ..errors import SpotrtError

        raise SpotrtError("check: found no inputs, expected --images DIR or --synthetic N (N >= 1)")
    with tempfile.TemporaryDirectory() as tmp:
        paths = export_model(model, Path(tmp) / "model.onnx", input_size=size, batch=1,
                             kinds=(KIND_PLUGIN, KIND_PORTABLE))
        sessions = {k: cpu_session(load_graph(paths[k])[0], paths[k], threads) for k in paths}
        stats = {k: {"boxes": 0.0, "scores": 0.0, "token_probs": 0.0, "count_equal": 0, "boxes_1px": [0, 0],
                     "text_equal": [0, 0]} for k in sessions}
        for x in xs:
            ref = model(torch.from_numpy(x)[None])
            r = {"boxes": ref.boxes.numpy()[0], "scores": ref.scores.numpy()[0], "tokens": ref.tokens.numpy()[0],
                 "token_probs": ref.token_probs.numpy()[0], "count": int(ref.count[0])}
            for k, session in sessions.items():
                o = {name: v[0] for name, v in zip(OUTPUTS, session.run(list(OUTPUTS), {"image": x[None]}))}
                s = stats[k]
                n = min(r["count"], int(o["count"]))
                s["count_equal"] += int(o["count"]) == r["count"]
                for name in ("boxes", "scores", "token_probs"):
                    if n:
                        s[name] = max(s[name], float(np.abs(o[name][:n] - r[name][:n]).max()))
                s["boxes_1px"][0] += int((np.abs(o["boxes"][:n] - r["boxes"][:n]).max(axis=1) <= 1.0).sum())
                s["text_equal"][0] += int((o["tokens"][:n] == r["tokens"][:n]).all(axis=1).sum())
                total = max(r["count"], int(o["count"]))
                s["boxes_1px"][1] += total
                s["text_equal"][1] += total
    out = {"inputs": len(xs)}
    for k, s in stats.items():
        out[k] = {"max_abs_diff": {n: s[n] for n in ("boxes", "scores", "token_probs")},
                  "count_equal_pct": 100.0 * s["count_equal"] / len(xs),
                  "boxes_within_1px_pct": 100.0 * s["boxes_1px"][0] / max(1, s["boxes_1px"][1]),
                  "transcriptions_equal_pct": 100.0 * s["text_equal"][0] / max(1, s["text_equal"][1]),
                  "regions": s["text_equal"][1]}
    return out


def _synthetic_input(cfg, size, rng):
    """A synthetic scene (spotrt.data.synth when it offers a renderer, else random text-like strokes)."""
    import cv2

    from ..imageops import preprocess

    h, w = size
    img = np.full((h, w, 3), rng.integers(0, 256, 3), np.uint8)
    for _ in range(int(rng.integers(3, 9))):
        word = "".join(rng.choice(list(cfg.charset), int(rng.integers(2, 8))))
        org = (int(rng.integers(0, max(1, w - 100))), int(rng.integers(20, max(21, h - 5))))
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        cv2.putText(img, word, org, cv2.FONT_HERSHEY_SIMPLEX, float(rng.uniform(0.5, 1.6)), color, 2, cv2.LINE_AA)
    x, _ = preprocess(img, cfg.mean, cfg.std, size, multiple=32, fixed=True)
    return x


def format_report(res: dict) -> str:
    lines = [f"{res['inputs']} inputs; each graph against torch Spotter.forward",
             "| graph    | max |d boxes| px | max |d scores| | max |d probs| | count equal | boxes <= 1 px | text equal |",
             "|----------|------------------|----------------|---------------|-------------|---------------|------------|"]
    for k in (KIND_PLUGIN, KIND_PORTABLE):
        r = res[k]
        d = r["max_abs_diff"]
        lines.append(f"| {k:<8} | {d['boxes']:16.2e} | {d['scores']:14.2e} | {d['token_probs']:13.2e} | "
                     f"{r['count_equal_pct']:10.1f}% | {r['boxes_within_1px_pct']:12.1f}% | {r['transcriptions_equal_pct']:9.1f}% |")
    return "\n".join(lines)
