"""spotrt's ICDAR 2015 evaluator against the official RRC scripts, on perturbed submissions.

    python benchmarks/rrc_agreement.py [--rrc DIR] [--data ../shared/data/ic15_dev]
        [--submissions 24] [--images N] [--only NAME,...] [--seed 0] [--keep DIR] [--json out.json]

Builds deterministic perturbed copies of the ground truth of an ICDAR 2015 folder (shifted, scaled
and rotated quads, dropped, duplicated and reordered words, false positives, degenerate and bow-tie
quads, misspelled, case-changed and punctuated transcriptions, lexicon-corrected words, words in
don't-care regions, empty images and missing result files, exact 0.5 IoU / don't-care constructs),
writes each as official result files and zips, and scores it with spotrt (spotrt.eval.evaluate,
from the files) and with the official scripts, for Task 4.1 (localization) and Task 4.4 (end-to-end,
word spotting). Prints precision / recall / hmean of both, per submission and task, the largest
absolute difference, how many exact 0.5 cases (a detection exactly half inside a don't-care region,
an IoU of exactly 0.5) were scored, and every image where the two disagree on a decision (which
detections are don't care, which pairs match). Exit code 0 when every per-image decision is the
same and the global metrics agree within 1e-9; 1 otherwise (disagreements at exact 0.5 ties are
marked as such, not excused); other non-zero codes with a message when it cannot run.

The official scripts are not part of spotrt. DIR (--rrc, or the environment variable
SPOTRT_RRC_SCRIPTS) must hold:

    DIR/4.1/script.py                   Task 4.1 (text localization, IoU) evaluation script
    DIR/4.1/rrc_evaluation_funcs.py     its helper module
    DIR/4.1/python                      executable: an interpreter that runs them (with Polygon)
    DIR/4.4/script.py                   Task 4.4 end-to-end script (E2E_iou_1_1.py, WORD_SPOTTING
                                        set per run: False = end-to-end, True = word spotting)
    DIR/4.4/rrc_evaluation_funcs_1_1.py its helper module
    DIR/4.4/python                      executable: an interpreter that runs them (with Polygon)

`python` may be a symlink or a wrapper script (the 4.1 script of the RRC site is Python 2). See
benchmarks/README.md ("Agreement with the official RRC scripts") for where they came from.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from spotrt.eval.icdar15 import (  # noqa: E402
    SPECIAL_CHARACTERS,
    DetWord,
    _intersection,
    _Poly,
    evaluate,
    polygon_iou,
    read_gt_dir,
    read_submission_dir,
    write_submission_dir,
)
from spotrt.eval.lexicon import apply_lexicon, lexicon_for  # noqa: E402

TOL = 1e-9
TIE_TOL = 1e-9
ENV = "SPOTRT_RRC_SCRIPTS"
LAYOUT = {
    "4.1": ("script.py", "rrc_evaluation_funcs.py", "python"),
    "4.4": ("script.py", "rrc_evaluation_funcs_1_1.py", "python"),
}
# task -> (scripts folder, parameters passed to the official script)
TASK_RUNS = {
    "detection": ("4.1", {"IOU_CONSTRAINT": 0.5, "AREA_PRECISION_CONSTRAINT": 0.5}),
    "e2e": ("4.4", {"IOU_CONSTRAINT": 0.5, "AREA_PRECISION_CONSTRAINT": 0.5, "WORD_SPOTTING": False}),
    "spotting": ("4.4", {"IOU_CONSTRAINT": 0.5, "AREA_PRECISION_CONSTRAINT": 0.5, "WORD_SPOTTING": True}),
}

# ------------------------------------------------------------------------------ submissions

BASE = dict(shift=0.0, scale=0.0, rot=0.0, drop=0.0, dup=0.0, fp=0, degenerate=0, misspell=0.0, case=0.0,
            punct=0.0, dontcare=0.0, bowtie=0.0, shuffle=False, empty=0.0, missing=0.0, lexicon=0.0,
            ties=False, dontcare_text=False)

RECIPES: list[tuple[str, dict]] = [
    ("exact", {}),
    ("exact_with_dontcare", dict(dontcare=1.0, dontcare_text=True, shuffle=True)),
    ("shift_small", dict(shift=0.05)),
    ("shift_large", dict(shift=0.25)),
    ("scale", dict(scale=0.35)),
    ("rotate", dict(rot=15.0)),
    ("drop", dict(drop=0.3)),
    ("duplicate", dict(dup=0.3, shift=0.02)),
    ("false_positives", dict(fp=3, degenerate=1)),
    ("misspell", dict(misspell=0.4)),
    ("case", dict(case=0.7)),
    ("punctuation", dict(punct=0.6)),
    ("dontcare_words", dict(dontcare=1.0, shift=0.03)),
    ("bowtie", dict(bowtie=0.4)),
    ("empty_and_missing", dict(empty=0.3, missing=0.2)),
    ("strong_lexicon", dict(misspell=0.6, lexicon=1.0)),
    ("ties", dict(ties=True)),
    ("mixed_1", dict(shift=0.1, scale=0.15, drop=0.1, dup=0.1, fp=1, misspell=0.2, case=0.3, punct=0.2, dontcare=0.5, bowtie=0.1, shuffle=True)),
    ("mixed_2", dict(shift=0.2, rot=8.0, drop=0.2, fp=2, degenerate=1, misspell=0.3, case=0.5, dontcare=0.3, lexicon=0.5, shuffle=True)),
    ("mixed_3", dict(shift=0.15, scale=0.25, dup=0.2, punct=0.4, bowtie=0.2, empty=0.1, missing=0.1, ties=True)),
    ("mixed_4", dict(shift=0.3, rot=20.0, drop=0.4, fp=4, case=1.0, dontcare=0.8, shuffle=True)),
    ("mixed_5", dict(shift=0.08, scale=0.1, misspell=0.5, punct=0.5, lexicon=0.3, bowtie=0.3, dontcare=0.4, ties=True)),
    ("mixed_6", dict(shift=0.12, dup=0.4, fp=2, degenerate=2, case=0.4, drop=0.15, missing=0.3, shuffle=True)),
    ("mixed_7", dict(shift=0.18, scale=0.2, rot=10.0, drop=0.2, dup=0.2, fp=2, misspell=0.25, case=0.5, punct=0.3, dontcare=0.6, bowtie=0.2, lexicon=0.4, empty=0.05, ties=True, shuffle=True)),
]
RECIPE_NAMES = [n for n, _ in RECIPES]


def clockwise_ok(q: np.ndarray) -> bool:
    """The official validator's orientation test (validate_clockwise_points) on integer points."""
    p = [int(v) for v in np.asarray(q).reshape(-1)]
    edge = sum((p[(2 * i + 2) % 8] - p[2 * i]) * (p[(2 * i + 3) % 8] + p[2 * i + 1]) for i in range(4))
    return edge <= 0


