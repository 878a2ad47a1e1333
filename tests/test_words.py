"""Open-vocabulary text source (spotrt.data.words) and the held-out font split."""
from __future__ import annotations

import collections

import numpy as np
import pytest

from spotrt.data.charset import normalize_text
from spotrt.data.fonts import HELDOUT_FAMILIES, family, find_fonts
from spotrt.data.words import KINDS, TextSource

WORDS = (("the", "street", "coffee", "don't", "Zurich"), np.full(5, 0.2))


def test_draw_labels_are_normalised_rendered_text():
    src = TextSource(words=WORDS)
    rng = np.random.default_rng(0)
    kinds = collections.Counter()
    for _ in range(3000):
        shown, label, kind = src.draw(rng)
        assert kind in KINDS
        assert label == normalize_text(shown) and 1 <= len(label) <= 16
        kinds[kind] += 1
    random_share = (kinds["random"] + kinds["digits"]) / 3000
    assert 0.28 < random_share < 0.39  # about a third
    assert kinds["word"] > 1800


def test_random_strings_cover_codes_prices_dates_and_long_words():
    src = TextSource(words=WORDS, random_share=1.0)
    rng = np.random.default_rng(1)
    shown = [src.draw(rng)[0] for _ in range(3000)]
    assert any("-" in s and any(c.isdigit() for c in s) and any(c.isalpha() for c in s) for s in shown)  # B2K-47
    assert any(s.startswith("$") for s in shown)                                                       # prices
    assert any(s.count("/") == 2 or s.count(".") == 2 for s in shown)                                  # dates
    assert any(len(s) == 1 for s in shown)                                                              # single
    assert max(len(normalize_text(s)) for s in shown) == 16                                             # decoder max
    assert any(s != s.lower() and s != s.upper() for s in shown if s.isalpha() and len(s) > 3)          # mixed case


def test_word_source_from_wordfreq_is_large_and_not_an_icdar_lexicon():
    pytest.importorskip("wordfreq")
    from spotrt.data.words import english_words

    words, p = english_words()
    assert len(words) > 40000 and abs(p.sum() - 1) < 1e-9
    assert p[0] > p[-1] > 0  # frequent words more often, rare ones still possible
    src = TextSource()
    rng = np.random.default_rng(2)
    labels = {src.draw(rng)[1] for _ in range(2000)}
    assert len(labels) > 1200  # an open vocabulary, not a few thousand repeated words


def test_bad_share_is_one_line():
    with pytest.raises(ValueError, match="random_share: found 1.5"):
        TextSource(words=WORDS, random_share=1.5)


def test_family_names():
    assert family("/x/LiberationSerif-BoldItalic.ttf") == "LiberationSerif"
    assert family("/x/FreeSansBoldOblique.ttf") == "FreeSans"
    assert family("/x/Roboto-Regular.ttf") == "Roboto"
    assert family("/x/B612Mono-Italic.ttf") == "B612Mono"


def test_font_splits_are_disjoint_and_legacy_is_unchanged():
    try:
        legacy = find_fonts("legacy")
    except RuntimeError as e:  # pragma: no cover - depends on the machine
        pytest.skip(str(e))
    train = find_fonts("train")
    assert set(legacy) <= set(train)
    assert not {family(f) for f in train} & set(HELDOUT_FAMILIES)
    try:
        held = find_fonts("heldout")
    except RuntimeError:
        pytest.skip("no held-out font family installed (make fonts)")
    assert {family(f) for f in held} <= set(HELDOUT_FAMILIES)
    assert not set(held) & set(train)
    with pytest.raises(ValueError, match="font split: found 'x'"):
        find_fonts("x")


def test_an_alphabet_that_keeps_no_word_still_draws_its_own_characters():
    """A digits-only charset keeps none of the words: every label is still a string of that charset
    (a fallback outside it would train the recognizer on a class it does not have), for the open
    source and for the generator's own vocabulary (the built-in one when no ICDAR crops lie beside
    the repository)."""
    from spotrt.data.synth import SynthGenerator

    digits = "0123456789"
    src = TextSource(charset=digits, max_len=8, random_share=0.0, words=WORDS)
    rng = np.random.default_rng(0)
    labels = [src.draw(rng)[1] for _ in range(50)]
    assert all(lab and set(lab) <= set(digits) and len(lab) <= 8 for lab in labels)
    fonts = find_fonts()
    if not fonts:
        pytest.skip("no fonts on this machine")
    gen = SynthGenerator(fonts=fonts[:1], vocabulary=["street", "coffee"], charset=digits)
    labels = [gen._text(rng)[1] for _ in range(200)]
    assert all(lab and set(lab) <= set(digits) for lab in labels)


def test_punctuation_shows_symbols_the_label_leaves_out():
    """--punctuation: a share of the texts is shown as "#black", "SALE!", "(open)"; the label stays
    the word, and a share of 0 draws exactly what it drew before (held-out sets do not move)."""
    plain, deco = TextSource(words=WORDS), TextSource(words=WORDS, punctuation=0.5)
    r0, r1, r2 = (np.random.default_rng(3) for _ in range(3))
    assert [TextSource(words=WORDS, punctuation=0.0).draw(r0) for _ in range(200)] == [plain.draw(r1) for _ in range(200)]
    drawn = [deco.draw(r2) for _ in range(2000)]
    decorated = [(s, lab) for s, lab, _ in drawn if s[:1] in "#@$&*(\"'[+" or s[-1:] in "!?.,:;)\"'%*]+"]
    assert 0.4 < len(decorated) / len(drawn) < 0.6
    assert all(lab == normalize_text(s) and lab and not set(lab) & set("#@$&*()!?.,:;\"'%[]+") for s, lab, _ in drawn)
    assert any(s.startswith("#") for s, _ in decorated) and any(s.endswith("!") for s, _ in decorated)
    with pytest.raises(ValueError, match="punctuation: found 2"):
        TextSource(words=WORDS, punctuation=2)
