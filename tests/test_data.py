"""Tests of spotrt.data: charset, readers, fonts and the synthetic scene generator."""
from __future__ import annotations

import os
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("PIL")

from spotrt.data import (  # noqa: E402
    DEFAULT_CHARSET,
    LEVELS,
    Scene,
    SynthGenerator,
    default_vocabulary,
    find_fonts,
    normalize_text,
    read_icdar_gt,
    read_word_crops,
)

REPO = Path(__file__).resolve().parents[1]
WORDS_ROOT = REPO.parent / "shared" / "data" / "ic15_train_words"
needs_words = pytest.mark.skipif(
    not (WORDS_ROOT / "gt.txt").is_file(), reason=f"real word crops absent ({WORDS_ROOT})"
)


@pytest.fixture(scope="module")
def gen() -> SynthGenerator:
    try:
        fonts = find_fonts()
    except RuntimeError as e:  # pragma: no cover - depends on the machine
        pytest.skip(str(e))
    crops = read_word_crops(WORDS_ROOT) if (WORDS_ROOT / "gt.txt").is_file() else None
    return SynthGenerator(fonts=fonts, real_crops=crops)


def _signed_area(q: np.ndarray) -> float:
    x, y = q[:, 0].astype(np.float64), q[:, 1].astype(np.float64)
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


# ---------------------------------------------------------------- charset
def test_normalize_text():
    assert normalize_text("Genaxis Theatre!") == "genaxistheatre"
    assert normalize_text("62-03") == "6203"
    assert normalize_text("Café #1") == "caf1"
    assert normalize_text("###") == ""
    assert normalize_text("ABC", charset="ab") == "ab"
    assert set(DEFAULT_CHARSET) == set("0123456789abcdefghijklmnopqrstuvwxyz")


# ---------------------------------------------------------------- readers
def test_read_word_crops_small(tmp_path):
    lines = [
        'word_1.png, "Genaxis Theatre"',
        'word_2.png, "READER\\""',
        'word_3.png, "\\"SCAN\\""',
        'word_4.png, "a, b"',
        'word_5.png, "###"',
    ]
    (tmp_path / "gt.txt").write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8"))
    got = read_word_crops(tmp_path)
    assert [t for _, t in got] == ["Genaxis Theatre", 'READER"', '"SCAN"', "a, b", "###"]
    assert got[0][0] == os.path.join(str(tmp_path.resolve()), "word_1.png")
    assert all(os.path.isabs(p) for p, _ in got)


def test_read_icdar_gt_small(tmp_path):
    text = "\ufeff377,117,463,117,465,130,378,130,Genaxis Theatre\r\n" \
           "493,115,519,115,519,131,493,131,[06]\r\n" \
           "374,155,409,155,409,170,374,170,###\r\n" \
           "1.5,2,30,2,30,20,1.5,20,a,b,,c\r\n"
    p = tmp_path / "gt_img_1.txt"
    p.write_bytes(text.encode("utf-8"))
    got = read_icdar_gt(p)
    assert len(got) == 4
    q, t = got[0]
    assert q.shape == (4, 2) and q.dtype == np.float32
    assert t == "Genaxis Theatre"
    assert q[0].tolist() == [377, 117] and q[2].tolist() == [465, 130]
    assert got[2][1] == "###"
    assert got[3][1] == "a,b,,c" and got[3][0][0, 0] == pytest.approx(1.5)


@needs_words
def test_read_word_crops_real():
    got = read_word_crops(WORDS_ROOT)
    assert len(got) == 4468
    assert got[0][1] == "Genaxis Theatre"
    assert got[0][0].endswith("word_1.png") and os.path.isfile(got[0][0])
    assert not any(t.startswith("\ufeff") or p.startswith("\ufeff") for p, t in got)
    assert not any(t.endswith("\r") for _, t in got)
    texts = dict((os.path.basename(p), t) for p, t in got)
    assert texts["word_1013.png"] == 'READER"'


