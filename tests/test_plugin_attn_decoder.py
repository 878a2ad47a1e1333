"""AttnDecoder plugin: reference vs torch AttentionDecoder.greedy, spec, NVRTC, and (on a GPU) the kernel."""
from __future__ import annotations

import numpy as np
import pytest

from spotrt.plugins import nvrtc
from spotrt.plugins.attn_decoder import WEIGHT_NAMES, attn_decoder_ref, decoder_dims
from spotrt.plugins.attn_decoder import spec as dec_spec

torch = pytest.importorskip("torch")

from spotrt.model.config import SpotterConfig  # noqa: E402
from spotrt.model.heads import AttentionDecoder  # noqa: E402

SPEC = dec_spec.SPEC
GPU_REASON = nvrtc.gpu_unavailable_reason()
needs_gpu = pytest.mark.skipif(GPU_REASON is not None, reason=f"needs a CUDA device: {GPU_REASON}")
SMALL = SpotterConfig(charset="abcdefg", encoder_hidden=32, decoder_hidden=24, attn_dim=16, embed_dim=8, max_word_len=10)


@pytest.fixture(autouse=True)
def kernel_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SPOTRT_KERNEL_CACHE", str(tmp_path / "kernels"))
    monkeypatch.setattr(nvrtc, "_memory", {})


def make_case(cfg: SpotterConfig, seed: int, scale: float = 1.0, end_bias: float = 0.0, n: int = 23, w: int = 13,
              ramp: bool = False):
    """A randomly initialised decoder (weights times `scale`, end-of-word logit + end_bias) and inputs.

    ramp: gates saturated so that the cell state grows by the same step each step, and the end-of-word
    logit follows it plus a random function of the context: regions end at different steps.
    """
    torch.manual_seed(seed)
    dec = AttentionDecoder(cfg).eval()
    with torch.no_grad():
        for p in dec.parameters():
            p.mul_(scale)
        dec.out.bias[0] += end_bias
        if ramp:
            hd = cfg.decoder_hidden
            dec.cell.bias_ih[: 2 * hd] = 10.0      # input and forget gates ~1
            dec.cell.bias_ih[3 * hd :] = 10.0      # output gate ~1
            dec.cell.weight_ih[2 * hd : 3 * hd] = 0.0
            dec.cell.weight_hh[2 * hd : 3 * hd] = 0.0
            dec.cell.bias_ih[2 * hd : 3 * hd] = 0.15
            dec.cell.bias_hh[2 * hd : 3 * hd] = 0.0
            dec.out.weight[0, :hd] = 1.0
            dec.out.weight[0, hd:] *= 3.0
            dec.out.bias[0] = end_bias
    g = torch.Generator().manual_seed(seed + 1000)
    widths = torch.randint(1, w + 1, (n,), generator=g)
    mask = torch.arange(w)[None, :] < widths[:, None]
    memory = torch.randn(n, w, cfg.encoder_hidden, generator=g) * mask[..., None]
    holistic = torch.randn(n, cfg.encoder_hidden, generator=g)
    weights = {k: v.detach().numpy().copy() for k, v in dec.state_dict().items()}
    return dec, memory, mask, widths, holistic, weights


def run_ref(cfg, memory, widths, holistic, weights):
    return attn_decoder_ref(memory.numpy(), widths.numpy(), holistic.numpy(), weights,
                            cfg.max_word_len, cfg.start_token, cfg.num_classes)


def end_steps(tokens: np.ndarray) -> list[int]:
    return [int(np.argmax(r == 0)) if (r == 0).any() else -1 for r in tokens]


def test_reference_equals_torch_greedy_across_seeds_and_end_steps():
    seen_ends, all_ended_early = set(), 0
    for seed in range(4):
        for scale, end_bias, ramp in [(1.0, 0.0, False), (3.0, 0.0, False), (3.0, 2.0, False), (2.0, 1.0, False),
                                      (1.0, -6.0, True), (1.0, -10.0, True), (1.0, -12.0, True)]:
            dec, memory, mask, widths, holistic, weights = make_case(SMALL, seed, scale, end_bias, ramp=ramp)
            tokens, probs = dec.greedy(memory, mask, holistic)
            ref_tokens, ref_probs = run_ref(SMALL, memory, widths, holistic, weights)
            assert ref_tokens.dtype == np.int32 and ref_probs.dtype == np.float32
            np.testing.assert_array_equal(ref_tokens, tokens.numpy(), err_msg=f"seed {seed} scale {scale}")
            np.testing.assert_allclose(ref_probs, probs.numpy(), atol=1e-5, rtol=0, err_msg=f"seed {seed} scale {scale}")
            ends = end_steps(ref_tokens)
            for row, end in zip(ref_tokens, ends):
                if end >= 0:
                    assert (row[end:] == 0).all()
            seen_ends.update(ends)
            all_ended_early += -1 not in ends and max(ends) < SMALL.max_word_len - 1
    # The cases cover words that end at several steps, words that never end, and the early stop.
    assert {-1, 0, 1, 2, 3, 4} <= seen_ends, seen_ends
    assert all_ended_early >= 8


