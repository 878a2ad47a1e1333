"""`spotrt build`: an exported spotrt graph -> TensorRT engine `E` + `E.json` (imports tensorrt lazily).

    build_engine("export/model.int8.onnx", precision="int8", save_engine="export/model.engine")

Precision (TensorRT 10.3 .. 11.x; feature-detected with hasattr, never by version string):
- a strongly typed network where `NetworkDefinitionCreationFlag.STRONGLY_TYPED` exists (all of
  them): types come from the graph. fp32 = the graph as exported; fp16 = the graph cast to float16
  (export/fp16.py; plugins and NMS stay float32); int8 = a Q/DQ graph from `spotrt calibrate`
  (its int32 bias DequantizeLinear nodes, for ONNX Runtime, folded to float first);
- otherwise builder flags (`BuilderFlag.FP16` / `BuilderFlag.INT8`, where they still exist);
- `calib_method="implicit"`: TensorRT's own entropy calibrator (IInt8EntropyCalibrator2 with a
  calibration cache) on a float graph, only where the installed TensorRT still has it (10.x; 11.x
  removed it) - a weakly typed network with the INT8 flag.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import SpotrtError
from ..fileio import write_bytes_atomic
from ..formats.digest import sha256_bytes, sha256_file
from ..formats.engine import compute_capability, make_metadata, write_metadata
from ..formats.onnx_graph import SPOTTING_KINDS, load_graph
from ..plugins.tensorrt_import import import_tensorrt, require_gpu

PRECISIONS = ("fp32", "fp16", "int8")
CALIB_METHODS = ("qdq", "implicit")


def has_qdq(proto) -> bool:
    return any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in proto.graph.node)


def prepare_graph(proto, precision: str, strongly_typed: bool, implicit: bool):
    """The ONNX TensorRT parses, for a precision; SpotrtError when the graph cannot give it."""
    from ..calibration.qdq import fold_int32_dequantize
    from .fp16 import to_float16

    qdq = has_qdq(proto)
    if precision == "int8" and not qdq and not implicit:
        raise SpotrtError("model: found no QuantizeLinear/DequantizeLinear nodes, expected a Q/DQ graph for int8 "
                          "(run spotrt calibrate first, or --calib-method implicit where TensorRT 10.x still has it)")
    if precision != "int8" and qdq:
        raise SpotrtError(f"model: is a Q/DQ (int8) graph, expected the float graph for {precision}")
    if implicit and qdq:
        raise SpotrtError("model: is a Q/DQ graph, expected the float graph for --calib-method implicit")
    import onnx

    model = onnx.ModelProto.FromString(proto.SerializeToString())
    if qdq:
        fold_int32_dequantize(model)
    if precision == "fp16" and strongly_typed:
        model = to_float16(model)
    return model


class _Logger:
    """A TensorRT logger that keeps the errors for the one-line message."""

    def __init__(self, trt, verbose: bool):
        self.logger = trt.Logger(trt.Logger.INFO if verbose else trt.Logger.WARNING)


def _parser_errors(parser) -> str:
    lines = []
    for i in range(parser.num_errors):
        err = parser.get_error(i)
        lines.append(str(err.desc()) if hasattr(err, "desc") else str(err))
    return "; ".join(lines)[:400] or "no details"


def _implicit_calibrator(trt, batches, cache_path: Path):
    """TensorRT's entropy calibrator over preprocessed batches, with a calibration cache file."""
    from ..plugins import nvrtc

    base = trt.IInt8EntropyCalibrator2 if hasattr(trt, "IInt8EntropyCalibrator2") else None
    if base is None:
        raise SpotrtError("--calib-method implicit: this TensorRT has no IInt8EntropyCalibrator2 (removed in 11.x), "
                          "expected a Q/DQ graph from spotrt calibrate")

    class EntropyCalibrator(base):
        def __init__(self):
            base.__init__(self)
            self.batches = list(batches)
            self.index = 0
            self.buffer = nvrtc.DeviceBuffer(self.batches[0].nbytes) if self.batches else None

        def get_batch_size(self):
            return int(self.batches[0].shape[0]) if self.batches else 1

        def get_batch(self, names):
            if self.index >= len(self.batches):
                return None
            self.buffer.copy_from(self.batches[self.index])
            self.index += 1
            return [int(self.buffer.ptr)]

        def read_calibration_cache(self):
            return cache_path.read_bytes() if cache_path.is_file() else None

        def write_calibration_cache(self, cache):
            cache_path.write_bytes(bytes(cache))

    return EntropyCalibrator()


