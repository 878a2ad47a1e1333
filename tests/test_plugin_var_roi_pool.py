"""VarRoIPool plugin: spec validation, NVRTC compilation, and (on a GPU) the kernel against reference.py."""
from __future__ import annotations

import numpy as np
import pytest

from spotrt.plugins import nvrtc
from spotrt.plugins.var_roi_pool import spec as roi_spec
from spotrt.plugins.var_roi_pool.reference import var_roi_pool_ref

SPEC = roi_spec.SPEC
GPU_REASON = nvrtc.gpu_unavailable_reason()
needs_gpu = pytest.mark.skipif(GPU_REASON is not None, reason=f"needs a CUDA device: {GPU_REASON}")


@pytest.fixture(autouse=True)
def kernel_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SPOTRT_KERNEL_CACHE", str(tmp_path / "kernels"))
    monkeypatch.setattr(nvrtc, "_memory", {})
    return tmp_path / "kernels"


def test_spec_identity_and_tolerances():
    assert (SPEC.name, SPEC.namespace, SPEC.version) == ("VarRoIPool", "spotrt", "1")
    assert SPEC.tolerance(np.float32) == 1e-5 and SPEC.tolerance("float16") == 1e-2
    assert [(a.name, a.low, a.high) for a in SPEC.attributes] == [
        ("stride", 1, 64), ("pooled_height", 1, 64), ("max_width", 1, 512)]
    with pytest.raises(ValueError, match="found dtype float64"):
        SPEC.tolerance(np.float64)


def test_validate_accepts_valid_attributes():
    out = roi_spec.validate({"stride": np.int64(8), "pooled_height": 1, "max_width": 512})
    assert out == {"stride": 8, "pooled_height": 1, "max_width": 512}
    assert all(type(v) is int for v in out.values())


@pytest.mark.parametrize("name,value,found", [
    ("stride", 0, "found 0"),
    ("stride", 65, "found 65"),
    ("pooled_height", -3, "found -3"),
    ("max_width", 513, "found 513"),
    ("max_width", 4.0, "found 4.0"),
    ("pooled_height", True, "found True"),
])
def test_validate_names_attribute_found_and_expected(name, value, found):
    attrs = {"stride": 8, "pooled_height": 8, "max_width": 48, name: value}
    attr = next(a for a in SPEC.attributes if a.name == name)
    with pytest.raises(ValueError) as err:
        roi_spec.validate(attrs)
    msg = str(err.value)
    assert f"attribute {name}" in msg and found in msg and f"[{attr.low}, {attr.high}]" in msg


def test_validate_missing_and_unknown():
    with pytest.raises(ValueError, match=r"\['max_width'\] missing"):
        roi_spec.validate({"stride": 8, "pooled_height": 8})
    with pytest.raises(ValueError, match=r"unknown \['spatial_scale'\]"):
        roi_spec.validate({"stride": 8, "pooled_height": 8, "max_width": 4, "spatial_scale": 1})


@pytest.mark.parametrize("arch", ["sm_87", "sm_90"])
def test_kernel_compiles_with_nvrtc(arch, kernel_cache):
    ptx = nvrtc.compile_ptx(SPEC.kernel_source(), arch)
    assert f".target {arch}" in ptx
    assert f".visible .entry {roi_spec.KERNEL_NAME}(" in ptx
    assert len(list(kernel_cache.glob("*.ptx"))) == 1
    assert nvrtc.get_ptx(SPEC.kernel_source(), arch) == ptx


def test_grid_size():
    assert roi_spec.grid_size(1) == 1 and roi_spec.grid_size(0) == 1
    assert roi_spec.grid_size(257) == 2
    assert roi_spec.grid_size(10**9) == roi_spec.MAX_GRID


