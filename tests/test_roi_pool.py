"""Varying-size RoI pooling: the torch op against the NumPy reference (the op's definition)."""
from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from spotrt.model.roi_pool import pooled_widths, var_roi_pool  # noqa: E402
from spotrt.plugins.var_roi_pool import var_roi_pool_ref  # noqa: E402
from spotrt.plugins.var_roi_pool.reference import pooled_widths_ref  # noqa: E402


def random_case(seed: int, n: int = 40, b: int = 3, c: int = 5, hf: int = 7, wf: int = 11, stride: int = 8):
    """Random features and rois: some partly/fully outside the map, tiny ones, very wide ones."""
    rng = np.random.default_rng(seed)
    feats = rng.standard_normal((b, c, hf, wf)).astype(np.float32)
    img_w, img_h = wf * stride, hf * stride
    kind = rng.integers(0, 4, n)
    h = np.where(kind == 1, rng.uniform(0.3, 3.0, n), rng.uniform(4.0, 40.0, n))     # tiny
    ratio = np.where(kind == 2, rng.uniform(8.0, 30.0, n), rng.uniform(0.2, 4.0, n))  # very wide
    w = h * ratio
    x1 = rng.uniform(-0.5 * img_w, img_w, n)                                         # partly outside
    y1 = rng.uniform(-0.5 * img_h, img_h, n)
    rois = np.stack([x1, y1, x1 + w, y1 + h], axis=1).astype(np.float32)
    rois[kind == 3] += np.float32(1.5 * img_w)                                       # fully outside
    batch_index = rng.integers(0, b, n).astype(np.int64)                             # shuffled order
    return feats, rois, batch_index, stride


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("height,max_width", [(4, 16), (8, 48), (3, 5)])
def test_matches_reference_on_random_rois(seed, height, max_width):
    feats, rois, bidx, stride = random_case(seed)
    pooled, widths = var_roi_pool(torch.from_numpy(feats), torch.from_numpy(rois), torch.from_numpy(bidx),
                                  stride, height, max_width)
    ref, ref_widths = var_roi_pool_ref(feats, rois, bidx, stride, height, max_width)
    assert pooled.shape == (len(rois), feats.shape[1], height, max_width)
    assert pooled.dtype == torch.float32 and widths.dtype == torch.long
    np.testing.assert_array_equal(widths.numpy(), ref_widths)
    np.testing.assert_allclose(pooled.numpy(), ref, atol=1e-5, rtol=0)
    # The cases do exercise W_max, width 1 and regions outside the map.
    assert (ref_widths == max_width).any() and (ref_widths < max_width).any()
    assert np.abs(ref).reshape(len(rois), -1).max(axis=1).min() == 0.0


@pytest.mark.parametrize("seed", range(3))
def test_masked_columns_are_exactly_zero(seed):
    feats, rois, bidx, stride = random_case(seed)
    feats += 10.0  # no accidental zeros inside the map
    pooled, widths = var_roi_pool(torch.from_numpy(feats), torch.from_numpy(rois), torch.from_numpy(bidx), stride, 4, 16)
    for i, w in enumerate(widths.tolist()):
        assert (pooled[i, :, :, w:] == 0).all()
    ref, ref_widths = var_roi_pool_ref(feats, rois, bidx, stride, 4, 16)
    for i, w in enumerate(ref_widths.tolist()):
        assert (ref[i, :, :, w:] == 0).all()


def test_widths_formula():
    rois = torch.tensor([
        [0, 0, 16, 8],       # w/h = 2 -> ceil(8 * 2) = 16
        [0, 0, 17, 8],       # ceil(17) = 17
        [0, 0, 100, 8],      # 100 -> W_max
        [0, 0, 1, 8],        # 1
        [0, 0, 0.5, 8],      # ceil(0.5) = 1
        [5, 5, 5, 5],        # degenerate: 1e-3/1e-3 -> 8
        [5, 5, 4, 10],       # negative width: clamped to 1e-3 -> 1
    ], dtype=torch.float32)
    expected = [16, 17, 48, 1, 1, 8, 1]
    assert pooled_widths(rois, 8, 48).tolist() == expected
    assert pooled_widths_ref(rois.numpy(), 8, 48).tolist() == expected


def test_region_order_and_images_without_regions():
    """Permuting the regions permutes the output; an image with no region is fine."""
    feats, rois, bidx, stride = random_case(7, b=4)
    bidx = np.where(bidx == 2, 3, bidx)  # image 2 has no region
    f, r, b = torch.from_numpy(feats), torch.from_numpy(rois), torch.from_numpy(bidx)
    pooled, widths = var_roi_pool(f, r, b, stride, 4, 16)
    perm = torch.from_numpy(np.random.default_rng(1).permutation(len(rois)))
    pooled_p, widths_p = var_roi_pool(f, r[perm], b[perm], stride, 4, 16)
    torch.testing.assert_close(pooled_p, pooled[perm], rtol=0, atol=0)
    assert torch.equal(widths_p, widths[perm])
    # Each region only sees its own image: pooling image k alone gives the same values.
    for k in (0, 3):
        sel = torch.nonzero(b == k).flatten()
        alone, _ = var_roi_pool(f[k : k + 1], r[sel], torch.zeros(len(sel), dtype=torch.long), stride, 4, 16)
        torch.testing.assert_close(alone, pooled[sel], rtol=0, atol=1e-6)