@pytest.mark.skipif(not (REPO.parent / "shared/data/ic15_dev/gt/gt_img_1.txt").is_file(),
                    reason="ic15_dev absent")
def test_read_icdar_gt_real():
    got = read_icdar_gt(REPO.parent / "shared/data/ic15_dev/gt/gt_img_1.txt")
    assert got and all(q.shape == (4, 2) for q, _ in got)
    assert any(t == "###" for _, t in got)


# ---------------------------------------------------------------- fonts / vocabulary
def test_find_fonts():
    fonts = find_fonts()
    assert len(fonts) >= 5
    assert len(set(fonts)) == len(fonts)
    faces = [os.path.splitext(os.path.basename(f))[0].lower() for f in fonts]
    assert faces == sorted(set(faces))  # by face name, so a seed picks the same font wherever they are installed
    assert all(f.lower().endswith((".ttf", ".otf")) and os.path.isfile(f) for f in fonts)


def test_make_fonts_installs_the_listed_packages():
    """`make fonts` installs exactly spotrt.data.fonts.DEBIAN_FONT_PACKAGES (two lists kept as one)."""
    from spotrt.data.fonts import DEBIAN_FONT_PACKAGES

    text = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    listed = re.search(r"^FONT_PKGS := ((?:.*\\\n)*.*)$", text, re.M).group(1)
    assert listed.replace("\\", " ").split() == list(DEBIAN_FONT_PACKAGES)
    assert len(set(DEBIAN_FONT_PACKAGES)) == len(DEBIAN_FONT_PACKAGES)


def test_balanced_keeps_at_most_n_faces_of_a_family_spread_over_its_weights():
    from spotrt.data.fonts import balanced

    many = [f"/f/Inter-{w}.otf" for w in ("Black", "Bold", "ExtraBold", "Light", "Medium", "Regular", "SemiBold")]
    few = ["/g/Lato-Bold.ttf", "/g/Lato-Regular.ttf"]
    fonts = sorted(many + few, key=os.path.basename)
    kept = balanced(fonts, per_family=3)
    assert [os.path.basename(f) for f in kept] == ["Inter-Black.otf", "Inter-Light.otf", "Inter-SemiBold.otf",
                                                   "Lato-Bold.ttf", "Lato-Regular.ttf"]
    assert balanced(fonts, per_family=1) == ["/f/Inter-Black.otf", "/g/Lato-Bold.ttf"]
    assert balanced(fonts, per_family=10) == fonts
    with pytest.raises(ValueError, match="per_family"):
        balanced(fonts, per_family=0)


def test_default_vocabulary():
    vocab = default_vocabulary()
    assert len(vocab) >= 150
    assert vocab == sorted(set(vocab))
    assert all(len(w) >= 2 and normalize_text(w) == w for w in vocab)
    assert {"open", "exit", "parking"} <= set(vocab)
    if (WORDS_ROOT / "gt.txt").is_file():
        assert "genaxis" in vocab and "theatre" in vocab


# ---------------------------------------------------------------- scenes
def _check_scene(s: Scene, h: int, w: int):
    assert isinstance(s, Scene)
    assert s.image.shape == (h, w, 3) and s.image.dtype == np.uint8
    for wd in s.words:
        q = wd.quad
        assert q.shape == (4, 2) and q.dtype == np.float32
        assert (q[:, 0] >= 0).all() and (q[:, 0] <= w).all()
        assert (q[:, 1] >= 0).all() and (q[:, 1] <= h).all()
        assert _signed_area(q) > 4.0  # clockwise on screen (y down), positive area
        # the first corner is the top-left one of the text (text is at most ~15 degrees off)
        assert q[0, 0] < q[1, 0] and q[3, 1] > q[0, 1]
        assert wd.text and normalize_text(wd.text) == wd.text and len(wd.text) <= 24


