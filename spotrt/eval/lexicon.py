"""Lexicon correction for ICDAR 2015 end-to-end evaluation (strong / weak / generic vocabularies).

The method's recognized word is replaced by the nearest lexicon word (Levenshtein distance,
case-insensitive; ties go to the word listed first), then the end-to-end protocol scores it.
"""

from __future__ import annotations

import functools
import os
from collections import OrderedDict

import numpy as np

LEXICON_KINDS = ("none", "generic", "weak", "strong")


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (unit cost insert / delete / substitute) between two strings."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def load_lexicon(path) -> list[str]:
    """Read a vocabulary file: one word a line; BOM, CRLF, blank lines and '#' comment lines dropped."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"{path}: lexicon file not found (expected a text file with one word a line)")
    with open(path, encoding="utf-8-sig", errors="replace") as f:
        lines = f.read().split("\n")
    # generic_vocabulary.txt starts with a '#'-commented licence header.
    return [w for w in (line.strip() for line in lines) if w and not w.startswith("#")]


@functools.lru_cache(maxsize=256)
def _load_cached(path: str) -> list[str]:
    return load_lexicon(path)


def lexicon_for(kind: str, image_id: str, lexicon_dir) -> list[str] | None:
    """The ICDAR 2015 lexicon of `kind` ('none', 'generic', 'weak', 'strong') for one image.

    'strong' is the per-image voc_<image_id>.txt. Returns None for 'none'. The returned list is
    cached and shared between calls: do not modify it.
    """
    if kind not in LEXICON_KINDS:
        raise ValueError(f"lexicon kind {kind!r} not known (expected one of {', '.join(LEXICON_KINDS)})")
    if kind == "none":
        return None
    name = {"generic": "generic_vocabulary.txt", "weak": "weak_vocabulary.txt"}.get(kind, f"voc_{image_id}.txt")
    return _load_cached(os.path.abspath(os.path.join(os.fspath(lexicon_dir), name)))


class _LexiconIndex:
    """Upper-cased lexicon words bucketed by length, as code-point matrices for a vectorized DP."""

    def __init__(self, lexicon):
        # Bucketed by the upper-cased length: upper() can lengthen a word ('ß' -> 'SS').
        upper = [w.upper() for w in lexicon]
        self.first: dict[str, int] = {}
        for i, w in enumerate(upper):
            self.first.setdefault(w, i)
        self.alphabet = {c: k for k, c in enumerate(sorted({c for w in upper for c in w}))}
        n_sym = len(self.alphabet) + 1  # the last slot counts characters outside the alphabet
        by_len: dict[int, list[int]] = {}
        for i, w in enumerate(upper):
            by_len.setdefault(len(w), []).append(i)
        self.buckets = {}
        for n, idx in by_len.items():
            codes = np.array([[ord(c) for c in upper[i]] for i in idx], dtype=np.int32).reshape(len(idx), n)
            hist = np.zeros((len(idx), n_sym), dtype=np.int8)
            for r, i in enumerate(idx):
                for c in upper[i]:
                    k = self.alphabet[c]
                    hist[r, k] = min(127, int(hist[r, k]) + 1)  # saturating: still a lower bound
            self.buckets[n] = (np.asarray(idx, dtype=np.int64), codes, hist)
        self.lengths = sorted(self.buckets)
        self.n_sym = n_sym

    def histogram(self, text: str) -> np.ndarray:
        h = np.zeros(self.n_sym, dtype=np.int8)
        for c in text:
            k = self.alphabet.get(c, self.n_sym - 1)
            h[k] = min(127, int(h[k]) + 1)
        return h


_INDEX_CACHE: "OrderedDict[int, tuple[object, int, _LexiconIndex]]" = OrderedDict()


def _index_for(lexicon) -> _LexiconIndex:
    # Keyed by identity so the 88k-word generic index is built once per list object; the entry
    # holds a reference to the list, so its id cannot be reused while cached.
    key = id(lexicon)
    hit = _INDEX_CACHE.get(key)
    if hit is not None and hit[0] is lexicon and hit[1] == len(lexicon):
        _INDEX_CACHE.move_to_end(key)
        return hit[2]
    index = _LexiconIndex(lexicon)
    _INDEX_CACHE[key] = (lexicon, len(lexicon), index)
    while len(_INDEX_CACHE) > 8:
        _INDEX_CACHE.popitem(last=False)
    return index


def _bucket_distances(query: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Edit distance from `query` to every row of `codes` (all rows the same length)."""
    n_words, m = codes.shape
    steps = np.arange(m + 1, dtype=np.int32)
    row = np.broadcast_to(steps, (n_words, m + 1)).copy()
    for i, q in enumerate(query, 1):
        cand = np.empty_like(row)
        cand[:, 0] = i
        cand[:, 1:] = np.minimum(row[:, 1:] + 1, row[:, :-1] + (codes != q))
        # Insertions chain along the row: new[j] = min_k (cand[k] + j - k), a running minimum.
        row = np.minimum.accumulate(cand - steps, axis=1) + steps
    return row[:, m]


def apply_lexicon(text: str, lexicon) -> str:
    """Nearest lexicon word to `text` by edit distance, case-insensitive; ties go to the first listed.

    Returns the word as spelled in the lexicon; returns `text` unchanged when the lexicon is empty.
    """
    if not lexicon:
        return text
    index = _index_for(lexicon)
    exact = index.first.get(text.upper())
    if exact is not None:
        return lexicon[exact]
    query = np.array([ord(c) for c in text.upper()], dtype=np.int32)
    n = len(query)
    qhist = index.histogram(text.upper())
    # An upper bound first: for equal lengths the Hamming distance bounds the edit distance.
    limit = n + max(index.lengths)
    if n in index.buckets:
        limit = int((index.buckets[n][1] != query).sum(1).min())
    best_d, best_i = limit + 1, None
    # Visit lengths by |length difference|, a lower bound on the distance, and stop once the bound
    # exceeds the best distance (equal bounds are still visited: they may tie with a lower index).
    for ln in sorted(index.lengths, key=lambda ln: (abs(ln - n), ln)):
        bound_d = min(best_d, limit)
        if abs(ln - n) > bound_d:
            break
        idx, codes, hist = index.buckets[ln]
        # Character-count difference also bounds the edit distance from below: run the DP only
        # on words that could still beat or tie the best so far.
        # With counts differing by L1 in total, the bound max(surplus, deficit) is (L1 + |dlen|) / 2.
        l1 = np.abs(hist - qhist).sum(1, dtype=np.int32)
        keep = l1 <= 2 * bound_d - abs(ln - n)
        if not keep.any():
            continue
        idx, codes = idx[keep], codes[keep]
        d = _bucket_distances(query, codes) if ln else np.full(len(idx), n, dtype=np.int32)
        dmin = int(d.min())
        i = int(idx[d == dmin].min())
        if dmin < best_d or (dmin == best_d and i < best_i):
            best_d, best_i = dmin, i
    return lexicon[best_i]
