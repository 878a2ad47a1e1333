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


def ensure_dir(path, what: str = "output folder") -> Path:
    """Create `path` (and its parents) and check it can be written; one SpotrtError line if not."""
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SpotrtError(f"{what} {p}: cannot be created ({exc.strerror or exc}), expected a writable folder") from None
    if not os.access(p, os.W_OK):
        raise SpotrtError(f"{what} {p}: not writable, expected a writable folder")
    return p


def check_writable(path, what: str = "output file") -> Path:
    """Fail now, in one line, when the file `path` could not be written later (its folder is created)."""
    p = Path(path)
    if p.is_dir():
        raise SpotrtError(f"{what} {p}: found a folder, expected a file path")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SpotrtError(f"{what} {p}: cannot be written (its folder: {exc.strerror or exc}), "
                          "expected a writable path") from None
    if p.exists():
        if not os.access(p, os.W_OK):
            raise SpotrtError(f"{what} {p}: not writable, expected a writable path")
        return p
    probe = p.with_name(p.name + ".probe")
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise SpotrtError(f"{what} {p}: cannot be written ({exc.strerror or exc}), expected a writable path") from None
    return p


def open_partial(path, what: str = "output file"):
    """(text file, its name) for writing `path` under a '.partial' name; publish it with os.replace."""
    p = check_writable(path, what)
    tmp = p.with_name(p.name + ".partial")
    try:
        return open(tmp, "w", encoding="utf-8"), tmp
    except OSError as exc:
        raise SpotrtError(f"{what} {p}: cannot be written ({exc.strerror or exc}), expected a writable path") from None