@pytest.mark.parametrize("level", LEVELS)
def test_scene_basic(gen, level):
    n_words = 0
    for seed in range(6):
        s = gen.scene(seed, level)
        _check_scene(s, 256, 512)
        n_words += len(s.words)
    assert n_words >= 6


def test_scene_sizes(gen):
    for h, w in ((128, 128), (96, 320), (320, 640)):
        for level in LEVELS:
            _check_scene(gen.scene(3, level, height=h, width=w), h, w)


@pytest.mark.parametrize("level", LEVELS)
def test_scene_deterministic(gen, level):
    a, b, c = gen.scene(11, level), gen.scene(11, level), gen.scene(12, level)
    assert a.image.tobytes() == b.image.tobytes()
    assert [w.text for w in a.words] == [w.text for w in b.words]
    assert all(np.array_equal(x.quad, y.quad) for x, y in zip(a.words, b.words))
    assert a.image.tobytes() != c.image.tobytes()
    # a fresh generator gives the same scene too (no hidden state)
    other = SynthGenerator(fonts=gen.fonts, vocabulary=gen.vocabulary, real_crops=None)
    if level < 2 or not gen.real_crops:
        assert other.scene(11, level).image.tobytes() == a.image.tobytes()


def test_words_do_not_overlap(gen):
    for seed in range(10):
        s = gen.scene(seed, 2)
        masks = []
        for wd in s.words:
            m = np.zeros(s.image.shape[:2], np.uint8)
            cv2.fillConvexPoly(m, np.round(wd.quad).astype(np.int32), 1)
            masks.append(m)
        for i in range(len(masks)):
            for j in range(i + 1, len(masks)):
                assert (masks[i] & masks[j]).sum() == 0


def test_quads_cover_ink(gen, monkeypatch):
    """On a flat background at level 0, ink lies inside the quads and every quad holds ink."""
    bg = np.array([127.0, 127.0, 127.0], np.float32)

    def flat(rng, level, h, w):
        rng.random()
        return np.broadcast_to(bg, (h, w, 3)).copy()

    monkeypatch.setattr(gen, "_background", flat)
    checked = 0
    for seed in range(8):
        s = gen.scene(seed, 0)
        diff = np.abs(s.image.astype(np.int16) - 127).max(axis=2) > 12
        union = np.zeros(diff.shape, np.uint8)
        for wd in s.words:
            m = np.zeros(diff.shape, np.uint8)
            cv2.fillConvexPoly(m, np.round(wd.quad).astype(np.int32), 1)
            ink_inside = int((diff & (m > 0)).sum())
            area = int(m.sum())
            assert ink_inside > 0.05 * area, (seed, wd.text, ink_inside, area)
            # the box is tight: ink touches (almost) each side
            ys, xs = np.nonzero(diff & (m > 0))
            x0, y0 = wd.quad.min(0)
            x1, y1 = wd.quad.max(0)
            assert xs.min() - x0 <= 2 and x1 - xs.max() <= 3
            assert ys.min() - y0 <= 2 and y1 - ys.max() <= 3
            union |= m
            checked += 1
        union = cv2.dilate(union, np.ones((7, 7), np.uint8))
        assert not (diff & (union == 0)).any(), f"ink outside the quads (seed {seed})"
    assert checked >= 8


def test_level_difficulty(gen):
    """Harder levels have more words and smaller text on average."""
    def stats(level):
        n, hs = 0, []
        for seed in range(12):
            for wd in gen.scene(seed, level).words:
                n += 1
                hs.append(np.linalg.norm(wd.quad[3] - wd.quad[0]))
        return n / 12.0, float(np.median(hs))

    n0, _ = stats(0)
    n2, _ = stats(2)
    assert n2 > n0


