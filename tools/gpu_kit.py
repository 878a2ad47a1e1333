"""Pack what a training run needs onto a GPU machine that has PyTorch but nothing of this project.

A lent or rented GPU machine often takes only a small upload (here: the checkout plus 64 MiB in
all) and has no network: no `make fonts`, no `pip install wordfreq`, no ../shared/data. This writes
a folder (default `.devgpu/`, git-ignored through .git/info/exclude) with:

- `fonts.tar.xz`: two faces (regular and bold first) of every training font family, never the
  held-out families; unpack into /usr/share/fonts/truetype there;
- `data/`: a subset of the ic15_train scenes (never the validation images img_10, img_20, ...),
  backgrounds, and the word crops of the 900 training scenes (the validation scenes' crops removed
  here, where the whole scene set is), re-encoded as JPEG to fit;
- `site/wordfreq`: the same 60,000-word English list and frequencies as the wordfreq package,
  dumped from it (wordfreq's wheel is 30+ MB);
- `site/sitecustomize.py`: skips the crop-to-scene check on the machine (the crops were already
  filtered here and the scene subset cannot be matched to them);
- `device.sh`: on the machine, the GPU kernel checks (benchmarks/gpu_check.sh), then `spotrt train
  --device cuda` into $OUT for at most TOTAL seconds. Edit its train flags for the stage at hand.

    .venv/bin/python tools/gpu_kit.py [--out .devgpu] [--scenes 150] [--backgrounds 150]
    # on the machine, from the checkout (with the folder beside it):
    OUT=/some/dir TOTAL=555 STEPS=2000 bash .devgpu/device.sh

Measured with it on an H200 (benchmarks/README.md, "Training on a GPU"): 4.6 steps/s of a batch
twice the CPU run's, about 9x the 2-core CPU in samples a second.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import sys
import tarfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
STYLE_FIRST = ("Regular", "Roman", "Book")

SITECUSTOMIZE = '''"""GPU-kit only: the carried word crops are those of the 900 training scenes (the validation scenes'
crops were removed where the whole scene set is), and the carried scenes are a subset, so the
crop-to-scene check cannot be redone here."""
import spotrt.data.scenes as _s

_s.validation_crops = lambda records, crops, every=10: set()
'''
WORDFREQ = '''"""GPU-kit only: wordfreq's top English words and their frequencies, dumped from wordfreq."""
import json
import os

_F = json.load(open(os.path.join(os.path.dirname(__file__), "freq.json")))
_L = list(_F)


def top_n_list(lang, n):
    assert lang == "en" and n <= len(_L)
    return _L[:n]


def word_frequency(w, lang):
    return _F[w]
'''


def _jpeg(src: Path, dst: Path, quality: int) -> None:
    import cv2

    img = cv2.imread(str(src))
    if img is None:
        raise ValueError(f"{src}: cannot be decoded, expected an image")
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    dst.write_bytes(buf.tobytes())


def _fonts(out: Path) -> int:
    from spotrt.data.fonts import family, find_fonts

    by = collections.defaultdict(list)
    for f in find_fonts("train"):
        by[family(f)].append(f)

    def rank(p):
        base = os.path.basename(p)
        plain = any(w in base for w in STYLE_FIRST) or base.split(".")[0] == family(p)
        bold = "Bold" in base and not any(w in base for w in ("Italic", "Oblique"))
        return (0 if plain else 1 if bold else 2, os.path.getsize(p))

    chosen = []
    for fam in sorted(by):
        files = [f for f in by[fam] if os.path.getsize(f) < 1_000_000] or sorted(by[fam], key=os.path.getsize)[:1]
        chosen += sorted(files, key=rank)[:2]
    with tarfile.open(out / "fonts.tar.xz", "w:xz") as tar:
        for f in chosen:
            sub = "dejavu" if os.path.basename(f).startswith("DejaVu") else "spotrt"
            tar.add(f, arcname=f"{sub}/{os.path.basename(f)}")
    return len(chosen)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=".devgpu")
    ap.add_argument("--data", default=str(SHARED), help="the folder holding ic15_train, ic15_train_words, backgrounds")
    ap.add_argument("--scenes", type=int, default=150, help="training scenes to carry (of 900)")
    ap.add_argument("--backgrounds", type=int, default=150)
    a = ap.parse_args(argv)
    try:
        return _pack(Path(a.data), Path(a.out), a.scenes, a.backgrounds)
    except (ImportError, ValueError, OSError) as exc:
        print(f"gpu_kit: error: {exc}", file=sys.stderr)
        return 1


def _pack(data: Path, out: Path, n_scenes: int, n_backgrounds: int) -> int:
    try:
        from wordfreq import top_n_list, word_frequency
    except ImportError:
        raise ImportError("wordfreq is not installed, expected pip install -e '.[train]'") from None
    from spotrt.data.readers import read_word_crops
    from spotrt.data.scenes import read_scene_set, split_scenes, validation_crops

    records = read_scene_set(data / "ic15_train")  # the inputs are read before anything is written
    crops = read_word_crops(data / "ic15_train_words")
    held = validation_crops(records, crops)
    train, _ = split_scenes(records)
    for sub in ("data/ic15_train/images", "data/ic15_train/gt", "data/backgrounds", "data/ic15_train_words",
                "site/wordfreq"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    step = max(1, len(train) // max(1, n_scenes))
    for r in train[::step][:n_scenes]:
        img = Path(r.image)
        _jpeg(img, out / "data/ic15_train/images" / img.name, 80)
        shutil.copy(data / "ic15_train/gt" / f"gt_{img.stem}.txt", out / "data/ic15_train/gt")
    bgs = sorted((data / "backgrounds").iterdir())
    for p in bgs[:: max(1, len(bgs) // max(1, n_backgrounds))][:n_backgrounds]:
        _jpeg(p, out / "data/backgrounds" / p.name, 75)
    keep = {os.path.basename(p) for p, _ in crops if p not in held}
    for name in keep:  # JPEG bytes under the .png name: OpenCV reads by content, gt.txt stays as it is
        _jpeg(data / "ic15_train_words" / name, out / "data/ic15_train_words" / name, 92)
    for name in ("gt.txt", "coords.txt"):
        lines = (data / "ic15_train_words" / name).read_text(encoding="utf-8-sig").splitlines()
        (out / "data/ic15_train_words" / name).write_text(
            "".join(ln + "\n" for ln in lines if ln.split(",")[0].strip() in keep), encoding="utf-8")
    words = top_n_list("en", 60000)  # spotrt.data.words.english_words draws from the top 60,000
    (out / "site/wordfreq/freq.json").write_text(json.dumps({w: word_frequency(w, "en") for w in words}))
    (out / "site/wordfreq/__init__.py").write_text(WORDFREQ)
    (out / "site/sitecustomize.py").write_text(SITECUSTOMIZE)
    shutil.copy(Path(__file__).with_name("gpu_kit_device.sh"), out / "device.sh")
    n_fonts = _fonts(out)
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"gpu_kit: {out}: {min(n_scenes, len(train))} scenes, {len(keep)} word crops, {n_fonts} font files; "
          f"{total / 2**20:.1f} MiB in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
