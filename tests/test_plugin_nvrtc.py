"""NVRTC compilation and the on-disk kernel cache (CPU only: NVRTC needs no GPU)."""
from __future__ import annotations

import numpy as np
import pytest

from spotrt.plugins import nvrtc

SOURCE = 'extern "C" __global__ void scale(float* x, float a, int n) { int i = threadIdx.x; if (i < n) x[i] *= a; }'


@pytest.fixture(autouse=True)
def kernel_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SPOTRT_KERNEL_CACHE", str(tmp_path / "kernels"))
    monkeypatch.setattr(nvrtc, "_memory", {})
    return tmp_path / "kernels"


def test_cache_dir_follows_env(kernel_cache, monkeypatch):
    assert nvrtc.kernel_cache_dir() == kernel_cache
    monkeypatch.delenv("SPOTRT_KERNEL_CACHE")
    assert nvrtc.kernel_cache_dir().parts[-3:] == (".cache", "spotrt", "kernels")


def test_compile_writes_cache_keyed_by_source_options_arch(kernel_cache):
    ptx = nvrtc.compile_ptx(SOURCE, "sm_87")
    assert ".target sm_87" in ptx and ".entry scale(" in ptx
    key = nvrtc.cache_key(SOURCE, nvrtc.DEFAULT_OPTIONS, "sm_87")
    assert (kernel_cache / f"{key}.ptx").read_text() == ptx
    assert [p.name for p in kernel_cache.iterdir()] == [f"{key}.ptx"]  # no temporary file left
    keys = {key, nvrtc.cache_key(SOURCE + " ", nvrtc.DEFAULT_OPTIONS, "sm_87"),
            nvrtc.cache_key(SOURCE, ("--std=c++14",), "sm_87"), nvrtc.cache_key(SOURCE, nvrtc.DEFAULT_OPTIONS, "sm_90"),
            nvrtc.cache_key(SOURCE, nvrtc.DEFAULT_OPTIONS, "sm_87", "cubin")}
    assert len(keys) == 5


def test_cached_kernel_is_not_recompiled(kernel_cache, monkeypatch):
    ptx = nvrtc.compile_ptx(SOURCE, "sm_90")
    monkeypatch.setattr(nvrtc, "_memory", {})

    def no_compile(*args):
        raise AssertionError("compiled although cached")

    monkeypatch.setattr(nvrtc, "_compile", no_compile)
    assert nvrtc.compile_ptx(SOURCE, "sm_90") == ptx
    monkeypatch.setattr(nvrtc, "_memory", {})
    assert nvrtc.get_ptx(SOURCE, "sm_90") == ptx


def test_get_ptx_never_compiles(kernel_cache):
    with pytest.raises(nvrtc.KernelNotCompiledError, match="found no ptx .* for arch sm_87"):
        nvrtc.get_ptx(SOURCE, "sm_87")
    assert not kernel_cache.exists() or not any(kernel_cache.iterdir())


def test_cubin_is_elf(kernel_cache):
    cubin = nvrtc.compile_kernel(SOURCE, "sm_90", kind="cubin")
    assert cubin[:4] == b"\x7fELF"
    assert nvrtc.get_kernel(SOURCE, "sm_90", kind="cubin") == cubin


def test_compile_error_names_call_and_has_log(kernel_cache):
    with pytest.raises(nvrtc.NvrtcError) as err:
        nvrtc.compile_ptx('extern "C" __global__ void bad() { undefined_thing = 1; }', "sm_87", name="bad.cu")
    msg = str(err.value)
    assert "nvrtcCompileProgram(bad.cu, sm_87) failed: NVRTC_ERROR_COMPILATION" in msg
    assert 'identifier "undefined_thing" is undefined' in msg
    assert not kernel_cache.exists() or not any(kernel_cache.iterdir())


@pytest.mark.parametrize("arch", ["87", "sm87", "compute_87", "sm_8"])
def test_bad_arch(arch):
    with pytest.raises(ValueError, match=f"arch: found '{arch}', expected 'sm_XY'"):
        nvrtc.compile_ptx(SOURCE, arch)


def test_launch_rejects_untyped_arguments():
    with pytest.raises(TypeError, match="kernel argument 1: found int"):
        nvrtc._param(1, 5)
    assert nvrtc._param(0, np.int32(5)).dtype == np.int32
    assert nvrtc._param(0, np.uint64(2**40))[0] == 2**40


def test_gpu_reason_agrees_with_the_driver():
    """None exactly when the CUDA driver library loads and reports a device; else one line saying why."""
    import ctypes

    try:
        lib = ctypes.CDLL("libcuda.so.1")
    except OSError:
        lib = None
    count = ctypes.c_int(0)
    has_device = lib is not None and lib.cuInit(0) == 0 and lib.cuDeviceGetCount(ctypes.byref(count)) == 0 \
        and count.value > 0
    reason = nvrtc.gpu_unavailable_reason()
    if has_device:
        assert reason is None
    else:
        assert isinstance(reason, str) and reason and "\n" not in reason
        if lib is None:
            assert "no CUDA driver" in reason or "cuda-python is not installed" in reason
