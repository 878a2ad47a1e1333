"""What an exported spotrt graph declares, and loading one with those declarations checked.

`spotrt export` writes these metadata_props into every graph; the runtime, calibration and
`spotrt build` read them back through `load_graph` (no torch here).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import SpotrtError

FORMAT = "spotrt-onnx-1"
KIND_PLUGIN = "plugin"
KIND_PORTABLE = "portable"
KIND_READ = "read"
SPOTTING_KINDS = (KIND_PLUGIN, KIND_PORTABLE)
IR_VERSION = 10  # ONNX Runtime 1.18 (the floor) reads IR <= 10; onnx 1.23 writes 14 by default


def ir_version_for_ort() -> int:
    return IR_VERSION


def sibling_paths(plugin_path) -> dict[str, Path]:
    """X.onnx -> {plugin: X.onnx, portable: X.portable.onnx, read: X.read.onnx}."""
    p = Path(plugin_path)
    stem = p.name[: -len(".onnx")] if p.name.endswith(".onnx") else p.name
    return {KIND_PLUGIN: p.with_name(stem + ".onnx"), KIND_PORTABLE: p.with_name(stem + ".portable.onnx"),
            KIND_READ: p.with_name(stem + ".read.onnx")}


def read_metadata(proto, path) -> dict[str, str]:
    """The spotrt metadata of a loaded graph; SpotrtError for a graph spotrt export did not write."""
    meta = {p.key: p.value for p in proto.metadata_props}
    if meta.get("spotrt_format") != FORMAT or "spotrt_config" not in meta:
        raise SpotrtError(f"model {path}: found an ONNX graph without spotrt metadata (format "
                          f"{meta.get('spotrt_format')!r}), expected a graph written by spotrt export ({FORMAT!r})")
    return meta


def load_graph(path, kinds=None):
    """(proto, spotrt metadata) of the graph at `path`; SpotrtError (one line) for a missing file, a
    file that is not ONNX, a graph without spotrt metadata, or (with `kinds`) a graph of another kind."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise SpotrtError(f"model {path}: file not found, expected an .onnx graph written by spotrt export")
    try:
        proto = onnx.load(str(path))
    except Exception as exc:  # protobuf raises DecodeError and others for a file that is not ONNX
        raise SpotrtError(f"model {path}: not an ONNX file ({type(exc).__name__}), expected an .onnx graph "
                          "written by spotrt export") from None
    meta = read_metadata(proto, path)
    if kinds is not None and meta.get("spotrt_graph") not in kinds:
        raise SpotrtError(f"model {path}: found graph kind {meta.get('spotrt_graph')!r}, expected "
                          f"{' or '.join(repr(k) for k in kinds)}")
    return proto, meta
