"""Reading alone: word accuracy on a folder of word crops, by kind of text and by length, and the
held-out synthetic crop set (held-out font families, open vocabulary, fixed seed).

A crop folder holds images and a `gt.txt` in the ICDAR word-crop format (`word_1.png, "Text"`), the
format of `ic15_train_words`. A word is read right when the read text equals the label after both
are lower-cased and cut to the recognizer's charset (the ICDAR 2015 comparison of alphanumerics).
"""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from ..data.charset import normalize_text
from ..data.readers import read_word_crops
from ..errors import SpotrtError
from ..fileio import ensure_dir, write_bytes_atomic
from ..imageops import read_image

LENGTH_BINS = ((1, 2), (3, 4), (5, 6), (7, 9), (10, 16))
SYNTH_CROP_SEED = 20261204  # the held-out crop set's seed stream; training never draws it


def read_kinds(root) -> dict[str, str]:
    """`kinds.txt` of a crop folder (`crop_1.png,word` per line), {absolute path: kind}; {} without it."""
    path = Path(root) / "kinds.txt"
    if not path.is_file():
        return {}
    out = {}
    for ln in path.read_text().splitlines():
        name, _, kind = ln.partition(",")
        if kind.strip():
            out[os.path.join(os.path.abspath(root), name.strip())] = kind.strip()
    return out


def kind_of(label: str, vocabulary: set[str] | None) -> str:
    """For crops without a recorded kind: 'digits' (only digits), 'word' (in the dictionary) or
    'random' (anything else)."""
    if label.isdigit():
        return "digits"
    if vocabulary is not None and label in vocabulary:
        return "word"
    return "random"


def _bin(n: int) -> str:
    for lo, hi in LENGTH_BINS:
        if lo <= n <= hi:
            return f"{lo}-{hi}" if lo != hi else str(lo)
    return f">{LENGTH_BINS[-1][1]}"


def read_crop_set(root) -> list[tuple]:
    """(image path, label[, kind]) of a crop folder; labels cut to alphanumerics, unreadable ones
    ('###', nothing left after normalising) skipped; the kind where `kinds.txt` records it.
    One-line SpotrtError for a folder without gt.txt."""
    root = Path(root)
    if not (root / "gt.txt").is_file():
        raise SpotrtError(f"crop set {root}: found no gt.txt, expected word crops with a gt.txt "
                          "('word_1.png, \"Text\"' per line)")
    items = []
    kinds = read_kinds(root)
    for path, text in read_word_crops(root):
        label = normalize_text(text)
        if text.strip() != "###" and label:
            items.append((path, label, kinds[path]) if path in kinds else (path, label))
    if not items:
        raise SpotrtError(f"crop set {root}: found no readable labels in gt.txt, expected at least one word")
    missing = [item[0] for item in items if not os.path.isfile(item[0])]
    if missing:
        raise SpotrtError(f"crop set {root}: {Path(missing[0]).name} is listed in gt.txt but absent "
                          f"({len(missing)} missing)")
    return items


def crop_accuracy(spotter, items, vocabulary: set[str] | None = None, progress: bool = True,
                  desc: str = "read") -> dict:
    """Accuracy overall, by kind (`kind_of`) and by label length; also the misreads (first 50).

    `items`: (image path or BGR array, label) pairs, or triples with the kind the text was drawn as."""
    charset = spotter.cfg.charset
    total = correct = 0
    by_kind: dict[str, list[int]] = {}
    by_len: dict[str, list[int]] = {}
    wrong = []
    for item in tqdm(items, desc=desc, unit="crop", disable=not progress):
        path, label = item[0], item[1]
        kind = item[2] if len(item) > 2 else kind_of(label, vocabulary)
        if isinstance(path, np.ndarray):  # an image in memory (the synthetic set), named by label
            image, path = path, label
        else:
            image = read_image(path)
        text, _ = spotter.read(image)
        ok = normalize_text(text, charset) == normalize_text(label, charset)
        total += 1
        correct += ok
        for table, key in ((by_kind, kind), (by_len, _bin(len(label)))):
            cell = table.setdefault(key, [0, 0])
            cell[0] += 1
            cell[1] += ok
        if not ok and len(wrong) < 50:
            wrong.append((Path(path).name, label, text))

    def table(d):
        return {k: {"words": n, "correct": c, "accuracy": c / n} for k, (n, c) in sorted(d.items())}

    return {"words": total, "correct": correct, "accuracy": correct / total if total else 0.0,
            "by_kind": table(by_kind), "by_length": table(by_len), "misread": wrong}


