"""The TensorRT module and the GPU it runs on, or one line saying why not.

Shared by `spotrt build` (spotrt.export.tensorrt_build) and the TensorRT backend
(spotrt.runtime.tensorrt_backend); importing this module imports neither tensorrt nor CUDA.
"""

from __future__ import annotations

from ..errors import SpotrtError


def import_tensorrt():
    """The tensorrt module, or SpotrtError (one line) when it is not installed."""
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise SpotrtError(f"TensorRT: not installed ({exc.msg}), expected the tensorrt Python bindings "
                          "(JetPack 6: apt install python3-libnvinfer; desktop: pip install tensorrt)") from None
    return trt


def require_gpu() -> str:
    """'sm_XY' of GPU 0, or SpotrtError naming why no GPU can be used."""
    from . import nvrtc

    reason = nvrtc.gpu_unavailable_reason()
    if reason:
        raise SpotrtError(f"GPU: {reason}, expected an NVIDIA GPU with its driver for TensorRT")
    return nvrtc.device_arch()