def build_engine(onnx_path, precision: str = "fp32", save_engine=None, workspace_mb: int | None = None,
                 calib_method: str = "qdq", calib_cache=None, images=None, video=None, frames: int = 64,
                 verbose: bool = False) -> Path:
    """Build and save an engine and its metadata; returns the engine path (see the module docstring)."""
    if precision not in PRECISIONS:
        raise SpotrtError(f"precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    if calib_method not in CALIB_METHODS:
        raise SpotrtError(f"--calib-method {calib_method!r}: expected one of {', '.join(CALIB_METHODS)}")
    if workspace_mb is not None and int(workspace_mb) < 1:
        raise SpotrtError(f"--workspace {workspace_mb}: expected megabytes >= 1")
    implicit = calib_method == "implicit"
    if implicit and precision != "int8":
        raise SpotrtError(f"--calib-method implicit: found precision {precision}, expected int8")
    path = Path(onnx_path)
    proto, meta = load_graph(path, SPOTTING_KINDS)
    engine_path = Path(save_engine) if save_engine else path.with_name(
        path.name[: -len(".onnx")] + ".engine" if path.name.endswith(".onnx") else path.name + ".engine")
    trt = import_tensorrt()
    arch = require_gpu()

    flag_enum = trt.NetworkDefinitionCreationFlag
    strongly_typed = hasattr(flag_enum, "STRONGLY_TYPED") and not implicit
    model = prepare_graph(proto, precision, strongly_typed, implicit)
    plugins = {}
    if any(n.domain == "spotrt" for n in model.graph.node):
        from ..plugins.trt_register import register_plugins

        plugins = register_plugins(arch)

    log = _Logger(trt, verbose)
    builder = trt.Builder(log.logger)
    flags = (1 << int(flag_enum.STRONGLY_TYPED)) if strongly_typed else 0
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, log.logger)
    if not parser.parse(model.SerializeToString(), str(path)):
        raise SpotrtError(f"model {path}: TensorRT's ONNX parser refused it ({_parser_errors(parser)})")
    config = builder.create_builder_config()
    if workspace_mb:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mb) << 20)
    calibration = "qdq" if precision == "int8" and not implicit else None
    if not strongly_typed:
        if precision == "fp16":
            if hasattr(trt.BuilderFlag, "FP16"):
                config.set_flag(trt.BuilderFlag.FP16)
            else:
                raise SpotrtError("precision fp16: this TensorRT has neither strongly typed networks nor "
                                  "BuilderFlag.FP16, expected one of them")
        if precision == "int8":
            if not (hasattr(trt, "IInt8EntropyCalibrator2") and hasattr(trt.BuilderFlag, "INT8")
                    and hasattr(config, "int8_calibrator")):
                raise SpotrtError("--calib-method implicit: this TensorRT has no implicit INT8 calibrator "
                                  "(removed in 11.x), expected a Q/DQ graph from spotrt calibrate")
            if hasattr(trt.BuilderFlag, "INT8"):
                config.set_flag(trt.BuilderFlag.INT8)
            batches = _implicit_batches(meta, images, video, frames, calib_cache)
            cache = Path(calib_cache) if calib_cache else engine_path.with_name(engine_path.name + ".calib")
            if hasattr(config, "int8_calibrator"):
                config.int8_calibrator = _implicit_calibrator(trt, batches, cache)
            calibration = f"implicit-entropy:{cache.name}"
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise SpotrtError(f"model {path}: TensorRT could not build a {precision} engine (see the log above), expected "
                          "a buildable graph")
    data = bytes(serialized)
    inputs = {}
    for i in range(network.num_inputs):
        t = network.get_input(i)
        inputs[t.name] = [int(d) for d in t.shape]
    write_bytes_atomic(engine_path, data, "engine")
    write_metadata(engine_path, make_metadata(
        onnx_name=path.name, onnx_sha256=sha256_file(path), engine_sha256=sha256_bytes(data),
        tensorrt_version=str(getattr(trt, "__version__", "unknown")), compute_capability=compute_capability(arch),
        gpu_name=_gpu_name(), precision=precision, inputs=inputs, plugins=plugins,
        spotrt_metadata={k: v for k, v in meta.items() if k.startswith("spotrt_")},
        strongly_typed=strongly_typed, calibration=calibration))
    return engine_path


def _implicit_batches(meta, images, video, frames, calib_cache):
    from ..calibration.frames import calibration_batches, image_frames, video_frames

    if images is None and video is None:
        if calib_cache and Path(calib_cache).is_file():
            h, w = (int(v) for v in meta["spotrt_input_size"].split("x"))
            import numpy as np

            # TensorRT reads the cache and asks for no batch; one placeholder sizes the buffer.
            return [np.zeros((int(meta.get("spotrt_batch", "1")), 3, h, w), np.float32)]
        raise SpotrtError("--calib-method implicit: found no --images, --video or existing --calib-cache, expected "
                          "representative frames")
    h, w = (int(v) for v in meta["spotrt_input_size"].split("x"))
    mean, std = json.loads(meta["spotrt_mean"]), json.loads(meta["spotrt_std"])
    source = image_frames(images, frames) if images is not None else video_frames(video, frames)
    return calibration_batches(source, mean, std, (h, w), int(meta.get("spotrt_batch", "1")))


def _gpu_name() -> str:
    try:
        from cuda.bindings import driver

        err, dev = driver.cuDeviceGet(0)
        err, name = driver.cuDeviceGetName(256, dev)
        return name.split(b"\x00")[0].decode(errors="replace").strip()
    except Exception:  # the name is informative only
        return "unknown"
