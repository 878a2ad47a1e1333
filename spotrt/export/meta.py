"""What an exported spotrt graph declares (no torch here: the runtime reads these too)."""

from __future__ import annotations

from pathlib import Path

FORMAT = "spotrt-onnx-1"
KIND_PLUGIN = "plugin"
KIND_PORTABLE = "portable"
KIND_READ = "read"
IR_VERSION = 10  # ONNX Runtime 1.18 (the floor) reads IR <= 10; onnx 1.23 writes 14 by default


def ir_version_for_ort() -> int:
    return IR_VERSION


def sibling_paths(plugin_path) -> dict[str, Path]:
    """X.onnx -> {plugin: X.onnx, portable: X.portable.onnx, read: X.read.onnx}."""
    p = Path(plugin_path)
    stem = p.name[: -len(".onnx")] if p.name.endswith(".onnx") else p.name
    return {KIND_PLUGIN: p.with_name(stem + ".onnx"), KIND_PORTABLE: p.with_name(stem + ".portable.onnx"),
            KIND_READ: p.with_name(stem + ".read.onnx")}
