"""Pinned host memory, device memory and a stream through the CUDA runtime of cuda-python (cuda.bindings).

Small owning objects, each freed by `free()` (idempotent) or its context manager; every CUDA call's
status is checked and turned into CudaCallError naming the call (the pattern of TensorRT's
samples/python/common_runtime.py). No torch, no pycuda.
"""

from __future__ import annotations

import ctypes

import numpy as np


class CudaCallError(RuntimeError):
    """A CUDA runtime call failed; the message names the call and the error."""


def check(call: str, result):
    """The values after the status of a cuda.bindings result tuple; CudaCallError when the status is not success."""
    from cuda.bindings import runtime as cudart

    err, rest = result[0], tuple(result[1:])
    if err != cudart.cudaError_t.cudaSuccess:
        try:
            name = cudart.cudaGetErrorName(err)[1]
            name = name.decode() if isinstance(name, bytes) else str(name)
        except Exception:  # naming the error must not hide it
            name = str(err)
        raise CudaCallError(f"{call} failed: {name}")
    if not rest:
        return None
    return rest[0] if len(rest) == 1 else rest


class PinnedBuffer:
    """Page-locked host memory viewed as one NumPy array (cudaMallocHost / cudaFreeHost)."""

    def __init__(self, shape, dtype) -> None:
        from cuda.bindings import runtime as cudart

        self.shape, self.dtype = tuple(int(s) for s in shape), np.dtype(dtype)
        self.nbytes = int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize
        self.ptr = int(check("cudaMallocHost", cudart.cudaMallocHost(max(self.nbytes, 1))))
        raw = (ctypes.c_ubyte * max(self.nbytes, 1)).from_address(self.ptr)
        self.array = np.frombuffer(raw, dtype=np.uint8, count=self.nbytes).view(self.dtype).reshape(self.shape)

    def free(self) -> None:
        if self.ptr is not None:
            from cuda.bindings import runtime as cudart

            self.array = None
            ptr, self.ptr = self.ptr, None
            check("cudaFreeHost", cudart.cudaFreeHost(ptr))


class DeviceMemory:
    """Device memory of `nbytes` (cudaMalloc / cudaFree)."""

    def __init__(self, nbytes: int) -> None:
        from cuda.bindings import runtime as cudart

        self.nbytes = int(nbytes)
        self.ptr = int(check("cudaMalloc", cudart.cudaMalloc(max(self.nbytes, 1))))

    def free(self) -> None:
        if self.ptr is not None:
            from cuda.bindings import runtime as cudart

            ptr, self.ptr = self.ptr, None
            check("cudaFree", cudart.cudaFree(ptr))


class Stream:
    """A CUDA stream (cudaStreamCreate / cudaStreamDestroy); `handle` is the int TensorRT takes."""

    def __init__(self) -> None:
        from cuda.bindings import runtime as cudart

        self.stream = check("cudaStreamCreate", cudart.cudaStreamCreate())
        self.handle = int(self.stream)

    def copy_htod(self, device: DeviceMemory, host: PinnedBuffer) -> None:
        from cuda.bindings import runtime as cudart

        check("cudaMemcpyAsync(host to device)", cudart.cudaMemcpyAsync(
            device.ptr, host.ptr, host.nbytes, cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, self.stream))

    def copy_dtoh(self, host: PinnedBuffer, device: DeviceMemory) -> None:
        from cuda.bindings import runtime as cudart

        check("cudaMemcpyAsync(device to host)", cudart.cudaMemcpyAsync(
            host.ptr, device.ptr, host.nbytes, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost, self.stream))

    def synchronize(self) -> None:
        from cuda.bindings import runtime as cudart

        check("cudaStreamSynchronize", cudart.cudaStreamSynchronize(self.stream))

    def free(self) -> None:
        if self.stream is not None:
            from cuda.bindings import runtime as cudart

            stream, self.stream = self.stream, None
            check("cudaStreamDestroy", cudart.cudaStreamDestroy(stream))