def _geom(q: np.ndarray) -> tuple[np.ndarray, float, float]:
    c = q.mean(0)
    w = max(np.linalg.norm(q[1] - q[0]), 1.0)
    h = max(np.linalg.norm(q[3] - q[0]), 1.0)
    return c, w, h


def _fix(q: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    q = np.rint(q)
    return q if clockwise_ok(q) else np.rint(fallback)


def perturb_quad(q: np.ndarray, cfg: dict, rng) -> np.ndarray:
    q0 = np.asarray(q, np.float64)
    c, w, h = _geom(q0)
    out = q0.copy()
    if cfg["rot"]:
        a = np.deg2rad(rng.uniform(-cfg["rot"], cfg["rot"]))
        r = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        out = (out - c) @ r.T + c
    if cfg["scale"]:
        s = 1.0 + rng.uniform(-cfg["scale"], cfg["scale"])
        out = (out - c) * s + c
    if cfg["shift"]:
        out = out + rng.normal(0.0, cfg["shift"], 2) * np.array([w, h * 2])
    return _fix(out, q0)


def bow_tie(q: np.ndarray, rng) -> np.ndarray | None:
    """Two corners swapped (which two: random), when the official validator still takes it."""
    orders = [[0, 2, 1, 3], [0, 1, 3, 2], [1, 0, 2, 3], [3, 1, 2, 0]]
    for k in rng.permutation(len(orders)):
        order = orders[k]
        b = np.rint(np.asarray(q)[order])
        if clockwise_ok(b) and abs(_Poly(b).area - _Poly(np.rint(q)).area) > 1e-9:
            return b
    return None


def perturb_text(text: str, cfg: dict, rng, lexicon) -> str:
    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    if cfg["misspell"] and rng.random() < cfg["misspell"] and text:
        i = int(rng.integers(len(text)))
        op = int(rng.integers(3))
        ch = letters[int(rng.integers(len(letters)))]
        text = text[:i] + ch + text[i + 1 :] if op == 0 else (text[:i] + ch + text[i:] if op == 1 else text[:i] + text[i + 1 :])
    if cfg["lexicon"] and lexicon and rng.random() < cfg["lexicon"]:
        text = apply_lexicon(text, lexicon)
    if cfg["case"] and rng.random() < cfg["case"]:
        text = [str.upper, str.lower, str.swapcase, str.title][int(rng.integers(4))](text)
    if cfg["punct"] and rng.random() < cfg["punct"]:
        k = int(rng.integers(4))
        if k == 0:
            text = text.strip(SPECIAL_CHARACTERS)  # what the GT may lose at its ends (e2e) or not
        elif k == 1:
            text = text + "."
        elif k == 2:
            text = '"' + text + '"'  # written quoted-escaped; read back unquoted by both sides
        else:
            text = "(" + text + ")'s"
    return text


def _random_box(rng, width=1280, height=720) -> np.ndarray:
    w, h = rng.uniform(20, 200), rng.uniform(10, 60)
    x, y = rng.uniform(-10, width - w), rng.uniform(-10, height - h)
    return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]])


