"""The TensorRT backend: a spotrt engine on the GPU. Imports tensorrt lazily; never imports torch.

    with TensorRTSpotter("export/model.engine") as spotter:    # a Runner (spotrt/runner.py)
        words = spotter.spot(frame)

Loading checks `E.json` (spotrt/formats/engine.py) before touching the engine: it must exist, name this
TensorRT version and this GPU's compute capability, describe this engine file (sha256) and, when the
ONNX it was built from is still beside it (or `onnx=` is given), that graph's sha256. The spotrt
plugins are registered before deserializing. Pinned host and device buffers for every I/O tensor are
allocated once per `load`; `infer` copies the input asynchronously, calls `execute_async_v3` on the backend's own
stream, copies the outputs back and synchronizes once.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import SpotrtError
from ..formats import engine as engine_meta
from ..formats.digest import sha256_bytes, sha256_file
from ..model.config import SpotterConfig
from ..runner import INPUT, OUTPUTS, Runner


class TensorRTSpotter(Runner):
    """Reads words in BGR images with a spotrt TensorRT engine; a Runner (spotrt/runner.py)."""

    name = "tensorrt"

    def __init__(self, engine, onnx=None) -> None:
        from ..plugins.tensorrt_import import import_tensorrt, require_gpu

        self.path = Path(engine)
        self._buffers: list = []
        self.stream = None
        self.context = self.engine = None
        if not self.path.is_file():
            raise SpotrtError(f"engine {self.path}: file not found, expected an engine written by spotrt build")
        self.meta = engine_meta.read_metadata(self.path)
        self._trt = trt = import_tensorrt()
        self._arch = arch = require_gpu()
        data = self.path.read_bytes()
        source = Path(onnx) if onnx else self.path.with_name(str(self.meta.get("onnx", "")))
        if onnx and not source.is_file():
            raise SpotrtError(f"model {source}: file not found, expected the ONNX graph the engine was built from")
        onnx_sha = sha256_file(source) if self.meta.get("onnx") and source.is_file() else None
        self._engine_sha = sha256_bytes(data)
        engine_meta.check_compatible(self.path, self.meta, tensorrt_version=str(getattr(trt, "__version__", "unknown")),
                                     compute_capability=engine_meta.compute_capability(arch),
                                     engine_sha256=self._engine_sha, onnx_sha256=onnx_sha)
        sm = self.meta["spotrt_metadata"]
        try:
            self.cfg = SpotterConfig.from_json(sm["spotrt_config"])
            h, w = (int(v) for v in sm["spotrt_input_size"].split("x"))
            self.batch = int(sm.get("spotrt_batch", "1"))
        except (KeyError, ValueError, TypeError) as exc:
            raise SpotrtError(f"engine metadata {engine_meta.meta_path(self.path)}: spotrt metadata invalid ({exc})") from None
        self.input_size = (h, w)
        self.load()

    def describe(self) -> str:
        return f"engine {self.path}"

    def _load(self) -> None:
        trt = self._trt
        data = self.path.read_bytes()
        if sha256_bytes(data) != self._engine_sha:
            raise SpotrtError(f"engine {self.path}: changed on disk since it was checked, expected the same file")
        if self.meta["plugins"]:
            from ..plugins.trt_register import register_plugins

            register_plugins(self._arch)
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(self.logger)
        self.engine = self.runtime.deserialize_cuda_engine(data)
        if self.engine is None:
            raise SpotrtError(f"engine {self.path}: TensorRT cannot deserialize it (see the log above), expected an "
                              "engine built by spotrt build on this device")
        self.context = self.engine.create_execution_context()
        try:
            self._allocate(trt)
        except BaseException:
            self._close()
            raise

    def _allocate(self, trt) -> None:
        from .cuda_buffers import DeviceMemory, PinnedBuffer, Stream

        self.stream = Stream()
        self.host, self.device, self.inputs, self.outputs = {}, {}, [], []
        for i in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(i)
            shape = tuple(self.engine.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                raise SpotrtError(f"engine {self.path}: tensor {name} has dynamic shape {shape}, expected the static "
                                  "shapes spotrt export writes")
            dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(name)))
            host = PinnedBuffer(shape, dtype)
            self._buffers.append(host)
            dev = DeviceMemory(host.nbytes)
            self._buffers.append(dev)
            self.host[name], self.device[name] = host, dev
            self.context.set_tensor_address(name, dev.ptr)
            (self.inputs if self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT else self.outputs).append(name)
        expected = (self.batch, 3, *self.input_size)
        if self.inputs != [INPUT] or self.host[INPUT].shape != expected or self.host[INPUT].dtype != np.float32:
            found = {n: (str(self.host[n].dtype), self.host[n].shape) for n in self.inputs}
            raise SpotrtError(f"engine {self.path}: found inputs {found}, expected {{'image': ('float32', {expected})}}")
        missing = [o for o in OUTPUTS if o not in self.outputs]
        if missing:
            raise SpotrtError(f"engine {self.path}: outputs {missing} missing, expected {list(OUTPUTS)}")

    def _infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        host = self.host[INPUT]
        host.array[...] = feed[INPUT]
        self.stream.copy_htod(self.device[INPUT], host)
        if not self.context.execute_async_v3(self.stream.handle):
            raise RuntimeError(f"engine {self.path}: execute_async_v3 failed (see the TensorRT log)")
        for name in OUTPUTS:
            self.stream.copy_dtoh(self.host[name], self.device[name])
        self.stream.synchronize()
        return {name: self.host[name].array.copy() for name in OUTPUTS}

    def read(self, crop: np.ndarray) -> tuple[str, float]:
        raise SpotrtError(f"backend tensorrt: read is not available (engine {self.path.name} holds the spotting graph), "
                          "expected --backend onnxruntime with the exported .onnx for read")

    def _close(self) -> None:
        """Free the buffers, the stream, the context and the engine."""
        errors = []
        for buf in reversed(self._buffers):
            try:
                buf.free()
            except RuntimeError as exc:
                errors.append(exc)
        self._buffers.clear()
        if self.stream is not None:
            try:
                self.stream.free()
            except RuntimeError as exc:
                errors.append(exc)
            self.stream = None
        self.context = None
        self.engine = None
        if errors:
            raise errors[0]


__all__ = ["TensorRTSpotter"]
