"""Character set of the recogniser and label normalisation."""
from __future__ import annotations

DEFAULT_CHARSET = "0123456789abcdefghijklmnopqrstuvwxyz"


def normalize_text(text: str, charset: str = DEFAULT_CHARSET) -> str:
    """Lower-case ``text`` and drop every character that is not in ``charset``."""
    allowed = set(charset)
    return "".join(c for c in text.lower() if c in allowed)
