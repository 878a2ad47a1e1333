"""Which words a model finds and reads, by word height: an ICDAR 2015 folder, no word-score threshold.

    .venv/bin/python benchmarks/recall_by_height.py ../shared/data/ic15_dev [--model W] [--scale 1 1.5]
    .venv/bin/python benchmarks/recall_by_height.py --synthetic-small 100 [--model W] [--scale 1 1.5]

``--synthetic-small N``: instead of a folder, N synthetic level-2 scenes (256x512) whose words are all
drawn 8-24 px tall (``SynthGenerator(augment=True, small_text=1)``, seed stream 3: neither the
evaluation's 1 nor the validation's 2), to compare real small text with the synthetic small text
``spotrt train --small-text`` trains on.

For every legible ground-truth word (not ``###``): found = some word read by the model overlaps it
with IoU > 0.5 (the best overlapping one), read right = that word's text equals the ground truth's
letters and digits, case-insensitively (``normalize_text``, as ``recognition_accuracy``). Heights are the quad's (mean of its two sides) in the image's
pixels. A diagnostic for the model card, not the ICDAR protocol (``spotrt eval`` is that).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from tqdm import tqdm

from spotrt.api import check_scale, load_spotter
from spotrt.errors import SpotrtError
from spotrt.eval.icdar15 import GTWord, polygon_iou
from spotrt.data.charset import normalize_text
from spotrt.eval.runner import icdar_dataset, synthetic_set
from spotrt.imageops import read_image

BINS = (0, 12, 16, 20, 28, 40, 10_000)


def quad_height(q: np.ndarray) -> float:
    return float(np.linalg.norm(q[3] - q[0]) + np.linalg.norm(q[2] - q[1])) / 2


def folder_samples(images, gt):
    """(image, ground-truth words) of an ICDAR 2015 folder (icdar_dataset's), read one at a time."""
    return len(images), ((read_image(p), gt[p.stem]) for p in images)


def small_text_samples(n: int, height: int = 256, width: int = 512):
    """(image, ground-truth words) of n level-2 synthetic scenes with all words 8-24 px tall."""
    from spotrt.data.synth import SynthGenerator

    gen = SynthGenerator(augment=True, small_text=1.0)
    return n, ((sc.image, [GTWord(w.quad, w.text) for w in sc.words])
               for _, sc in synthetic_set(n, 2, 3, height, width, generator=gen))


def tally(spotter, samples, total: int | None = None, progress: bool = True) -> np.ndarray:
    """(3, bins): words, found, read right, over (image, ground-truth words) samples."""
    t = np.zeros((3, len(BINS) - 1))
    for image, gt_words in tqdm(samples, total=total, desc="spot", unit="img", disable=not progress):
        words = spotter.spot(image)
        for g in gt_words:
            if g.dont_care:
                continue
            b = int(np.searchsorted(BINS, quad_height(g.quad), side="right")) - 1
            t[0, b] += 1
            ious = [polygon_iou(w.quad, g.quad) for w in words]
            if ious and max(ious) > 0.5:
                t[1, b] += 1
                best = words[int(np.argmax(ious))]
                t[2, b] += normalize_text(best.text) == normalize_text(g.text)
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
    p.add_argument("data", nargs="?", help="ICDAR 2015 folder (images/, gt/)")
    p.add_argument("--synthetic-small", type=int, metavar="N", help="N synthetic scenes of small words instead")
    p.add_argument("--model", default=None)
    p.add_argument("--scale", type=float, nargs="+", default=[1.0])
    a = p.parse_args(argv)
    try:
        if (a.data is None) == (a.synthetic_small is None):
            raise SpotrtError(f"input: found {'both a folder and' if a.data else 'neither a folder nor'} "
                              "--synthetic-small, expected one of them")
        if a.synthetic_small is not None and a.synthetic_small < 1:
            raise SpotrtError(f"--synthetic-small: found {a.synthetic_small}, expected at least 1 scene")
        for s in a.scale:
            check_scale(s)  # all of them before the first (minutes-long) pass
        dataset = icdar_dataset(a.data) if a.data is not None else None  # a bad folder fails before any load
        rows = {}
        for s in a.scale:
            total, samples = folder_samples(*dataset) if dataset else small_text_samples(a.synthetic_small)
            rows[s] = tally(load_spotter(a.model, scale=s, min_score=0), samples, total)
    except SpotrtError as exc:
        print(f"recall_by_height: error: {exc}", file=sys.stderr)
        return 1
    print("\n".join(table(rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