def _axis_aligned(q) -> bool:
    q = np.asarray(q)
    return q[0, 1] == q[1, 1] and q[2, 1] == q[3, 1] and q[0, 0] == q[3, 0] and q[1, 0] == q[2, 0] and q[1, 0] > q[0, 0] and q[3, 1] > q[0, 1]


def tie_words(gt_words) -> list[DetWord]:
    """Detections at exact 0.5 ratios on axis-aligned GT boxes: shifted by a third of the width
    (IoU 0.5 when the width is a multiple of 3) and, on don't-care boxes, by half the width (half
    inside the region when the width is even)."""
    out = []
    for g in gt_words:
        q = np.asarray(g.quad, np.float64)
        if not _axis_aligned(q):
            continue
        w = q[1, 0] - q[0, 0]
        if g.text == "###":
            out.append(DetWord(q + np.array([np.floor(w / 2), 0.0]), "half"))
        else:
            out.append(DetWord(q + np.array([np.floor(w / 3), 0.0]), g.text))
    return out


def make_submission(gt: dict, cfg: dict, seed: int, idx: int, lexicon_dir) -> dict[str, list[DetWord]]:
    rng = np.random.default_rng([seed, idx])
    dets: dict[str, list[DetWord]] = {}
    for image_id, words in gt.items():
        if cfg["missing"] and rng.random() < cfg["missing"]:
            continue  # no result file for this image
        if cfg["empty"] and rng.random() < cfg["empty"]:
            dets[image_id] = []
            continue
        lexicon = None
        if cfg["lexicon"]:
            try:
                lexicon = lexicon_for("strong", image_id, lexicon_dir)
            except (OSError, ValueError):
                lexicon = None
        out: list[DetWord] = []
        for g in words:
            if g.text == "###":
                if cfg["dontcare"] and rng.random() < cfg["dontcare"]:
                    q = np.asarray(g.quad, np.float64)
                    c, w, h = _geom(q)
                    k = int(rng.integers(3))
                    if k == 0:  # well inside: ignored
                        dq = (q - c) * 0.8 + c
                    elif k == 1:  # about half inside
                        dq = q + (q[1] - q[0]) * rng.uniform(0.4, 0.6)
                    else:
                        dq = perturb_quad(q, dict(cfg, shift=max(cfg["shift"], 0.1)), rng)
                    text = "###" if cfg["dontcare_text"] else "".join(rng.choice(list("ABCDEFGHKLMNPRST"), 4))
                    out.append(DetWord(_fix(dq, q), text))
                continue
            if cfg["drop"] and rng.random() < cfg["drop"]:
                continue
            q = perturb_quad(g.quad, cfg, rng)
            if cfg["bowtie"] and rng.random() < cfg["bowtie"]:
                b = bow_tie(q, rng)
                q = b if b is not None else q
            text = perturb_text(g.text, cfg, rng, lexicon)
            out.append(DetWord(q, text))
            if cfg["dup"] and rng.random() < cfg["dup"]:
                out.append(DetWord(perturb_quad(g.quad, dict(cfg, shift=max(cfg["shift"], 0.05)), rng), text))
        for _ in range(cfg["fp"]):
            words_pool = lexicon or ["SALE", "OPEN", "EXIT", "CAFE", "HOTEL", "PARKING"]
            box = _random_box(rng)
            out.append(DetWord(_fix(box, box), words_pool[int(rng.integers(len(words_pool)))]))
        for _ in range(cfg["degenerate"]):
            x, y = float(rng.integers(0, 1200)), float(rng.integers(0, 700))
            k = int(rng.integers(2))
            dq = np.array([[x, y]] * 4) if k == 0 else np.array([[x, y], [x + 30, y], [x + 60, y], [x + 90, y]])
            out.append(DetWord(dq, "dot"))
        if cfg["ties"]:
            out.extend(tie_words(words))
        if cfg["shuffle"]:
            out = [out[i] for i in rng.permutation(len(out))]
        dets[image_id] = out
    return dets


