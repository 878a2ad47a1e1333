"""Scoring a spotter: ICDAR 2015 (detection, end-to-end, word spotting, lexicons), recognition on
word crops cut from the ground truth, and held-out synthetic scenes."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from ..errors import SpotrtError
from ..imageops import read_image
from .icdar15 import DetWord, GTWord, evaluate, read_gt_dir, read_submission_dir, write_submission_dir
from .lexicon import apply_lexicon, lexicon_for

LEXICONS = ("none", "generic", "weak", "strong")


def _summary(r: dict) -> dict:
    return {k: r[k] for k in ("precision", "recall", "hmean", "matched", "num_gt", "num_det")}


def score_submission(gt_dir, res_dir) -> dict:
    """Detection, end-to-end and word spotting scores of ICDAR 2015 result files (res_*.txt)."""
    try:
        gt, det = read_gt_dir(gt_dir), read_submission_dir(res_dir)
        return {t: _summary(evaluate(gt, det, task=t)) for t in ("detection", "e2e", "spotting")}
    except ValueError as exc:
        raise SpotrtError(str(exc)) from None


def icdar_dataset(data_dir) -> tuple[list[Path], dict[str, list[GTWord]]]:
    """Images and ground truth of an ICDAR 2015 style folder (images/img_N.*, gt/gt_img_N.txt)."""
    root = Path(data_dir)
    img_dir, gt_dir = root / "images", root / "gt"
    if not img_dir.is_dir() or not gt_dir.is_dir():
        raise SpotrtError(f"dataset {root}: found no images/ and gt/ folders, expected an ICDAR 2015 layout")
    try:
        gt = read_gt_dir(gt_dir)
    except ValueError as exc:
        raise SpotrtError(str(exc)) from None
    images = sorted((p for p in img_dir.iterdir() if p.stem in gt), key=lambda p: int(p.stem.split("_")[-1]))
    missing = sorted(set(gt) - {p.stem for p in images})
    if missing:
        raise SpotrtError(f"dataset {root}: ground truth for {missing[0]} has no image ({len(missing)} missing)")
    return images, gt


def spot_all(spotter, images, progress=True) -> dict[str, list]:
    return {p.stem: spotter.spot(read_image(p)) for p in tqdm(images, desc="spot", unit="img", disable=not progress)}


def score_words(gt, words_by_image, lexicon_dir=None, lexicons=("none",), rrc_out=None) -> dict:
    """Detection once, then end-to-end and word spotting for each lexicon."""
    results: dict = {}
    dets = {k: [DetWord(w.quad, w.text, w.score) for w in ws] for k, ws in words_by_image.items()}
    results["detection"] = _summary(evaluate(gt, dets, task="detection"))
    for kind in lexicons:
        if kind == "none":
            corrected = dets
        else:
            corrected = {}
            for k, ws in dets.items():
                try:
                    lex = lexicon_for(kind, k, lexicon_dir)
                except OSError:
                    lex = None
                if not lex:
                    raise SpotrtError(f"lexicon {kind} for {k}: not found in {lexicon_dir}, expected the ICDAR 2015 lexicons")
                corrected[k] = [DetWord(w.quad, apply_lexicon(w.text, lex), w.score) for w in ws]
        results[f"e2e_{kind}"] = _summary(evaluate(gt, corrected, task="e2e"))
        results[f"spotting_{kind}"] = _summary(evaluate(gt, corrected, task="spotting"))
        if rrc_out is not None:
            write_submission_dir(Path(rrc_out) / kind, corrected)
    return results


def evaluate_icdar(spotter, data_dir, lexicons=LEXICONS, rrc_out=None, progress=True) -> dict:
    images, gt = icdar_dataset(data_dir)
    lex_dir = Path(data_dir) / "lexicons"
    if any(k != "none" for k in lexicons) and not lex_dir.is_dir():  # before the work, not after it
        raise SpotrtError(f"dataset {data_dir}: no lexicons/ folder, expected one for --lexicon {','.join(lexicons)} (or --lexicon none)")
    words = spot_all(spotter, images, progress)
    return {"dataset": str(data_dir), "images": len(images), **score_words(gt, words, lex_dir, lexicons, rrc_out)}


def cut_quad(image: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """The word under a clockwise quad, rectified to an upright crop."""
    q = np.asarray(quad, np.float32)
    w = max(np.linalg.norm(q[1] - q[0]), np.linalg.norm(q[2] - q[3]))
    h = max(np.linalg.norm(q[3] - q[0]), np.linalg.norm(q[2] - q[1]))
    w, h = max(2, int(round(w))), max(2, int(round(h)))
    dst = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    m = cv2.getPerspectiveTransform(q, dst)
    return cv2.warpPerspective(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def recognition_accuracy(spotter, data_dir, progress=True) -> dict:
    """Word accuracy (case-insensitive, alphanumerics only) on the legible ground-truth words."""
    from ..data.charset import normalize_text

    images, gt = icdar_dataset(data_dir)
    total = correct = 0
    for p in tqdm(images, desc="read", unit="img", disable=not progress):
        image = read_image(p)
        for w in gt[p.stem]:
            label = normalize_text(w.text, spotter.cfg.charset) if w.text != "###" else ""
            if not label:
                continue
            text, _ = spotter.read(cut_quad(image, w.quad))
            total += 1
            correct += int(normalize_text(text, spotter.cfg.charset) == label)
    return {"words": total, "correct": correct, "accuracy": correct / total if total else 0.0}


def synthetic_set(n: int, level: int, seed: int, height: int, width: int, generator=None):
    """Held-out synthetic scenes: seeds drawn from a stream training never uses.

    `generator`: the SynthGenerator to draw them with (default: the plain one, the evaluation scenes)."""
    from ..data.synth import SynthGenerator

    gen = generator if generator is not None else SynthGenerator()
    rng = np.random.default_rng([seed, 424242, level])
    for i in range(n):
        yield f"syn_{i}", gen.scene(int(rng.integers(2**31)), level, height, width)


def evaluate_synthetic(spotter, n=200, level=1, seed=1, height=256, width=512, progress=True) -> dict:
    gt, words = {}, {}
    for key, scene in tqdm(synthetic_set(n, level, seed, height, width), total=n, desc=f"synthetic L{level}",
                           unit="img", disable=not progress):
        gt[key] = [GTWord(w.quad, w.text) for w in scene.words]
        words[key] = spotter.spot(scene.image)
    out = score_words(gt, words)
    return {"dataset": f"synthetic level {level}, {n} images {height}x{width}, seed {seed}",
            "detection": out["detection"], "e2e_none": out["e2e_none"]}