def test_no_regions():
    feats = torch.randn(2, 3, 4, 5)
    pooled, widths = var_roi_pool(feats, torch.zeros((0, 4)), torch.zeros(0, dtype=torch.long), 8, 4, 10)
    assert pooled.shape == (0, 3, 4, 10) and widths.shape == (0,)
    ref, ref_w = var_roi_pool_ref(feats.numpy(), np.zeros((0, 4)), np.zeros(0), 8, 4, 10)
    assert ref.shape == (0, 3, 4, 10) and ref_w.shape == (0,)


def test_linear_ramp_closed_form():
    """Inside the map, bilinear sampling of F[y, x] = x + 10 y returns fx + 10 fy exactly."""
    hf, wf, stride = 6, 10, 4
    yy, xx = np.mgrid[0:hf, 0:wf]
    ramp = (xx + 10.0 * yy).astype(np.float32)[None, None]
    roi = np.array([[6.0, 5.0, 20.0, 13.0]], dtype=np.float32)
    # w = 14, h = 8, H = 2: W = ceil(2 * 14 / 8) = 4. Sample x = 6 + (j + .5) * 3.5, y = 5 + (r + .5) * 4.
    fx = np.array([7.75, 11.25, 14.75, 18.25]) / stride - 0.5   # 1.4375 2.3125 3.1875 4.0625
    fy = np.array([7.0, 11.0]) / stride - 0.5                   # 1.25 2.25
    expected = np.zeros((2, 8), dtype=np.float32)
    expected[:, :4] = fx[None, :] + 10.0 * fy[:, None]
    for fn, conv in ((var_roi_pool, torch.from_numpy), (var_roi_pool_ref, np.asarray)):
        pooled, widths = fn(conv(ramp), conv(roi), conv(np.zeros(1, dtype=np.int64)), stride, 2, 8)
        assert int(widths[0]) == 4
        np.testing.assert_allclose(np.asarray(pooled)[0, 0], expected, atol=1e-5, rtol=0)


def test_constant_map_and_zero_padding():
    ones = np.ones((1, 2, 4, 4), dtype=np.float32)  # stride 8: the map covers image [0, 32)^2
    rois = np.array([
        [0, 0, 32, 32],      # H = 2 -> W = 2, samples at fx, fy = 0.5, 2.5: all neighbours inside -> 1
        [-8, 0, 8, 16],      # W = 2: x = -4, 4 -> fx = -1, 0; y = 4, 12 -> fy = 0, 1
        [100, 100, 120, 110],  # outside the map -> 0, W = 4
        [0, 28, 16, 36],     # W = 4: x = 2, 6, 10, 14 -> fx = -0.25 (column -1 is padding: 0.75), .25, .75, 1.25
                             # y = 30, 34 -> fy = 3.25, 3.75: row 3 weighs 0.75, 0.25 (row 4 is padding)
    ], dtype=np.float32)
    expected = np.zeros((4, 2, 4), dtype=np.float32)
    expected[0, :, :2] = 1.0
    # fx = -1: both x neighbours (-1 and 0 with weight 0) -> 0; fx = 0 -> exactly column 0 -> 1.
    expected[1, :, :2] = [0.0, 1.0]
    expected[3] = np.array([0.75, 0.25])[:, None] * np.array([0.75, 1.0, 1.0, 1.0])[None, :]
    bidx = np.zeros(4, dtype=np.int64)
    for fn, conv in ((var_roi_pool, torch.from_numpy), (var_roi_pool_ref, np.asarray)):
        pooled, widths = fn(conv(ones), conv(rois), conv(bidx), 8, 2, 4)
        pooled = np.asarray(pooled)
        assert np.asarray(widths).tolist() == [2, 2, 4, 4]
        np.testing.assert_allclose(pooled[:, 0], expected, atol=1e-6, rtol=0)
        np.testing.assert_array_equal(pooled[:, 0], pooled[:, 1])


def test_reference_bilinear_matches_grid_sample_pointwise():
    """The reference's sampler is grid_sample(align_corners=False, zeros) at arbitrary points."""
    rng = np.random.default_rng(3)
    fmap = rng.standard_normal((1, 1, 5, 6)).astype(np.float32)
    from spotrt.plugins.var_roi_pool.reference import _bilinear_zeros

    fx = rng.uniform(-2, 7, 9)
    fy = rng.uniform(-2, 6, 4)
    ours = _bilinear_zeros(fmap[0].astype(np.float64), fx, fy)[0]
    gx = (2 * fx + 1) / 6 - 1
    gy = (2 * fy + 1) / 5 - 1
    grid = np.stack(np.broadcast_arrays(gx[None, :], gy[:, None]), axis=-1)[None].astype(np.float32)
    theirs = torch.nn.functional.grid_sample(torch.from_numpy(fmap), torch.from_numpy(grid), mode="bilinear",
                                             padding_mode="zeros", align_corners=False)[0, 0].numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-5, rtol=0)
    assert math.isclose(float(np.abs(ours).max()), float(np.abs(theirs).max()), abs_tol=1e-5)
