"""Two models on the same validation scenes: end-to-end hmean of each, their difference with a
paired bootstrap interval over images, and the ground-truth words each reads that the other misses.

    python benchmarks/compare_val.py A.safetensors B.safetensors --data out/ic15_val [--rounds 2000]
                                     [--threshold-a T] [--threshold-b T] [--threads N] [--seed 0] [--json FILE]

100 validation images hold about 450 words, so two checkpoints a point or two apart may differ by
chance; this says how much. Both models spot every image once (torch); each keeps its words at its
stored threshold (`word_score_thresh`, or `--threshold-a/-b`), and the ICDAR 2015 end-to-end
protocol (no lexicon) scores each image. The bootstrap draws the images with replacement `--rounds`
times, the same draw for both models, and recomputes both global hmeans from the drawn images'
counts: the 2.5 and 97.5 percentiles of B - A and the share of draws where B is ahead. A threshold
chosen on these same images (choose_threshold.py) favours its model a little; the interval does not
count that. ic15_dev is refused: it is for measuring only.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from spotrt.api import load_spotter
from spotrt.errors import SpotrtError
from spotrt.eval.icdar15 import DetWord, evaluate
from spotrt.eval.runner import icdar_dataset, spot_all
from spotrt.fileio import write_bytes_atomic
from spotrt.model.weights import config_of


def hmean(matched, num_gt, num_det) -> float:
    """The protocol's global hmean from summed counts (0 where nothing is there to divide)."""
    recall = matched / num_gt if num_gt else 0.0
    precision = matched / num_det if num_det else 0.0
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def paired_bootstrap(counts_a: np.ndarray, counts_b: np.ndarray, rounds: int, seed: int = 0) -> dict:
    """`counts_*`: (images, 3) per-image (matched, num_gt, num_det) of each model, rows in the same
    image order -> hmeans, B - A, its 95 % interval and the share of draws where B > A."""
    counts_a, counts_b = np.asarray(counts_a, np.int64), np.asarray(counts_b, np.int64)
    if counts_a.shape != counts_b.shape or counts_a.ndim != 2 or counts_a.shape[1] != 3 or not len(counts_a):
        raise ValueError(f"counts: found shapes {counts_a.shape} and {counts_b.shape}, expected two (N, 3) with N >= 1")
    if rounds < 1:
        raise ValueError(f"rounds: found {rounds}, expected >= 1")
    rng = np.random.default_rng(seed)
    n = len(counts_a)
    draws = rng.integers(0, n, size=(rounds, n))
    weights = np.stack([np.bincount(d, minlength=n) for d in draws])      # (rounds, n) image multiplicities
    sa, sb = weights @ counts_a, weights @ counts_b                        # (rounds, 3) summed counts
    diffs = np.array([hmean(*b) - hmean(*a) for a, b in zip(sa, sb)])
    ha, hb = hmean(*counts_a.sum(0)), hmean(*counts_b.sum(0))
    low, high = np.percentile(diffs, [2.5, 97.5])
    return {"a": ha, "b": hb, "difference": hb - ha, "interval_95": [float(low), float(high)],
            "b_ahead": float(np.mean(diffs > 0)), "rounds": rounds, "images": n}


def _per_image(gt, words, threshold) -> tuple[np.ndarray, dict]:
    dets = {k: [DetWord(w.quad, w.text, w.score) for w in ws if w.score >= threshold] for k, ws in words.items()}
    r = evaluate(gt, dets, task="e2e")
    keys = sorted(gt)
    counts = np.array([[r["per_image"][k]["matched"], r["per_image"][k]["num_gt"], r["per_image"][k]["num_det"]]
                       for k in keys])
    read = {(k, p["gt"]) for k in keys for p in r["per_image"][k]["pairs"] if p["correct"]}
    return counts, read


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("a", help="weights A (the reference, e.g. the shipped model)")
    ap.add_argument("b", help="weights B (the candidate)")
    ap.add_argument("--data", default="out/ic15_val", help="ICDAR 2015 folder of validation scenes "
                                                           "(default out/ic15_val, from benchmarks/ic15_val.py)")
    ap.add_argument("--threshold-a", type=float, default=None, help="A's word-score threshold (default: stored)")
    ap.add_argument("--threshold-b", type=float, default=None, help="B's word-score threshold (default: stored)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads (default: torch's; 1 beside a training run, which has the cores)")
    ap.add_argument("--rounds", type=int, default=2000, help="bootstrap draws (default 2000)")
    ap.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    ap.add_argument("--json", default=None, help="also write the result here")
    a = ap.parse_args(argv)
    try:
        if "ic15_dev" in str(a.data):
            raise SpotrtError(f"--data: found {a.data}, expected a validation set (ic15_dev is for measuring only)")
        if a.rounds < 1 or (a.threads is not None and a.threads < 1):
            raise SpotrtError(f"--rounds/--threads: found {a.rounds}/{a.threads}, expected >= 1")
        for name, t in (("--threshold-a", a.threshold_a), ("--threshold-b", a.threshold_b)):
            if t is not None and not 0.0 <= t <= 1.0:
                raise SpotrtError(f"{name}: found {t}, expected a word score in 0..1")
        images, gt = icdar_dataset(a.data)  # a bad folder fails before a model loads
        thresholds = [config_of(a.a).word_score_thresh if a.threshold_a is None else a.threshold_a,
                      config_of(a.b).word_score_thresh if a.threshold_b is None else a.threshold_b]
        counts, read = [], []
        for weights, t in zip((a.a, a.b), thresholds):
            c, r = _per_image(gt, spot_all(load_spotter(weights, "torch", threads=a.threads, min_score=0.0), images), t)
            counts.append(c)
            read.append(r)
    except SpotrtError as exc:
        print(f"compare_val: error: {exc}", file=sys.stderr)
        return 1
    result = paired_bootstrap(counts[0], counts[1], a.rounds, a.seed)
    result.update({"data": str(a.data), "thresholds": thresholds, "weights": [a.a, a.b],
                   "words": int(counts[0][:, 1].sum()), "read_by_both": len(read[0] & read[1]),
                   "read_by_a_only": len(read[0] - read[1]), "read_by_b_only": len(read[1] - read[0]),
                   "reported": [int(c[:, 2].sum()) for c in counts]})
    low, high = result["interval_95"]
    print(f"{len(images)} images, {result['words']} words ({a.data}); end-to-end hmean, no lexicon:")
    print(f"  A {a.a} (threshold {thresholds[0]:.2f}): {result['a']:.3f}, reads {len(read[0])}, "
          f"reports {result['reported'][0]}")
    print(f"  B {a.b} (threshold {thresholds[1]:.2f}): {result['b']:.3f}, reads {len(read[1])}, "
          f"reports {result['reported'][1]}")
    print(f"  B - A {result['difference']:+.3f}, 95 % paired bootstrap interval [{low:+.3f}, {high:+.3f}] "
          f"({a.rounds} draws), B ahead in {100 * result['b_ahead']:.1f} % of them")
    print(f"  words read by both {result['read_by_both']}, by A only {result['read_by_a_only']}, "
          f"by B only {result['read_by_b_only']}")
    if a.json:
        write_bytes_atomic(a.json, (json.dumps(result, indent=1) + "\n").encode(), "comparison")
    return 0


if __name__ == "__main__":
    sys.exit(main())
