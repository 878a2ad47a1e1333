"""`spotrt check`: torch, the plugin graph and the portable graph on the same inputs, compared.

Run the way `polygraphy run` runs: Polygraphy's Comparator feeds the same inputs to every runner
(Polygraphy's OnnxrtRunner for each graph's ONNX Runtime session, and a small Polygraphy runner
around Spotter.forward on the CPU: its PytRunner moves inputs to CUDA) and collects their outputs.
The comparison is spotrt's own, slot by slot, since only the valid proposal slots mean anything:
per output, the largest absolute difference against torch (valid slots of both), the share of
images with the same valid count, box agreement (valid boxes within 1 px) and transcription
agreement (same token sequence) in %.
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


REFERENCE = "torch"


def _torch_runner(model, size):
    """A Polygraphy runner for Spotter.forward on the CPU, one (1,3,H,W) float32 image per call."""
    import time
    from collections import OrderedDict

    import torch
    from polygraphy.backend.base import BaseRunner
    from polygraphy.common import TensorMetadata

    class TorchReference(BaseRunner):
        def __init__(self) -> None:
            super().__init__(name=REFERENCE)

        def get_input_metadata_impl(self):
            return TensorMetadata().add("image", np.float32, (1, 3, *size))

        def infer_impl(self, feed_dict):
            start = time.perf_counter()
            with torch.no_grad():
                out = model(torch.from_numpy(feed_dict["image"]))
            self.inference_time = time.perf_counter() - start
            return OrderedDict((name, getattr(out, name).numpy()) for name in OUTPUTS)

    return TorchReference()


def compare(weights=None, images=None, synthetic: int = 0, input_size=None, seed: int = 1, threads=None) -> dict:
    from polygraphy.backend.onnxrt import OnnxrtRunner
    from polygraphy.comparator import Comparator
    from polygraphy.logger import G_LOGGER

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
        runners = [_torch_runner(model, size)]
        runners += [OnnxrtRunner(cpu_session(load_graph(paths[k])[0], paths[k], threads), name=k) for k in paths]
        with G_LOGGER.verbosity(G_LOGGER.WARNING):  # spotrt check prints its own table
            results = Comparator.run(runners, data_loader=[{"image": x[None]} for x in xs])
    return summarize(results)


def summarize(results) -> dict:
    """spotrt's slot-by-slot comparison of Polygraphy RunResults against the `torch` runner's."""
    by_runner = dict(results.items())
    ref_iters = by_runner.pop(REFERENCE)
    out = {"inputs": len(ref_iters)}
    for k, iters in by_runner.items():
        s = {"boxes": 0.0, "scores": 0.0, "token_probs": 0.0, "count_equal": 0, "boxes_1px": [0, 0],
             "text_equal": [0, 0]}
        for ref_it, it in zip(ref_iters, iters):
            r = {name: ref_it[name][0] for name in OUTPUTS}
            o = {name: it[name][0] for name in OUTPUTS}
            rc, oc = int(r["count"]), int(o["count"])
            n = min(rc, oc)
            s["count_equal"] += oc == rc
            for name in ("boxes", "scores", "token_probs"):
                if n:
                    s[name] = max(s[name], float(np.abs(o[name][:n] - r[name][:n]).max()))
            s["boxes_1px"][0] += int((np.abs(o["boxes"][:n] - r["boxes"][:n]).max(axis=1) <= 1.0).sum())
            s["text_equal"][0] += int((o["tokens"][:n] == r["tokens"][:n]).all(axis=1).sum())
            s["boxes_1px"][1] += max(rc, oc)
            s["text_equal"][1] += max(rc, oc)
        out[k] = {"max_abs_diff": {n: s[n] for n in ("boxes", "scores", "token_probs")},
                  "count_equal_pct": 100.0 * s["count_equal"] / max(1, len(iters)),
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
