"""What the TensorRT plugins do that needs no TensorRT: attributes <-> plugin fields, shape checks,
launch geometry, kernel images. Unit-tested on CPU; the `trt.py` classes only forward to it.

Plugin fields arrive from the ONNX parser (node attributes named in the creator's `field_names`) or
from a serialized engine (what `get_fields_to_serialize` wrote): each has a `.name` and a `.data`
NumPy array. Attributes are serialized as one int32 per field, in the spec's order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from . import nvrtc
from .spec import PluginSpec

KERNEL_KIND = "cubin"  # SASS for the exact GPU: loads on any driver of the same CUDA major version


class PluginShapeError(ValueError):
    """Inputs of a shape or type a plugin does not support; the message names the tensor."""


def attrs_from_fields(spec: PluginSpec, fields: Iterable) -> dict[str, int]:
    """PluginFields (objects with .name, .data) -> validated attributes. Unknown fields (the parser's
    plugin_version/plugin_namespace strings) are ignored; ValueError names a bad or missing one."""
    wanted = {a.name for a in spec.attributes}
    attrs = {}
    for f in fields:
        name = f.name.decode() if isinstance(f.name, bytes) else str(f.name)
        if name not in wanted:
            continue
        data = np.asarray(f.data).ravel()
        if data.size != 1:
            raise ValueError(f"{spec.name} field {name}: found {data.size} values, expected one integer")
        value = data[0]
        if not np.issubdtype(data.dtype, np.integer):
            if not float(value).is_integer():
                raise ValueError(f"{spec.name} field {name}: found {value!r}, expected an integer")
            value = int(value)
        attrs[name] = int(value)
    return spec.validate(attrs)


def fields_to_serialize(spec: PluginSpec, attrs: Mapping[str, int]) -> list[tuple[str, np.ndarray]]:
    """(name, int32 array of one value) per attribute, in the spec's order."""
    checked = spec.validate(dict(attrs))
    return [(a.name, np.array([checked[a.name]], dtype=np.int32)) for a in spec.attributes]


def dims(shape: Sequence) -> tuple[int, ...]:
    """A TensorRT Dims (or any sequence of ints) as a tuple."""
    return tuple(int(shape[i]) for i in range(len(shape)))


def require(cond: bool, message: str) -> None:
    if not cond:
        raise PluginShapeError(message)


# --- kernels ------------------------------------------------------------------------------------

def compile_for_device(spec: PluginSpec, arch: str | None = None) -> bytes:
    """Compile (or read from the disk cache) the spec's kernel for `arch` (default: GPU 0). Build time."""
    arch = arch or nvrtc.device_arch()
    return nvrtc.compile_kernel(spec.kernel_source(), arch, kind=KERNEL_KIND)


_modules: dict[tuple[str, str], object] = {}


def kernel_function(spec: PluginSpec, kernel_name: str):
    """The CUfunction of a spec's kernel in the current context, loaded once per process from the
    kernel cache. Never compiles (KernelNotCompiledError if registration did not compile it)."""
    nvrtc.use_primary_context()
    arch = nvrtc.device_arch()
    key = (spec.name, arch)
    if key not in _modules:
        _modules[key] = nvrtc.CudaModule(nvrtc.get_kernel(spec.kernel_source(), arch, kind=KERNEL_KIND))
    return _modules[key].function(kernel_name)
