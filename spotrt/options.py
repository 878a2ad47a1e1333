"""Option values shared by the subcommands and the API, parsed and checked in one place.

A bad value is one SpotrtError line naming the option, what was found and what was expected.
"""

from __future__ import annotations

from .errors import SpotrtError

MULTIPLE = 32  # image sizes are multiples of the backbone's largest stride


def parse_size(text, what: str = "--input-size", multiple: int = MULTIPLE) -> tuple[int, int]:
    """'384x640' -> (384, 640), both positive multiples of `multiple`."""
    expected = f"HEIGHTxWIDTH with both positive multiples of {multiple}, e.g. 384x640"
    parts = str(text).lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise SpotrtError(f"{what}: found {text!r}, expected {expected}")
    h, w = (int(p) for p in parts)
    return check_size((h, w), what, multiple)


def check_size(size, what: str = "input size", multiple: int = MULTIPLE) -> tuple[int, int]:
    """(h, w) -> (h, w) when both are positive multiples of `multiple`."""
    h, w = (int(v) for v in size)
    if h < multiple or w < multiple or h % multiple or w % multiple:
        raise SpotrtError(f"{what}: found {h}x{w}, expected HEIGHTxWIDTH with both positive multiples of "
                          f"{multiple}, e.g. 384x640")
    return h, w


def set_min_score(spotter, min_score: float | None) -> None:
    """Use `min_score` as the spotter's word-score threshold (None: keep the model's)."""
    if min_score is not None:
        spotter.cfg = spotter.cfg.replace(word_score_thresh=min_score)


def check_min_score(min_score) -> float | None:
    """`min_score` as a float in 0..1 (or None), or one clear error line."""
    return None if min_score is None else _number_in("min-score", min_score, 0.0, 1.0, "0: every word read")


SCALE_RANGE = (0.1, 4.0)


def _number_in(what: str, value, lo: float, hi: float, hint: str) -> float:
    """`value` as a float in lo..hi, or one clear error line."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not lo <= number <= hi:  # also rejects NaN
        raise SpotrtError(f"{what}: found {value}, expected a number from {lo} to {hi} ({hint})")
    return number


def check_scale(scale) -> float:
    """`scale` as a float, or one clear error line."""
    lo, hi = SCALE_RANGE
    return _number_in("scale", scale, lo, hi, "1.0: frames as they are")
