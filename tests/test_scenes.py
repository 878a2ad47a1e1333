"""Real training scenes (spotrt.data.scenes): reader, validation split, crop sources, augmenting sampler."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from spotrt.data.readers import read_word_crops
from spotrt.data.scenes import (
    IC15_FRAME,
    SceneSampler,
    crop_sources,
    read_scene_set,
    split_scenes,
    validation_crops,
    word_label,
)

REPO = Path(__file__).resolve().parents[1]
IC15_TRAIN = REPO.parent / "shared" / "data" / "ic15_train"
IC15_WORDS = REPO.parent / "shared" / "data" / "ic15_train_words"
needs_ic15 = pytest.mark.skipif(not (IC15_TRAIN / "gt").is_dir() or not (IC15_WORDS / "gt.txt").is_file(),
                                reason=f"ICDAR 2015 training scenes absent ({IC15_TRAIN})")


def _write_set(root: Path, n: int = 20) -> Path:
    """n stored-size (960x640) scenes: a white word box 'HELLO' at a known place, a don't-care box."""
    (root / "images").mkdir(parents=True)
    (root / "gt").mkdir()
    for i in range(1, n + 1):
        img = np.full((640, 960, 3), 90, np.uint8)
        cv2.rectangle(img, (300, 300), (420, 330), (255, 255, 255), -1)
        cv2.imwrite(str(root / "images" / f"img_{i}.jpg"), img)
        (root / "gt" / f"gt_img_{i}.txt").write_text(
            "300,300,420,300,420,330,300,330,Hello!\n600,100,650,100,650,120,600,120,###\n")
    return root


def test_reader_orders_by_number_and_split_takes_every_tenth(tmp_path):
    recs = read_scene_set(_write_set(tmp_path / "s", 20))
    assert [Path(r.image).name for r in recs[:3]] == ["img_1.jpg", "img_2.jpg", "img_3.jpg"]
    assert recs[0].quads.shape == (2, 4, 2) and recs[0].texts == ["Hello!", "###"]
    train, val = split_scenes(recs)
    assert [Path(r.image).name for r in val] == ["img_10.jpg", "img_20.jpg"]
    assert len(train) == 18 and not {r.image for r in train} & {r.image for r in val}


def test_reader_errors_name_the_folder(tmp_path):
    with pytest.raises(ValueError, match="no images/ and gt/"):
        read_scene_set(tmp_path)
    root = _write_set(tmp_path / "s", 1)
    (root / "gt" / "gt_img_1.txt").unlink()
    with pytest.raises(ValueError, match="img_1.jpg has no gt_img_1.txt"):
        read_scene_set(root)


def test_word_label():
    assert word_label("Hello!") == "hello"
    assert word_label("###") == ""
    assert word_label("café") == ""          # a character outside the charset: detection only
    assert word_label("x" * 17) == ""        # longer than the decoder
    assert word_label("62-03") == "6203"     # inner punctuation dropped: what the charset can read
    assert word_label("(TAXI)") == "taxi"


def test_sampler_maps_boxes_to_the_crop(tmp_path):
    """Without zoom or rotation the word box lands where the warped image has the white box, the
    don't-care region is ignored, and a word cut by the crop edge is ignored too."""
    recs = read_scene_set(_write_set(tmp_path / "s", 1))
    sampler = SceneSampler(recs, scale=(1.0, 1.0), rotate=0.0, focus=1.0, grey=0.0)
    rng = np.random.default_rng(0)
    for _ in range(20):
        s = sampler.sample(rng, 256, 512)
        assert s.image.shape == (256, 512, 3)
        for (x0, y0, x1, y1), text in zip(s.boxes, s.texts):
            if not text:  # trimmed by the crop's edge: detection only
                continue
            assert text == "hello"
            # the stored box (300..420, 300..330) in camera pixels: x * 4/3, y * 9/8
            assert x1 - x0 == pytest.approx(120 * IC15_FRAME[0] / 960, abs=1.5)
            assert y1 - y0 == pytest.approx(30 * IC15_FRAME[1] / 640, abs=1.5)
            inner = s.image[int(y0) + 4:int(y1) - 4, int(x0) + 4:int(x1) - 4].astype(np.float32)
            assert inner.size and inner.mean() > 180  # colour jitter moves it, the white box stays bright
        for x0, y0, x1, y1 in s.ignore:
            assert 0 <= x0 < x1 <= 512 and 0 <= y0 < y1 <= 256
    # a crop whose edge cuts the word: it becomes an ignored region, never a word
    cut = SceneSampler(recs, scale=(1.0, 1.0), rotate=0.0, focus=0.0, grey=0.0, min_inside=0.999)
    found_cut = False
    for seed in range(300):
        s = cut.sample(np.random.default_rng(seed), 64, 64)
        for b in s.boxes:
            assert b[2] - b[0] == pytest.approx(160, abs=1.5)  # only whole words survive
        found_cut |= len(s.ignore) > 0
    assert found_cut


