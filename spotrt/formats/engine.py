"""`E.json` beside a TensorRT engine `E`: what it was built from and for. No tensorrt, no torch here.

An engine is only valid for the TensorRT version and GPU (compute capability) that built it, and for
the ONNX graph it came from. `spotrt build` writes this file; the TensorRT backend reads it before
deserializing and refuses, in one line, an engine without it or built for something else.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import SpotrtError
from ..fileio import write_bytes_atomic

FORMAT = "spotrt-engine-1"
REQUIRED = ("format", "onnx_sha256", "tensorrt_version", "compute_capability", "precision", "inputs", "plugins",
            "spotrt_metadata", "engine_sha256")


def meta_path(engine) -> Path:
    """`model.engine` -> `model.engine.json`."""
    p = Path(engine)
    return p.with_name(p.name + ".json")


def compute_capability(arch: str) -> str:
    """'sm_87' -> '8.7'."""
    digits = arch[3:] if arch.startswith("sm_") else arch
    if not digits.isdigit() or len(digits) < 2:
        raise ValueError(f"arch {arch!r}: expected 'sm_XY'")
    return f"{digits[:-1]}.{digits[-1]}"


def make_metadata(*, onnx_name: str, onnx_sha256: str, engine_sha256: str, tensorrt_version: str,
                  compute_capability: str, gpu_name: str, precision: str, inputs: dict, plugins: dict,
                  spotrt_metadata: dict, strongly_typed: bool, calibration: str | None) -> dict:
    return {"format": FORMAT, "onnx": onnx_name, "onnx_sha256": onnx_sha256, "engine_sha256": engine_sha256,
            "tensorrt_version": tensorrt_version, "compute_capability": compute_capability, "gpu": gpu_name,
            "precision": precision, "inputs": inputs, "plugins": plugins, "strongly_typed": strongly_typed,
            "calibration": calibration, "spotrt_metadata": spotrt_metadata}


def write_metadata(engine, meta: dict) -> Path:
    """Write `E.json` through a temporary name."""
    path = meta_path(engine)
    write_bytes_atomic(path, (json.dumps(meta, indent=2) + "\n").encode("utf-8"))
    return path


def read_metadata(engine) -> dict:
    """The metadata of an engine; SpotrtError when missing or not spotrt's."""
    path = meta_path(engine)
    if not path.is_file():
        raise SpotrtError(f"engine {engine}: found no {path.name} beside it, expected the metadata spotrt build writes "
                          "(rebuild the engine with spotrt build)")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SpotrtError(f"engine metadata {path}: unreadable ({exc}), expected JSON written by spotrt build") from None
    missing = [k for k in REQUIRED if k not in meta] if isinstance(meta, dict) else list(REQUIRED)
    if missing or meta.get("format") != FORMAT:
        raise SpotrtError(f"engine metadata {path}: found format {meta.get('format') if isinstance(meta, dict) else None!r}"
                          f" missing {missing}, expected {FORMAT!r} written by spotrt build")
    return meta


def check_compatible(engine, meta: dict, *, tensorrt_version: str, compute_capability: str,
                     engine_sha256: str | None = None, onnx_sha256: str | None = None) -> None:
    """SpotrtError (one line) when the engine was built for another TensorRT, GPU or model."""
    name = Path(engine).name
    if meta["tensorrt_version"] != tensorrt_version:
        raise SpotrtError(f"engine {name}: built with TensorRT {meta['tensorrt_version']}, found TensorRT "
                          f"{tensorrt_version} here; expected the same version (rebuild with spotrt build)")
    if meta["compute_capability"] != compute_capability:
        raise SpotrtError(f"engine {name}: built for GPU compute capability {meta['compute_capability']}, found "
                          f"{compute_capability} here; expected the same GPU (rebuild on this device)")
    if engine_sha256 is not None and meta["engine_sha256"] != engine_sha256:
        raise SpotrtError(f"engine {name}: its sha256 {engine_sha256[:12]} differs from {meta['engine_sha256'][:12]} in "
                          f"{meta_path(engine).name}, expected the engine that file describes (rebuild)")
    if onnx_sha256 is not None and meta["onnx_sha256"] != onnx_sha256:
        raise SpotrtError(f"engine {name}: built from ONNX sha256 {meta['onnx_sha256'][:12]}, found the model "
                          f"{meta.get('onnx')} now at {onnx_sha256[:12]}; expected the same model (rebuild the engine)")
