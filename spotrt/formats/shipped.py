"""The model shipped inside the package: its weights and the graphs exported from them.

The graphs let a runtime install without torch read text with the default model. They record the
sha256 of the weights they came from (`spotrt_weights_sha256`); tests/test_shipped_onnx.py fails when
the weights change and the graphs were not exported again. Regenerate them with `make shipped-onnx`,
which runs EXPORT_COMMAND.
"""

from __future__ import annotations

from pathlib import Path

FOLDER = Path(__file__).resolve().parent.parent / "weights"
WEIGHTS = FOLDER / "spotrt_light.safetensors"
ONNX = FOLDER / "spotrt_light.onnx"            # the plugin graph (spotrt::VarRoIPool, spotrt::AttnDecoder)
READ_ONNX = FOLDER / "spotrt_light.read.onnx"  # the recognition graph `read` uses, named in ONNX's metadata
EXPORT_COMMAND = ("spotrt export --model spotrt/weights/spotrt_light.safetensors "
                  "--out spotrt/weights/spotrt_light.onnx --graphs plugin,read")
