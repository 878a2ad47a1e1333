"""Character set of the recogniser and label normalisation."""
from __future__ import annotations

from ..model.config import DEFAULT_CHARSET  # one definition: the model's default

__all__ = ["DEFAULT_CHARSET", "normalize_text"]


def normalize_text(text: str, charset: str = DEFAULT_CHARSET) -> str:
    """Lower-case ``text`` and drop every character that is not in ``charset``."""
    allowed = set(charset)
    return "".join(c for c in text.lower() if c in allowed)
