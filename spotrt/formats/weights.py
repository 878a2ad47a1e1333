"""A weights file's metadata, read without torch: a safetensors file whose metadata holds the
model's config (written by spotrt train; the tensors themselves are loaded by spotrt.model.weights)."""

from __future__ import annotations

from pathlib import Path

from ..errors import SpotrtError

FORMAT = "spotrt-weights-1"


def read_metadata(path, require_config: bool = False) -> dict[str, str]:
    """The metadata of a weights file; SpotrtError (one line) for a missing file or one that is not
    safetensors, and with `require_config` for one without spotrt's format and config."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise SpotrtError(f"weights {path}: file not found, expected a .safetensors weights file")
    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = dict(f.metadata() or {})
    except Exception as exc:  # safetensors raises several types for a file that is not one
        raise SpotrtError(f"weights {path}: not a safetensors file ({exc}), expected spotrt weights") from None
    if require_config and (meta.get("format") != FORMAT or "config" not in meta):
        raise SpotrtError(f"weights {path}: found metadata format {meta.get('format')!r}, expected {FORMAT!r} with a "
                          "config (a file written by spotrt train)")
    return meta
