"""Plugin kernels: CUDA C++ compiled to PTX with NVRTC, cached on disk, launched with the driver API.

Compiling needs only the `nvidia-cuda-nvrtc` wheel (no GPU, no driver). PTX is cached under
`~/.cache/spotrt/kernels/` (or `$SPOTRT_KERNEL_CACHE`), one file per sha256 of (source, options,
arch), so a kernel is compiled once per machine; `get_ptx` only ever reads, for code that must not
compile (a plugin's enqueue). Launching goes through `cuda.bindings.driver`; every status is checked.

The driver must be at least as new as this NVRTC to load its PTX (NVRTC 13.5 writes PTX ISA 9.5;
JetPack 6 ships CUDA 12.6): use the nvidia-cuda-nvrtc wheel of the target's CUDA version, or
kind="cubin" for the exact GPU, which loads on any driver of the same CUDA major version.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

DEFAULT_OPTIONS: tuple[str, ...] = ("--std=c++17",)
_ARCH = re.compile(r"^sm_(\d{2,3})$")
_KINDS = ("ptx", "cubin")
_memory: dict[str, bytes] = {}  # cache key -> image, for this process


class NvrtcError(RuntimeError):
    """An NVRTC call failed; the message names the call and holds the compile log."""


class CudaError(RuntimeError):
    """A CUDA driver call failed; the message names the call and the error."""


class KernelNotCompiledError(LookupError):
    """get_ptx found no cached PTX: compile_ptx must run first (at build time, not on the hot path)."""


def kernel_cache_dir() -> Path:
    """Where PTX is cached: $SPOTRT_KERNEL_CACHE, else ~/.cache/spotrt/kernels."""
    env = os.environ.get("SPOTRT_KERNEL_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "spotrt" / "kernels"


def _check_arch(arch: str) -> str:
    if not isinstance(arch, str) or not _ARCH.match(arch):
        raise ValueError(f"arch: found {arch!r}, expected 'sm_XY' such as 'sm_87' (Orin) or 'sm_90'")
    return arch


def cache_key(source: str, options: Sequence[str], arch: str, kind: str = "ptx") -> str:
    """sha256 (hex) of the source, the options in order, the architecture and the output kind."""
    if kind not in _KINDS:
        raise ValueError(f"kind: found {kind!r}, expected one of {_KINDS}")
    payload = {"source": source, "options": list(options), "arch": _check_arch(arch)}
    if kind != "ptx":
        payload["kind"] = kind
    return hashlib.sha256(json.dumps(payload).encode("utf-8")).hexdigest()


def _cache_path(key: str, kind: str, cache_dir: Path | None) -> Path:
    return (cache_dir if cache_dir is not None else kernel_cache_dir()) / f"{key}.{kind}"


def _nvrtc_check(call: str, result, log: str = "") -> tuple:
    from cuda.bindings import nvrtc

    err, rest = result[0], tuple(result[1:])
    if err != nvrtc.nvrtcResult.NVRTC_SUCCESS:
        _, msg = nvrtc.nvrtcGetErrorString(err)
        text = msg.decode() if isinstance(msg, bytes) else str(msg)
        raise NvrtcError(f"{call} failed: {text}" + (f"\ncompile log:\n{log}" if log else ""))
    return rest


def _compile(source: str, name: str, options: Sequence[str], arch: str, kind: str) -> bytes:
    from cuda.bindings import nvrtc

    (prog,) = _nvrtc_check("nvrtcCreateProgram", nvrtc.nvrtcCreateProgram(source.encode(), name.encode(), 0, [], []))
    try:
        # compute_XY yields PTX, which the driver JIT-compiles for the GPU it loads on; sm_XY yields
        # SASS for exactly that GPU, which also loads on a driver older than this NVRTC (within the
        # CUDA major version), where PTX of a newer ISA would not.
        target = f"compute_{arch[3:]}" if kind == "ptx" else arch
        opts = [o.encode() for o in options] + [f"--gpu-architecture={target}".encode()]
        result = nvrtc.nvrtcCompileProgram(prog, len(opts), opts)
        (size,) = _nvrtc_check("nvrtcGetProgramLogSize", nvrtc.nvrtcGetProgramLogSize(prog))
        buf = b" " * size
        _nvrtc_check("nvrtcGetProgramLog", nvrtc.nvrtcGetProgramLog(prog, buf))
        log = buf.rstrip(b"\x00 ").decode(errors="replace")
        _nvrtc_check(f"nvrtcCompileProgram({name}, {arch})", result, log)
        if kind == "ptx":
            (size,) = _nvrtc_check("nvrtcGetPTXSize", nvrtc.nvrtcGetPTXSize(prog))
            image = b" " * size
            _nvrtc_check("nvrtcGetPTX", nvrtc.nvrtcGetPTX(prog, image))
            image = image.rstrip(b"\x00")
        else:
            (size,) = _nvrtc_check("nvrtcGetCUBINSize", nvrtc.nvrtcGetCUBINSize(prog))
            image = b" " * size
            _nvrtc_check("nvrtcGetCUBIN", nvrtc.nvrtcGetCUBIN(prog, image))
    finally:
        _nvrtc_check("nvrtcDestroyProgram", nvrtc.nvrtcDestroyProgram(prog))
    return image


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)  # readers see the old file or the whole new one, never a partial one
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def compile_kernel(
    source: str,
    arch: str,
    options: Sequence[str] = DEFAULT_OPTIONS,
    *,
    kind: str = "ptx",
    name: str = "kernel.cu",
    cache_dir: Path | None = None,
) -> bytes:
    """PTX (kind='ptx') or CUBIN (kind='cubin') of `source` for `arch`, compiled unless cached.

    Raises NvrtcError, naming the call and holding the compile log, when compilation fails.
    """
    options = tuple(options)
    key = cache_key(source, options, arch, kind)
    if key in _memory:
        return _memory[key]
    path = _cache_path(key, kind, cache_dir)
    if path.is_file():
        image = path.read_bytes()
    else:
        image = _compile(source, name, options, arch, kind)
        _write_atomic(path, image)
    _memory[key] = image
    return image


def get_kernel(
    source: str,
    arch: str,
    options: Sequence[str] = DEFAULT_OPTIONS,
    *,
    kind: str = "ptx",
    cache_dir: Path | None = None,
) -> bytes:
    """The cached image of `source` for `arch`; never compiles. KernelNotCompiledError if absent."""
    options = tuple(options)
    key = cache_key(source, options, arch, kind)
    if key in _memory:
        return _memory[key]
    path = _cache_path(key, kind, cache_dir)
    if not path.is_file():
        raise KernelNotCompiledError(
            f"kernel cache: found no {kind} at {path} for arch {arch}, expected compile_kernel to have run first"
        )
    _memory[key] = image = path.read_bytes()
    return image


def compile_ptx(source: str, arch: str, options: Sequence[str] = DEFAULT_OPTIONS, *, name: str = "kernel.cu",
                cache_dir: Path | None = None) -> str:
    """PTX text of `source` for `arch` ('sm_87' Orin, 'sm_90'), compiled with NVRTC unless cached."""
    return compile_kernel(source, arch, options, kind="ptx", name=name, cache_dir=cache_dir).decode()


def get_ptx(source: str, arch: str, options: Sequence[str] = DEFAULT_OPTIONS, *, cache_dir: Path | None = None) -> str:
    """Cached PTX text of `source` for `arch`; never compiles (for the hot path)."""
    return get_kernel(source, arch, options, kind="ptx", cache_dir=cache_dir).decode()


# --- driver API: used by GPU tests and by the TensorRT plugins ------------------------------------


def _cu_check(call: str, result) -> tuple:
    from cuda.bindings import driver

    err, rest = result[0], tuple(result[1:])
    if err != driver.CUresult.CUDA_SUCCESS:
        _, name = driver.cuGetErrorName(err)
        _, desc = driver.cuGetErrorString(err)
        name = name.decode() if isinstance(name, bytes) else str(name)
        desc = desc.decode() if isinstance(desc, bytes) else str(desc)
        raise CudaError(f"{call} failed: {name} ({desc})")
    return rest


def gpu_unavailable_reason() -> str | None:
    """None when a CUDA device can be used, else one line saying why not (for pytest skips)."""
    try:
        from cuda.bindings import driver
    except ImportError as e:
        return f"cuda-python is not installed ({e})"
    try:
        (err,) = driver.cuInit(0)
    except Exception as e:  # the bindings raise when libcuda.so cannot be loaded at all
        return f"no CUDA driver: {str(e).splitlines()[0]}"
    if err != driver.CUresult.CUDA_SUCCESS:
        return f"cuInit failed: {err.name}"
    err, count = driver.cuDeviceGetCount()
    if err != driver.CUresult.CUDA_SUCCESS or count == 0:
        return "no CUDA device"
    return None


def device_arch(device: int = 0) -> str:
    """'sm_XY' of a CUDA device."""
    from cuda.bindings import driver

    _cu_check("cuInit", driver.cuInit(0))
    (dev,) = _cu_check("cuDeviceGet", driver.cuDeviceGet(device))
    attr = driver.CUdevice_attribute
    (major,) = _cu_check("cuDeviceGetAttribute", driver.cuDeviceGetAttribute(attr.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev))
    (minor,) = _cu_check("cuDeviceGetAttribute", driver.cuDeviceGetAttribute(attr.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev))
    return f"sm_{major}{minor}"


def use_primary_context(device: int = 0):
    """Make the device's primary context current (the one the CUDA runtime, TensorRT and CuPy share)."""
    from cuda.bindings import driver

    _cu_check("cuInit", driver.cuInit(0))
    (dev,) = _cu_check("cuDeviceGet", driver.cuDeviceGet(device))
    (ctx,) = _cu_check("cuDevicePrimaryCtxRetain", driver.cuDevicePrimaryCtxRetain(dev))
    _cu_check("cuCtxSetCurrent", driver.cuCtxSetCurrent(ctx))
    return ctx


