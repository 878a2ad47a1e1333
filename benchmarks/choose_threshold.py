"""Choose a model's word-score threshold on validation scenes, never on a test set.

    python benchmarks/choose_threshold.py WEIGHTS [--images 200] [--levels 0,1,2] [--write]
    python benchmarks/choose_threshold.py WEIGHTS --data out/ic15_val --levels none [--write]

`--data DIR`: also (or, with `--levels none`, only) an ICDAR 2015 folder of real validation scenes,
such as the ic15_train validation split written by `benchmarks/ic15_val.py`; ic15_dev is refused.

Spots `--images` scenes of each level from the validation stream (`--seed`, 2 by default; seed 1
is the held-out set `spotrt eval --synthetic` reports, so it is refused), keeping every word read
(threshold 0), then scores each threshold of the grid by the ICDAR 2015 end-to-end protocol. The
threshold with the best mean end-to-end hmean over the levels wins (the lowest on a tie). A word's
score is detection probability x mean character probability, so the threshold drops weak readings;
filtering after the fact equals running with it, because a dropped word could only have suppressed
lower-scored ones in NMS. `--write` stores the winner in the weights file's config
(`word_score_thresh`), which every backend and every exported graph then uses.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
from tqdm import tqdm

from spotrt.api import load_spotter
from spotrt.errors import SpotrtError
from spotrt.eval.icdar15 import GTWord
from spotrt.eval.runner import icdar_dataset, score_words, spot_all, synthetic_set
from spotrt.fileio import write_bytes_atomic
from spotrt.model.weights import config_of, set_config

GRID = [round(t, 2) for t in np.arange(0.0, 0.96, 0.05)]


def spot_level(spotter, level: int, n: int, seed: int):
    gt, words = {}, {}
    for key, scene in tqdm(synthetic_set(n, level, seed, 256, 512), total=n, desc=f"validation L{level}", unit="img"):
        gt[key] = [GTWord(w.quad, w.text) for w in scene.words]
        words[key] = spotter.spot(scene.image)
    return gt, words


def sweep(gt, words, grid) -> list[dict]:
    rows = []
    for t in grid:
        r = score_words(gt, {k: [w for w in ws if w.score >= t] for k, ws in words.items()})
        rows.append({"threshold": t, "detection": r["detection"], "e2e": r["e2e_none"]})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("weights")
    ap.add_argument("--images", type=int, default=200, help="scenes per level (default 200)")
    ap.add_argument("--levels", default="0,1,2", help="synthetic levels, or 'none'")
    ap.add_argument("--data", default=None, metavar="DIR", help="an ICDAR 2015 folder of real validation scenes")
    ap.add_argument("--seed", type=int, default=2, help="validation stream (default 2; 1 is the test set)")
    ap.add_argument("--json", help="write every level's sweep here")
    ap.add_argument("--write", action="store_true", help="store the chosen threshold in WEIGHTS")
    a = ap.parse_args(argv)
    try:
        if a.seed == 1:
            raise SpotrtError("--seed: found 1, expected another stream (seed 1 is the held-out evaluation set)")
        levels = [] if a.levels == "none" else [int(v) for v in a.levels.split(",")]
        if (not levels and not a.data) or any(lv not in (0, 1, 2) for lv in levels) or a.images < 1:
            raise SpotrtError(f"--levels/--images: found {a.levels!r}/{a.images}, expected levels in 0..2 "
                              "(or 'none' with --data) and >= 1 image")
        if a.data and "ic15_dev" in str(a.data):
            raise SpotrtError(f"--data: found {a.data}, expected a validation set (ic15_dev is for measuring only)")
        before = config_of(a.weights).word_score_thresh
        spotter = load_spotter(a.weights, "torch", min_score=0.0)
        sweeps = {f"L{lv}": sweep(*spot_level(spotter, lv, a.images, a.seed), GRID) for lv in levels}
        if a.data:
            images, gt = icdar_dataset(a.data)
            sweeps["real"] = sweep(gt, spot_all(spotter, images), GRID)
    except SpotrtError as exc:
        print(f"choose_threshold: error: {exc}", file=sys.stderr)
        return 1
    sets = list(sweeps)
    print("| threshold | " + " | ".join(f"{k} det H / e2e H" for k in sets) + " | mean e2e |")
    print("|---|" + "---|" * (len(sets) + 1))
    means = []
    for i, t in enumerate(GRID):
        cells = [f"{sweeps[k][i]['detection']['hmean']:.3f} / {sweeps[k][i]['e2e']['hmean']:.3f}" for k in sets]
        means.append(float(np.mean([sweeps[k][i]["e2e"]["hmean"] for k in sets])))
        print(f"| {t:.2f} | " + " | ".join(cells) + f" | {means[-1]:.4f} |")
    best = GRID[int(np.argmax(means))]  # argmax: the first (lowest) threshold on a tie
    print(f"chosen word_score_thresh {best:.2f} (mean e2e {max(means):.4f}; at the model's current "
          f"{before:.2f}: see its row)")
    if a.json:
        data = {"seed": a.seed, "images": a.images, "data": a.data, "chosen": best, "sweeps": sweeps}
        write_bytes_atomic(a.json, (json.dumps(data, indent=1) + "\n").encode())
    if a.write:
        set_config(a.weights, word_score_thresh=best)
        print(f"wrote word_score_thresh {best:.2f} into {a.weights}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