def test_sampler_is_a_pure_function_of_the_rng(tmp_path):
    recs = read_scene_set(_write_set(tmp_path / "s", 3))
    sampler = SceneSampler(recs)
    a = sampler.sample(np.random.default_rng(7), 128, 256)
    b = sampler.sample(np.random.default_rng(7), 128, 256)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.boxes, b.boxes) and a.texts == b.texts


@needs_ic15
def test_real_crops_line_up_with_the_scenes_and_validation_words_are_found():
    recs = read_scene_set(IC15_TRAIN)
    crops = read_word_crops(IC15_WORDS)
    assert len(recs) == 1000
    sources = crop_sources(recs, crops)
    assert sources is not None and len(sources) == len(crops) == 4468
    held = validation_crops(recs, crops)
    _, val = split_scenes(recs)
    expected = sum(1 for r in val for t in r.texts if t.strip() != "###")
    assert len(held) == expected and 0 < expected < 1000
    # the first crop comes from img_1, so it is a training crop
    assert crops[0][0] not in held
    assert crop_sources(recs, crops[1:]) is None


@needs_ic15
def test_real_sampler_yields_words_and_dont_care_regions():
    train, _ = split_scenes(read_scene_set(IC15_TRAIN))
    sampler = SceneSampler(train)
    rng = np.random.default_rng(1)
    words = ignored = labelled = 0
    for _ in range(30):
        s = sampler.sample(rng, 320, 640)
        words += len(s.boxes)
        ignored += len(s.ignore)
        labelled += sum(1 for t in s.texts if t)
        assert (s.boxes[:, 2] > s.boxes[:, 0]).all() and (s.boxes[:, 3] > s.boxes[:, 1]).all()
    assert words > 30 and ignored > 30 and labelled > 0.5 * words


def test_pasted_words_land_where_nothing_is_labelled():
    pytest.importorskip("PIL")
    from spotrt.data.fonts import find_fonts
    from spotrt.data.synth import SynthGenerator

    try:
        gen = SynthGenerator(fonts=find_fonts())
    except RuntimeError as e:  # pragma: no cover - depends on the machine
        pytest.skip(str(e))
    photo = np.random.default_rng(0).integers(60, 200, (240, 480, 3)).astype(np.uint8)
    taken = np.array([[0, 0, 480, 100]], np.float32)  # the top: labelled already
    total = 0
    for seed in range(5):
        out, words = gen.paste_words(photo, taken, seed, 3)
        total += len(words)
        assert out.shape == photo.shape and out.dtype == np.uint8
        for w in words:
            assert w.text and w.quad[:, 1].min() >= 100  # never over the labelled region
        if words:
            changed = np.abs(out.astype(int) - photo.astype(int)).sum(axis=2) > 40
            assert changed[100:].any()
            assert not changed[:96].any()  # the labelled region keeps its pixels
        again, words2 = gen.paste_words(photo, taken, seed, 3)
        assert np.array_equal(out, again) and [w.text for w in words] == [w.text for w in words2]
    assert total >= 5
