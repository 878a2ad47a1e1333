"""Writing user-visible files whole or not at all."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import SpotrtError


def write_bytes_atomic(path, data: bytes, what: str = "output file") -> None:
    """Write through a temporary name and a rename; one SpotrtError line naming `what` on failure."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as exc:
        raise SpotrtError(f"{what} {path}: cannot be written ({exc.strerror}), expected a writable path") from None
