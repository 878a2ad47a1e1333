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