@pytest.mark.parametrize("level", LEVELS)
def test_word_crop(gen, level):
    for seed in range(8):
        img, label = gen.word_crop(seed, level)
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
        assert img.shape[0] == 32 and 1 <= img.shape[1] <= 256
        assert label and normalize_text(label) == label
        assert img.std() > 3  # not a blank image
    a, la = gen.word_crop(5, level, height=24, max_width=64)
    b, lb = gen.word_crop(5, level, height=24, max_width=64)
    assert a.shape[0] == 24 and a.shape[1] <= 64
    assert la == lb and a.tobytes() == b.tobytes()


@needs_words
def test_real_crop_filter(gen):
    assert len(gen.real_crops) > 3000
    labels = [t for _, t in gen.real_crops]
    assert all(t and normalize_text(t) == t for t in labels)
    paths = {os.path.basename(p) for p, _ in gen.real_crops}
    assert "word_1.png" not in paths  # "Genaxis Theatre": a space, not just punctuation
    assert "word_1013.png" in paths  # READER" -> reader


def test_augment_is_training_only_variety(gen):
    """Without augment the scenes are the fixed evaluation set; with it, level 0 is untouched and
    the harder levels get letter-spaced, squeezed and larger words, still labelled tightly."""
    aug = SynthGenerator(fonts=gen.fonts, vocabulary=gen.vocabulary, real_crops=gen.real_crops, augment=True)
    assert aug.scene(4, 0).image.tobytes() == gen.scene(4, 0).image.tobytes()
    assert any(aug.scene(s, 2).image.tobytes() != gen.scene(s, 2).image.tobytes() for s in range(4))
    for seed in range(6):
        s = aug.scene(seed, 2, height=320, width=640)
        _check_scene(s, 320, 640)
    assert max(np.linalg.norm(wd.quad[3] - wd.quad[0]) for seed in range(40)
               for wd in aug.scene(seed, 2, height=320, width=640).words) > 70  # the levels stop at 64
    for seed in range(4):
        img, label = aug.word_crop(seed, 2)
        assert img.shape[0] == 32 and label


def test_small_text_draws_level_two_words_small(gen):
    """--small-text 1: every level-2 scene word is drawn 8-24 px tall (the quad, warped, a little more);
    level 1 and 0 are untouched, and 0 keeps the augmented scenes as they were."""
    kw = dict(fonts=gen.fonts, vocabulary=gen.vocabulary, real_crops=gen.real_crops, augment=True)
    aug, small = SynthGenerator(**kw), SynthGenerator(small_text=1.0, **kw)
    assert SynthGenerator(small_text=0.0, **kw).scene(3, 2).image.tobytes() == aug.scene(3, 2).image.tobytes()
    assert small.scene(3, 1).image.tobytes() == aug.scene(3, 1).image.tobytes()

    def heights(g):
        return [(np.linalg.norm(w.quad[3] - w.quad[0]) + np.linalg.norm(w.quad[2] - w.quad[1])) / 2
                for seed in range(12) for w in g.scene(seed, 2, height=320, width=640).words]

    hs, ha = heights(small), heights(aug)
    assert len(hs) > 20 and max(hs) < 40 and np.median(hs) < 20
    assert max(ha) > 40   # without it the level's sizes reach far above
    with pytest.raises(ValueError, match="small_text"):
        SynthGenerator(small_text=1.5, **kw)


def test_letter_spacing_and_squeeze_change_the_ink_box(gen):
    rng = np.random.default_rng
    font_of = {"fonts": gen.fonts[:1]}
    one = SynthGenerator(vocabulary=["x"], **font_of)

    def width(**style):
        _, _, (x0, _, x1, _) = one._render_masks(rng(0), "HOTEL", 30, 1, dict(pad=2, **style))
        return x1 - x0

    plain = width()
    assert width(spacing=0.5) > plain + 4 * 0.5 * 30 / 0.72 * 0.8   # four gaps of about half the font size
    assert width(squeeze=0.6) == pytest.approx(0.6 * plain, abs=3)
    assert width(squeeze=1.3) == pytest.approx(1.3 * plain, abs=3)