def test_reference_equals_torch_on_default_sizes():
    cfg = SpotterConfig(max_word_len=8)
    dec, memory, mask, widths, holistic, weights = make_case(cfg, seed=7, scale=2.0, n=9, w=cfg.roi_max_width)
    tokens, probs = dec.greedy(memory, mask, holistic)
    ref_tokens, ref_probs = run_ref(cfg, memory, widths, holistic, weights)
    np.testing.assert_array_equal(ref_tokens, tokens.numpy())
    np.testing.assert_allclose(ref_probs, probs.numpy(), atol=1e-5, rtol=0)
    assert decoder_dims(weights) == {"V": 38, "E": 64, "D": 128, "Hd": 128, "A": 96, "C": 37}


def test_everything_ends_at_first_step():
    dec, memory, mask, widths, holistic, weights = make_case(SMALL, seed=3, end_bias=50.0)
    ref_tokens, ref_probs = run_ref(SMALL, memory, widths, holistic, weights)
    tokens, probs = dec.greedy(memory, mask, holistic)
    np.testing.assert_array_equal(ref_tokens, 0)
    np.testing.assert_array_equal(ref_probs[:, 1:], 1.0)
    np.testing.assert_allclose(ref_probs[:, 0], probs[:, 0].numpy(), atol=1e-5, rtol=0)
    assert (ref_probs[:, 0] > 0.99).all()


def test_reference_ignores_masked_columns():
    _, memory, _, widths, holistic, weights = make_case(SMALL, seed=5, scale=3.0)
    a = run_ref(SMALL, memory, widths, holistic, weights)
    garbage = memory.clone()
    garbage[torch.arange(garbage.shape[1])[None, :] >= widths[:, None]] = 100.0
    b = run_ref(SMALL, garbage, widths, holistic, weights)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_allclose(a[1], b[1], atol=1e-7, rtol=0)


def test_no_regions():
    _, _, _, _, _, weights = make_case(SMALL, seed=0, n=1)
    tokens, probs = attn_decoder_ref(np.zeros((0, 5, 32), np.float32), np.zeros(0, np.int32), np.zeros((0, 32), np.float32),
                                     weights, 6, SMALL.start_token, SMALL.num_classes)
    assert tokens.shape == (0, 6) and probs.shape == (0, 6)


def test_spec_identity_and_inputs():
    assert (SPEC.name, SPEC.namespace, SPEC.version) == ("AttnDecoder", "spotrt", "1")
    assert SPEC.inputs[:3] == ("memory", "widths", "holistic") and SPEC.inputs[3:] == WEIGHT_NAMES
    assert SPEC.tolerance("float32") == 1e-5 and SPEC.tolerance("float16") == 1e-2
    assert dec_spec.shared_bytes({"Hd": 128, "D": 128, "A": 96, "C": 37}, 48) == 4 * (768 + 128 + 96 + 48 + 37 + 32)


@pytest.mark.parametrize("name,value", [("max_len", 0), ("max_len", 65), ("num_classes", 1), ("num_classes", 257),
                                        ("start_token", -1), ("max_len", 3.5)])
def test_validate_ranges(name, value):
    attrs = {"max_len": 16, "start_token": 37, "num_classes": 37, name: value}
    with pytest.raises(ValueError, match=f"attribute {name}: found {value}.*expected an int in"):
        dec_spec.validate(attrs)


