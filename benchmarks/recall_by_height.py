"""Which words a model finds and reads, by word height: an ICDAR 2015 folder, no word-score threshold.

    .venv/bin/python benchmarks/recall_by_height.py ../shared/data/ic15_dev [--model W] [--scale 1 1.5]

For every legible ground-truth word (not ``###``): found = some word read by the model overlaps it
with IoU > 0.5 (the best overlapping one), read right = that word's text equals the ground truth's
letters and digits, case-insensitively. Heights are the quad's (mean of its two sides) in the image's
pixels. A diagnostic for the model card, not the ICDAR protocol (``spotrt eval`` is that).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from tqdm import tqdm

from spotrt.api import check_scale, load_spotter
from spotrt.errors import SpotrtError
from spotrt.eval.icdar15 import polygon_iou
from spotrt.eval.runner import icdar_dataset
from spotrt.imageops import read_image

BINS = (0, 12, 16, 20, 28, 40, 10_000)


def quad_height(q: np.ndarray) -> float:
    return float(np.linalg.norm(q[3] - q[0]) + np.linalg.norm(q[2] - q[1])) / 2


def tally(spotter, images, gt, progress: bool = True) -> np.ndarray:
    """(3, bins): words, found, read right."""
    t = np.zeros((3, len(BINS) - 1))
    for p in tqdm(images, desc="spot", unit="img", disable=not progress):
        words = spotter.spot(read_image(p))
        for g in gt[p.stem]:
            if g.dont_care:
                continue
            b = int(np.searchsorted(BINS, quad_height(g.quad), side="right")) - 1
            t[0, b] += 1
            ious = [polygon_iou(w.quad, g.quad) for w in words]
            if ious and max(ious) > 0.5:
                t[1, b] += 1
                best = words[int(np.argmax(ious))]
                t[2, b] += best.text.lower() == "".join(c for c in g.text.lower() if c.isalnum())
    return t


def table(rows: dict[float, np.ndarray]) -> list[str]:
    """Markdown rows: per height bin, found and read-right shares at each scale."""
    scales = list(rows)
    head = " | ".join(f"found {s:g} | read {s:g}" for s in scales)
    out = [f"| height (px) | words | {head} |"]
    first = rows[scales[0]]
    for i in range(len(BINS) - 1):
        label = f"{BINS[i]}-{BINS[i + 1]}" if BINS[i + 1] < 10_000 else f">= {BINS[i]}"
        cells = " | ".join(f"{t[1, i] / max(t[0, i], 1):.2f} | {t[2, i] / max(t[0, i], 1):.2f}" for t in rows.values())
        out.append(f"| {label} | {int(first[0, i])} | {cells} |")
    cells = " | ".join(f"{t[1].sum() / max(t[0].sum(), 1):.2f} | {t[2].sum() / max(t[0].sum(), 1):.2f}"
                       for t in rows.values())
    out.append(f"| all | {int(first[0].sum())} | {cells} |")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data", help="ICDAR 2015 folder (images/, gt/)")
    p.add_argument("--model", default=None)
    p.add_argument("--scale", type=float, nargs="+", default=[1.0])
    a = p.parse_args(argv)
    try:
        for s in a.scale:
            check_scale(s)  # all of them before the first (minutes-long) pass
        images, gt = icdar_dataset(a.data)
        rows = {s: tally(load_spotter(a.model, scale=s, min_score=0), images, gt) for s in a.scale}
    except SpotrtError as exc:
        print(f"recall_by_height: error: {exc}", file=sys.stderr)
        return 1
    print("\n".join(table(rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
