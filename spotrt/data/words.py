"""Open-vocabulary text for the synthetic generator: English words by frequency, and random strings.

The recognizer must read letters, not recall a vocabulary: a third of the text drawn here is
random strings (letters, digits, mixed case, codes like "B2K-47", prices, phone numbers, dates,
single letters and long strings up to the decoder's length). The word list comes from `wordfreq`
(a training extra), never from an ICDAR lexicon.

`TextSource.draw(rng)` -> (text as rendered, label, kind). The label is the rendered text
lower-cased with every character outside the charset dropped, exactly what the ICDAR protocol
compares.
"""
from __future__ import annotations

import functools
import string

import numpy as np

from .charset import DEFAULT_CHARSET, normalize_text

KINDS = ("word", "random", "digits")
# share of each kind of random string among the random ones
_RANDOM_KINDS = (
    ("letters", 0.26), ("alnum", 0.16), ("digits", 0.14), ("code", 0.12), ("price", 0.08),
    ("phone", 0.06), ("date", 0.06), ("single", 0.06), ("long", 0.06),
)


@functools.lru_cache(maxsize=4)
def english_words(n: int = 60000, exponent: float = 0.3) -> tuple[tuple[str, ...], np.ndarray]:
    """The `n` most frequent English words of `wordfreq` and sampling weights (frequency **
    `exponent`: frequent words come up more often, rare ones still do).

    Raises ImportError with how to install when wordfreq is missing.
    """
    try:
        from wordfreq import top_n_list, word_frequency
    except ImportError:
        raise ImportError("wordfreq is not installed: pip install -e '.[train]' (the word source of "
                          "the synthetic generator)") from None
    words, weights = [], []
    for w in top_n_list("en", n):
        if not any(c.isalnum() for c in w) or not all(c.isascii() for c in w):
            continue
        words.append(w)
        weights.append(word_frequency(w, "en") ** exponent)
    p = np.asarray(weights, np.float64)
    return tuple(words), p / p.sum()


# Symbols scene text puts around words (hashtags, prices, quotes, exclamations); never labelled.
_SYMBOLS_BEFORE = "#@$&*(\"'[+"
_SYMBOLS_AFTER = "!?.,:;)\"'%*]+"
_PAIRS = {"(": ")", "\"": "\"", "'": "'", "[": "]"}  # symbols shown on both sides of a word