class CudaModule:
    """A loaded PTX or CUBIN module in the current context; `function(name)` looks up an extern "C" kernel."""

    def __init__(self, image: str | bytes) -> None:
        from cuda.bindings import driver

        data = image.encode() if isinstance(image, str) else bytes(image)
        if not data.lstrip().startswith(b"\x7fELF"):
            data += b"\x00"  # PTX is read as a NUL-terminated string
        image = np.frombuffer(data, dtype=np.uint8)
        (self._module,) = _cu_check("cuModuleLoadData", driver.cuModuleLoadData(image.ctypes.data))
        self._functions: dict[str, object] = {}

    def function(self, name: str):
        """The CUfunction `name`."""
        if name not in self._functions:
            from cuda.bindings import driver

            (self._functions[name],) = _cu_check(
                f"cuModuleGetFunction({name})", driver.cuModuleGetFunction(self._module, name.encode())
            )
        return self._functions[name]

    def close(self) -> None:
        """Unload the module."""
        if self._module is not None:
            from cuda.bindings import driver

            _cu_check("cuModuleUnload", driver.cuModuleUnload(self._module))
            self._module = None
            self._functions.clear()

    def __enter__(self) -> "CudaModule":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _param(i: int, value) -> np.ndarray:
    if isinstance(value, np.generic):
        return np.array([value], dtype=value.dtype)
    if isinstance(value, DeviceBuffer):
        return np.array([int(value.ptr)], dtype=np.uint64)
    if type(value).__name__ == "CUdeviceptr":
        return np.array([int(value)], dtype=np.uint64)
    raise TypeError(
        f"kernel argument {i}: found {type(value).__name__}, expected a NumPy scalar "
        "(np.int32, np.float32, np.uint64 for a raw pointer), a DeviceBuffer or a CUdeviceptr"
    )