def default_backgrounds() -> Path | None:
    """../shared/data/backgrounds beside the project, when it is there."""
    path = Path(__file__).resolve().parents[3] / "shared" / "data" / "backgrounds"
    return path if path.is_dir() else None


def synthetic_crop_generator(backgrounds_dir=None):
    """The generator of the held-out crop set: held-out font families, open-vocabulary text, and the
    `val_*` photographs of the backgrounds folder (default: `default_backgrounds()`, when present)
    behind the words."""
    backgrounds_dir = backgrounds_dir or default_backgrounds()
    from ..data.fonts import find_fonts
    from ..data.synth import SynthGenerator
    from ..data.words import TextSource

    backgrounds = []
    if backgrounds_dir and Path(backgrounds_dir).is_dir():
        backgrounds = sorted(str(p) for p in Path(backgrounds_dir).glob("val_*.jpg"))
    return SynthGenerator(fonts=find_fonts("heldout"), text_source=TextSource(), backgrounds=backgrounds,
                          photo_share=0.5)


def synthetic_crops(n: int, level: int = 1, seed: int = SYNTH_CROP_SEED, backgrounds_dir=None, height: int = 32):
    """Yields (name, image, label, kind) of the held-out synthetic crop set: a pure function of its
    arguments (and of the installed held-out fonts and photographs). `kind`: how the text was drawn
    ('word' from the dictionary, 'random' string, 'digits')."""
    gen = synthetic_crop_generator(backgrounds_dir)
    rng = np.random.default_rng([seed, level])
    for i in range(n):
        img, label = gen.word_crop(int(rng.integers(2**31)), level, height=height, max_width=12 * height)
        yield f"crop_{i + 1}.png", img, label, gen.text_source.last_kind


def write_crop_set(out, n: int, level: int = 1, seed: int = SYNTH_CROP_SEED, backgrounds_dir=None,
                   progress: bool = True) -> Path:
    """Write the held-out synthetic crops as a crop folder (PNG files and gt.txt) -> the folder."""
    out = Path(out)
    ensure_dir(out, "crop set")
    lines, kinds = [], []
    for name, img, label, kind in tqdm(synthetic_crops(n, level, seed, backgrounds_dir), total=n, desc="crops",
                                 unit="crop", disable=not progress):
        ok, buf = cv2.imencode(".png", img)
        if not ok:
            raise SpotrtError(f"crop {name}: could not be encoded as PNG")
        write_bytes_atomic(out / name, buf.tobytes(), "crop")
        lines.append(f'{name}, "{label}"')
        kinds.append(f"{name},{kind}")
    write_bytes_atomic(out / "gt.txt", ("\n".join(lines) + "\n").encode(), "crop ground truth")
    write_bytes_atomic(out / "kinds.txt", ("\n".join(kinds) + "\n").encode(), "crop kinds")
    return out


def dictionary() -> set[str] | None:
    """Normalised words of the open vocabulary (for `kind_of`), or None without wordfreq."""
    try:
        from ..data.words import english_words
    except ImportError:  # pragma: no cover - words.py has no hard imports
        return None
    try:
        words, _ = english_words()
    except ImportError:
        return None
    return {normalize_text(w) for w in words}