# --------------------------------------------------------------------------------- running


def scripts_dir(arg: str | None) -> Path:
    d = arg or os.environ.get(ENV)
    if not d:
        raise SystemExit(f"no official scripts: pass --rrc DIR or set {ENV} (see the docstring for the layout)")
    root = Path(d)
    missing = [str(root / sub / f) for sub, files in LAYOUT.items() for f in files if not (root / sub / f).exists()]
    if missing:
        raise SystemExit(f"{root}: not the official scripts' layout, missing {', '.join(missing)}")
    return root


def _zip_dir(src: Path, dst: Path) -> None:
    with zipfile.ZipFile(dst, "w") as z:
        for p in sorted(src.iterdir()):
            if p.suffix == ".txt":
                z.write(p, p.name)


def run_official(root: Path, folder: str, jobs: list[dict], work: Path) -> list[dict]:
    jobs_path, out_path = work / f"jobs_{folder}.json", work / f"official_{folder}.json"
    jobs_path.write_text(json.dumps(jobs))
    driver = Path(__file__).resolve().with_name("rrc_official_driver.py")
    cmd = [str(root / folder / "python"), str(driver), str(root / folder), str(jobs_path), str(out_path)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0 or not out_path.exists():
        raise SystemExit(f"official scripts ({folder}) failed, exit code {r.returncode}:\n{r.stdout[-2000:]}{r.stderr[-4000:]}")
    return json.loads(out_path.read_text())


def ties_in_image(gt_words, det_words, task: str) -> tuple[set[int], set[tuple[int, int]]]:
    """Exact 0.5 cases (within TIE_TOL) by spotrt's geometry: detections whose largest share inside a
    don't-care GT region is 0.5, and (GT, detection) pairs with IoU 0.5."""
    res = evaluate({"x": gt_words}, {"x": det_words}, task=task)["per_image"]["x"]
    dc = set(res["gt_dont_care"])
    dc_ties, iou_ties = set(), set()
    det_polys = [_Poly(d.quad) for d in det_words]
    for j, dp in enumerate(det_polys):
        for i in dc:
            if dp.area > 0 and abs(_intersection(_Poly(gt_words[i].quad), dp) / dp.area - 0.5) <= TIE_TOL:
                dc_ties.add(j)
    for i, g in enumerate(gt_words):
        if i in dc:
            continue
        for j, d in enumerate(det_words):
            if abs(polygon_iou(g.quad, d.quad) - 0.5) <= TIE_TOL:
                iou_ties.add((i, j))
    return dc_ties, iou_ties


def compare_image(ours: dict, theirs: dict, gt_words, det_words, task: str) -> dict | None:
    """None when both take the same decisions on an image; else what differs, and whether it sits
    at an exact 0.5 tie (every don't-care difference is a tie, and the first differing GT in
    matching order involves a tie or a detection whose don't-care status differs): reported to help
    find the cause, never excused."""
    our_dc, their_dc = set(ours["det_dont_care"]), set(theirs["detDontCare"])
    our_pairs = {(p["gt"], p["det"], bool(p["correct"])) for p in ours["pairs"]}
    their_pairs = {(g, d, bool(c)) for g, d, c in theirs["pairs"]}
    if our_dc == their_dc and our_pairs == their_pairs and set(ours["gt_dont_care"]) == set(theirs["gtDontCare"]):
        return None
    dc_ties, iou_ties = ties_in_image(gt_words, det_words, task)
    dc_diff = our_dc ^ their_dc
    pair_diff = our_pairs ^ their_pairs
    at_tie = dc_diff <= dc_ties and set(ours["gt_dont_care"]) == set(theirs["gtDontCare"])
    if at_tie and pair_diff:
        first_gt = min(g for g, _, _ in pair_diff)
        dets = {d for g, d, _ in pair_diff if g == first_gt}
        tie_dets = {d for g, d in iou_ties if g == first_gt} | dc_diff
        at_tie = bool(dets & tie_dets)
    return {
        "det_dont_care_only_spotrt": sorted(our_dc - their_dc),
        "det_dont_care_only_official": sorted(their_dc - our_dc),
        "pairs_only_spotrt": sorted(our_pairs - their_pairs),
        "pairs_only_official": sorted(their_pairs - our_pairs),
        "dont_care_ties": sorted(dc_ties),
        "iou_ties": sorted(iou_ties),
        "at_tie": bool(at_tie),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rrc", metavar="DIR", help=f"folder with the official scripts (default: ${ENV})")
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "ic15_dev"), help="ICDAR 2015 folder with gt/ (and lexicons/)")
    ap.add_argument("--submissions", type=int, default=len(RECIPES), help=f"how many of the {len(RECIPES)} perturbed submissions (first N)")
    ap.add_argument("--only", help="comma-separated submission names instead (" + ",".join(RECIPE_NAMES) + ")")
    ap.add_argument("--images", type=int, default=0, help="first N images (by number) only; 0 = all")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", metavar="DIR", help="keep the GT zip, submissions and official outputs here")
    ap.add_argument("--json", metavar="FILE", help="write all numbers and disagreements here")
    a = ap.parse_args(argv)

    root = scripts_dir(a.rrc)
    data = Path(a.data)
    if not (data / "gt").is_dir():
        raise SystemExit(f"{data}: no gt/ folder (expected an ICDAR 2015 layout)")
    if a.only:
        names = a.only.split(",")
        unknown = [n for n in names if n not in RECIPE_NAMES]
        if unknown:
            raise SystemExit(f"--only: {unknown[0]!r} not known (expected some of {', '.join(RECIPE_NAMES)})")
        recipes = [(n, c) for n, c in RECIPES if n in names]
    else:
        if not 1 <= a.submissions <= len(RECIPES):
            raise SystemExit(f"--submissions: found {a.submissions}, expected 1..{len(RECIPES)}")
        recipes = RECIPES[: a.submissions]

    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="rrc_agree_") as tmp:
        work = Path(a.keep) if a.keep else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        gt_files = sorted((data / "gt").glob("gt_*.txt"), key=lambda p: int(p.stem.split("_")[-1]))
        if a.images:
            gt_files = gt_files[: a.images]
        gt_dir = work / "gt"
        gt_dir.mkdir(exist_ok=True)
        for p in gt_files:
            (gt_dir / p.name).write_bytes(p.read_bytes())
        _zip_dir(gt_dir, work / "gt.zip")
        gt = read_gt_dir(gt_dir)

        ours: dict[str, dict] = {}
        jobs: dict[str, list] = {"4.1": [], "4.4": []}
        subs: dict[str, dict] = {}
        for idx, (name, over) in enumerate(recipes):
            cfg = dict(BASE, **over)
            dets = make_submission(gt, cfg, a.seed, RECIPE_NAMES.index(name), data / "lexicons")
            for kind, with_text in (("e2e", True), ("det", False)):
                d = work / name / kind
                write_submission_dir(d, dets, with_text=with_text)
                _zip_dir(d, work / name / f"{kind}.zip")
            subs[name] = {"e2e": read_submission_dir(work / name / "e2e"), "det": read_submission_dir(work / name / "det")}
            for task, (folder, params) in TASK_RUNS.items():
                kind = "det" if task == "detection" else "e2e"
                ours[f"{name}/{task}"] = evaluate(gt, subs[name][kind], task=task)
                jobs[folder].append({"name": f"{name}/{task}", "g": str(work / "gt.zip"), "s": str(work / name / f"{kind}.zip"), "p": params})
        t_ours = time.time() - t0
        official = {}
        for folder, js in jobs.items():
            for r in run_official(root, folder, js, work):
                official[r["name"]] = r
        t_all = time.time() - t0

    rows, problems, max_diff, tie_counts = [], [], 0.0, {}
    for name, _ in recipes:
        for task in TASK_RUNS:
            key = f"{name}/{task}"
            o, r = ours[key], official[key]
            if not r["calculated"]:
                problems.append(f"{key}: the official script did not score it: {r['message']}")
                rows.append((name, task, o, None, float("nan")))
                continue
            diff = max(abs(o[m] - r["method"][m]) for m in ("precision", "recall", "hmean"))
            kind = "det" if task == "detection" else "e2e"
            n_dc = n_iou = 0
            for image_id, gw in gt.items():
                dc_t, iou_t = ties_in_image(gw, subs[name][kind].get(image_id, []), task)
                n_dc, n_iou = n_dc + len(dc_t), n_iou + len(iou_t)
            tie_counts[key] = (n_dc, n_iou)
            max_diff = max(max_diff, diff)
            rows.append((name, task, o, r["method"], diff))
            for sample, theirs in sorted(r["per_sample"].items(), key=lambda kv: int(kv[0])):
                image_id = f"img_{sample}"
                c = compare_image(o["per_image"][image_id], theirs, gt[image_id], subs[name][kind].get(image_id, []), task)
                if c is None:
                    continue
                c.update(submission=name, task=task, image=image_id)
                problems.append(c)
            if diff > TOL and not any(isinstance(p, dict) and p["submission"] == name and p["task"] == task for p in problems):
                problems.append(f"{key}: global metrics differ by {diff:.3g} with the same per-image decisions")

    print(f"# spotrt evaluator vs official RRC scripts: {len(recipes)} submissions x 3 tasks, {len(gt)} images of {data}")
    print(f"# official scripts: {root}; seed {a.seed}; {t_all:.1f} s (spotrt {t_ours:.1f} s)\n")
    print("| submission | task | spotrt P | spotrt R | spotrt H | official P | official R | official H | max abs diff |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, task, o, r, diff in rows:
        rp = " | ".join(f"{r[m]:.6f}" for m in ("precision", "recall", "hmean")) if r else "- | - | -"
        print(f"| {name} | {task} | {o['precision']:.6f} | {o['recall']:.6f} | {o['hmean']:.6f} | {rp} | {diff:.2e} |")
    print(f"\nmax absolute difference over all submissions, tasks and metrics: {max_diff:.3e} (tolerance {TOL:g})")
    tied = {k: v for k, v in tie_counts.items() if v != (0, 0)}
    print(f"\nexact 0.5 cases scored (by spotrt's geometry): {sum(v[0] for v in tie_counts.values())} detection/don't-care "
          f"shares and {sum(v[1] for v in tie_counts.values())} GT/detection IoUs, in "
          + (", ".join(f"{k} ({v[0]}+{v[1]})" for k, v in tied.items()) or "no submission"))
    status = 0
    if problems:
        status = 1
        print(f"\nDISAGREEMENT ({len(problems)}):")
        for p in problems:
            print("  " + (p if isinstance(p, str) else
                          f"{p['submission']}/{p['task']} {p['image']}: don't care only spotrt {p['det_dont_care_only_spotrt']}, "
                          f"only official {p['det_dont_care_only_official']}; pairs only spotrt {p['pairs_only_spotrt']}, "
                          f"only official {p['pairs_only_official']}"
                          + ("; at an exact 0.5 tie (don't-care shares " + str(p["dont_care_ties"]) + ", IoUs " + str(p["iou_ties"]) + ")"
                             if p["at_tie"] else "")))
    else:
        print(f"\nAGREE: every per-image decision is the same, exact 0.5 cases included; global metrics within {max_diff:.1e}")
    if a.json:
        Path(a.json).write_text(json.dumps({
            "images": len(gt), "seed": a.seed, "scripts": str(root), "max_abs_diff": max_diff, "status": status,
            "exact_half_cases": {k: {"dont_care_shares": v[0], "ious": v[1]} for k, v in tie_counts.items()},
            "rows": [{"submission": n, "task": t, "spotrt": {m: o[m] for m in ("precision", "recall", "hmean", "matched", "num_gt", "num_det")},
                      "official": r, "max_abs_diff": d} for n, t, o, r, d in rows],
            "problems": problems}, indent=1, default=str))
    return status


if __name__ == "__main__":
    sys.exit(main())