def test_validate_against_weights():
    _, _, _, _, _, weights = make_case(SMALL, seed=0, n=1)
    ok = {"max_len": 10, "start_token": 8, "num_classes": 8}
    assert dec_spec.validate(ok, weights) == ok
    with pytest.raises(ValueError, match=r"attribute num_classes: found 9, expected 8 \(rows of out.weight\)"):
        dec_spec.validate({**ok, "num_classes": 9}, weights)
    with pytest.raises(ValueError, match=r"attribute start_token: found 9, expected < 9"):
        dec_spec.validate({**ok, "start_token": 9}, weights)
    bad = {**weights, "cell.weight_hh": np.zeros((96, 23), np.float32)}
    with pytest.raises(ValueError, match=r"decoder weight cell.weight_hh: found shape \(96, 23\), expected \(96, 24\)"):
        decoder_dims(bad)
    with pytest.raises(ValueError, match=r"\['out.bias'\] missing"):
        decoder_dims({k: v for k, v in weights.items() if k != "out.bias"})


@pytest.mark.parametrize("arch", ["sm_87", "sm_90"])
def test_kernel_compiles_with_nvrtc(arch):
    ptx = nvrtc.compile_ptx(SPEC.kernel_source(), arch)
    assert f".target {arch}" in ptx and f".visible .entry {dec_spec.KERNEL_NAME}(" in ptx


def run_kernel(cfg, memory, widths, holistic, weights, block=dec_spec.BLOCK):
    """Run attn_decoder_fp32 on the GPU; outputs and workspace pre-filled with poison."""
    nvrtc.use_primary_context()
    image = nvrtc.compile_kernel(SPEC.kernel_source(), nvrtc.device_arch(), kind="cubin")
    dims = decoder_dims(weights)
    n, w, _ = memory.shape
    t = cfg.max_word_len
    arrays = [np.ascontiguousarray(memory, np.float32), widths.astype(np.int32), np.ascontiguousarray(holistic, np.float32)]
    arrays += [np.ascontiguousarray(weights[k], np.float32) for k in WEIGHT_NAMES]
    bufs = [nvrtc.DeviceBuffer.from_array(a) for a in arrays]
    d_tokens = nvrtc.DeviceBuffer.from_array(np.full((n, t), -5, np.int32))
    d_probs = nvrtc.DeviceBuffer.from_array(np.full((n, t), np.nan, np.float32))
    d_ws = nvrtc.DeviceBuffer.from_array(np.full(dec_spec.workspace_bytes(n, w, dims) // 4, np.nan, np.float32))
    try:
        with nvrtc.CudaModule(image) as module:
            ints = [n, w, dims["D"], dims["E"], dims["Hd"], dims["A"], dims["C"], t, cfg.start_token]
            nvrtc.launch(module.function(dec_spec.KERNEL_NAME), max(n, 1), block,
                         bufs + [d_tokens, d_probs, d_ws] + [np.int32(v) for v in ints],
                         shared_bytes=dec_spec.shared_bytes(dims, w, block))
            nvrtc.synchronize()
            return d_tokens.to_array((n, t), np.int32), d_probs.to_array((n, t), np.float32)
    finally:
        for b in bufs + [d_tokens, d_probs, d_ws]:
            b.free()


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("seed,scale,end_bias,ramp,block", [
    (11, 1.0, 0.0, False, 128), (12, 3.0, 0.0, False, 64), (13, 3.0, 2.0, False, 96), (14, 2.0, 1.0, False, 32),
    (15, 3.0, 50.0, False, 128), (16, 1.0, -10.0, True, 128), (17, 1.0, -12.0, True, 64)])
def test_kernel_matches_reference(seed, scale, end_bias, ramp, block):
    _, memory, _, widths, holistic, weights = make_case(SMALL, seed, scale, end_bias, n=29, w=17, ramp=ramp)
    tokens, probs = run_kernel(SMALL, memory.numpy(), widths.numpy(), holistic.numpy(), weights, block)
    ref_tokens, ref_probs = run_ref(SMALL, memory, widths, holistic, weights)
    np.testing.assert_array_equal(tokens, ref_tokens)
    np.testing.assert_allclose(probs, ref_probs, atol=SPEC.tolerance(np.float32), rtol=0)


@pytest.mark.gpu
@needs_gpu
def test_kernel_matches_reference_default_sizes():
    cfg = SpotterConfig()
    _, memory, _, widths, holistic, weights = make_case(cfg, seed=21, scale=2.0, n=37, w=cfg.roi_max_width)
    tokens, probs = run_kernel(cfg, memory.numpy(), widths.numpy(), holistic.numpy(), weights)
    ref_tokens, ref_probs = run_ref(cfg, memory, widths, holistic, weights)
    np.testing.assert_array_equal(tokens, ref_tokens)
    np.testing.assert_allclose(probs, ref_probs, atol=SPEC.tolerance(np.float32), rtol=0)