def launch(
    function,
    grid: int | tuple[int, int, int],
    block: int | tuple[int, int, int],
    args: Sequence,
    *,
    shared_bytes: int = 0,
    stream=0,
) -> None:
    """Launch `function` on `stream` (asynchronous; no synchronization here).

    `args` are typed explicitly: NumPy scalars of the kernel's parameter types, and device pointers
    as DeviceBuffer, CUdeviceptr or np.uint64.
    """
    from cuda.bindings import driver

    gx, gy, gz = (grid, 1, 1) if isinstance(grid, int) else grid
    bx, by, bz = (block, 1, 1) if isinstance(block, int) else block
    holders = [_param(i, a) for i, a in enumerate(args)]
    pointers = np.array([h.ctypes.data for h in holders], dtype=np.uint64)
    _cu_check(
        "cuLaunchKernel",
        driver.cuLaunchKernel(function, gx, gy, gz, bx, by, bz, shared_bytes, stream, pointers.ctypes.data, 0),
    )


def synchronize() -> None:
    """Wait for the current context's work (tests only; plugins never synchronize)."""
    from cuda.bindings import driver

    _cu_check("cuCtxSynchronize", driver.cuCtxSynchronize())


class DeviceBuffer:
    """Device memory owning one NumPy array's worth of bytes (tests and tools; not for enqueue)."""

    def __init__(self, nbytes: int) -> None:
        from cuda.bindings import driver

        self.nbytes = int(nbytes)
        (self.ptr,) = _cu_check("cuMemAlloc", driver.cuMemAlloc(max(self.nbytes, 1)))

    @classmethod
    def from_array(cls, array: np.ndarray) -> "DeviceBuffer":
        """A new buffer holding a copy of `array`."""
        array = np.ascontiguousarray(array)
        buf = cls(array.nbytes)
        buf.copy_from(array)
        return buf

    def copy_from(self, array: np.ndarray) -> None:
        """Host -> device (synchronous)."""
        from cuda.bindings import driver

        array = np.ascontiguousarray(array)
        if array.nbytes != self.nbytes:
            raise ValueError(f"copy_from: found {array.nbytes} bytes, expected {self.nbytes}")
        if array.nbytes:
            _cu_check("cuMemcpyHtoD", driver.cuMemcpyHtoD(self.ptr, array.ctypes.data, array.nbytes))

    def to_array(self, shape, dtype) -> np.ndarray:
        """Device -> host (synchronous) as a new array of `shape` and `dtype`."""
        from cuda.bindings import driver

        out = np.empty(shape, dtype=dtype)
        if out.nbytes != self.nbytes:
            raise ValueError(f"to_array: found {out.nbytes} bytes for {shape} {np.dtype(dtype)}, expected {self.nbytes}")
        if out.nbytes:
            _cu_check("cuMemcpyDtoH", driver.cuMemcpyDtoH(out.ctypes.data, self.ptr, out.nbytes))
        return out

    def free(self) -> None:
        """Release the memory."""
        if self.ptr is not None:
            from cuda.bindings import driver

            _cu_check("cuMemFree", driver.cuMemFree(self.ptr))
            self.ptr = None

    def __enter__(self) -> "DeviceBuffer":
        return self

    def __exit__(self, *exc) -> None:
        self.free()