class TextSource:
    """Draws text to render: `random_share` random strings, the rest English words."""

    def __init__(self, charset: str = DEFAULT_CHARSET, max_len: int = 16, random_share: float = 1 / 3,
                 words: tuple[tuple[str, ...], np.ndarray] | None = None, punctuation: float = 0.0):
        """`punctuation`: share of the drawn texts shown with symbols around them ("#black",
        "SALE!", "(open)") that the label leaves out, so the reader learns to skip what is not in
        its charset instead of reading "#" as "h"; training only (0 keeps every held-out set as it was)."""
        for name, share in (("random_share", random_share), ("punctuation", punctuation)):
            if not 0.0 <= share <= 1.0:
                raise ValueError(f"{name}: found {share}, expected a fraction in [0, 1]")
        self.charset, self.max_len, self.random_share = charset, max_len, random_share
        self.punctuation = float(punctuation)
        self.symbols_before = "".join(c for c in _SYMBOLS_BEFORE if c not in charset)
        self.symbols_after = "".join(c for c in _SYMBOLS_AFTER if c not in charset)
        self.words, self.p = words if words is not None else english_words()
        self._cum = np.cumsum(self.p)
        self.letters = "".join(c for c in string.ascii_lowercase if c in charset)
        self.digits = "".join(c for c in string.digits if c in charset) or self.letters
        self.alnum = self.letters + self.digits
        kinds, shares = zip(*_RANDOM_KINDS)
        self._kinds = kinds
        self._kind_cum = np.cumsum(shares) / sum(shares)
        self.last_kind = "word"

    def _case(self, rng, text: str) -> str:
        r = rng.random()
        if r < 0.35:
            return text.upper()
        if r < 0.65:
            return text
        if r < 0.9:
            return text[:1].upper() + text[1:]
        return "".join(c.upper() if rng.random() < 0.5 else c for c in text)

    def _chars(self, rng, pool: str, n: int) -> str:
        return "".join(pool[int(i)] for i in rng.integers(0, len(pool), n))

    def _random(self, rng) -> tuple[str, str]:
        kind = self._kinds[int(np.searchsorted(self._kind_cum, rng.random(), side="right"))]
        d, a = self.digits, self.alnum
        if kind == "letters":
            return self._case(rng, self._chars(rng, self.letters, int(rng.integers(2, 11)))), "random"
        if kind == "alnum":
            return self._case(rng, self._chars(rng, a, int(rng.integers(2, 11)))), "random"
        if kind == "digits":
            return self._chars(rng, d, int(rng.integers(1, 9))), "digits"
        if kind == "code":  # B2K-47, AX7, 12B
            parts = [self._chars(rng, a, int(rng.integers(1, 5))).upper() for _ in range(int(rng.integers(1, 3)))]
            return "-".join(parts), "random"
        if kind == "price":
            cur = "$" if rng.random() < 0.5 else ""
            whole = str(int(rng.integers(0, 10 ** int(rng.integers(1, 5)))))
            cents = f".{int(rng.integers(0, 100)):02d}" if rng.random() < 0.6 else ""
            return cur + whole + cents, "digits"
        if kind == "phone":
            groups = [self._chars(rng, d, int(n)) for n in rng.integers(2, 5, int(rng.integers(2, 4)))]
            return ("-" if rng.random() < 0.6 else ".").join(groups), "digits"
        if kind == "date":
            day, month, year = int(rng.integers(1, 29)), int(rng.integers(1, 13)), int(rng.integers(1950, 2040))
            sep = "/.-"[int(rng.integers(3))]
            return f"{day:02d}{sep}{month:02d}{sep}{year if rng.random() < 0.5 else year % 100:02d}", "digits"
        if kind == "single":
            return self._chars(rng, a, 1).upper() if rng.random() < 0.6 else self._chars(rng, a, 1), "random"
        # long: letters (and a few digits) up to the decoder's length
        n = int(rng.integers(11, self.max_len + 1))
        return self._case(rng, self._chars(rng, self.letters * 4 + d, n)), "random"

    def draw(self, rng: np.random.Generator) -> tuple[str, str, str]:
        """-> (text to render, label, kind in KINDS); the kind is also kept in `last_kind`."""
        shown, label, kind = self._draw(rng)
        if self.punctuation and rng.random() < self.punctuation:
            shown = self._decorate(rng, shown)
        self.last_kind = kind
        return shown, label, kind

    def _decorate(self, rng: np.random.Generator, shown: str) -> str:
        """`shown` with one or two symbols outside the charset before and/or after it (the label is unchanged)."""
        before, after = self.symbols_before, self.symbols_after
        r = rng.random()
        if before and (r < 0.4 or not after):
            return self._chars(rng, before, 1 + int(rng.random() < 0.15)) + shown
        if after and (r < 0.85 or not before):
            return shown + self._chars(rng, after, 1 + int(rng.random() < 0.15))
        opening = "([\"'"[int(rng.integers(4))]
        if opening in before and _PAIRS[opening] in after:
            return opening + shown + _PAIRS[opening]
        return shown

    def _draw(self, rng: np.random.Generator) -> tuple[str, str, str]:
        for _ in range(20):
            if rng.random() < self.random_share:
                shown, kind = self._random(rng)
            else:
                w = self.words[min(int(np.searchsorted(self._cum, rng.random(), side="right")), len(self.words) - 1)]
                shown, kind = self._case(rng, w), "word"
            label = normalize_text(shown, self.charset)
            if 1 <= len(label) <= self.max_len:
                return shown, label, kind
        # twenty draws outside the charset (a charset of few characters): a string of its own characters
        shown = self._chars(rng, self.alnum or self.charset, min(4, self.max_len))
        return shown, normalize_text(shown, self.charset), "random"