def random_case(seed: int, n: int, b: int, c: int, hf: int, wf: int, stride: int):
    """Random features and rois: partly and fully outside the map, tiny, very wide, shuffled images."""
    rng = np.random.default_rng(seed)
    feats = rng.standard_normal((b, c, hf, wf)).astype(np.float32)
    img_w, img_h = wf * stride, hf * stride
    kind = rng.integers(0, 4, n)
    h = np.where(kind == 1, rng.uniform(0.3, 3.0, n), rng.uniform(4.0, 60.0, n))
    w = h * np.where(kind == 2, rng.uniform(8.0, 40.0, n), rng.uniform(0.2, 4.0, n))
    x1 = rng.uniform(-0.5 * img_w, img_w, n)
    y1 = rng.uniform(-0.5 * img_h, img_h, n)
    rois = np.stack([x1, y1, x1 + w, y1 + h], axis=1).astype(np.float32)
    rois[kind == 3] += np.float32(1.5 * img_w)
    return feats, rois, rng.integers(0, b, n).astype(np.int32)


def run_kernel(feats, rois, bidx, stride, height, max_width, grid=None):
    """Run var_roi_pool_fp32 on the GPU; outputs are pre-filled with poison (NaN, -7)."""
    nvrtc.use_primary_context()
    image = nvrtc.compile_kernel(SPEC.kernel_source(), nvrtc.device_arch(), kind="cubin")
    b, c, hf, wf = feats.shape
    n = rois.shape[0]
    out_shape = (n, c, height, max_width)
    total = int(np.prod(out_shape))
    with nvrtc.CudaModule(image) as module, \
            nvrtc.DeviceBuffer.from_array(feats) as d_feats, \
            nvrtc.DeviceBuffer.from_array(rois) as d_rois, \
            nvrtc.DeviceBuffer.from_array(bidx.astype(np.int32)) as d_bidx, \
            nvrtc.DeviceBuffer.from_array(np.full(out_shape, np.nan, np.float32)) as d_pooled, \
            nvrtc.DeviceBuffer.from_array(np.full(n, -7, np.int32)) as d_widths:
        nvrtc.launch(module.function(roi_spec.KERNEL_NAME), grid or roi_spec.grid_size(total), roi_spec.BLOCK, [
            d_feats, d_rois, d_bidx, d_pooled, d_widths,
            np.int32(n), np.int32(c), np.int32(hf), np.int32(wf), np.int32(b),
            np.int32(stride), np.int32(height), np.int32(max_width)])
        nvrtc.synchronize()
        return d_pooled.to_array(out_shape, np.float32), d_widths.to_array((n,), np.int32)


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("seed", [1011, 2022, 3033])
@pytest.mark.parametrize("height,max_width,grid", [(7, 29, None), (8, 48, None), (3, 5, 3), (1, 1, None)])
def test_kernel_matches_reference(seed, height, max_width, grid):
    stride = 8
    feats, rois, bidx = random_case(seed, n=37, b=3, c=5, hf=13, wf=23, stride=stride)
    total = rois.shape[0] * feats.shape[1] * height * max_width
    assert total % roi_spec.BLOCK != 0
    pooled, widths = run_kernel(feats, rois, bidx, stride, height, max_width, grid)
    ref, ref_widths = var_roi_pool_ref(feats, rois, bidx, stride, height, max_width)
    np.testing.assert_array_equal(widths, ref_widths.astype(np.int32))
    assert not np.isnan(pooled).any()
    np.testing.assert_allclose(pooled, ref, atol=SPEC.tolerance(np.float32), rtol=0)
    for i, w in enumerate(ref_widths.tolist()):
        assert (pooled[i, :, :, w:] == 0).all()
    assert np.abs(ref).max() > 0.5


@pytest.mark.gpu
@needs_gpu
def test_kernel_no_regions_and_far_rois():
    feats = np.random.default_rng(5).standard_normal((1, 2, 4, 6)).astype(np.float32)
    far = np.array([[1e7, 1e7, 1e7 + 40, 1e7 + 8], [-1e7, 0, -1e7 + 8, 8]], dtype=np.float32)
    pooled, widths = run_kernel(feats, far, np.zeros(2, np.int32), 8, 4, 6)
    ref, ref_widths = var_roi_pool_ref(feats, far, np.zeros(2), 8, 4, 6)
    np.testing.assert_array_equal(widths, ref_widths)
    np.testing.assert_array_equal(pooled, ref)
    np.testing.assert_array_equal(pooled, 0.0)
