"""The region encoder, the attention decoder (greedy and teacher forcing) and the spotter's static-shape outputs."""
from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from spotrt.model.config import SpotterConfig  # noqa: E402
from spotrt.model.heads import AttentionDecoder  # noqa: E402
from spotrt.model.spotter import Spotter  # noqa: E402

TINY = dict(charset="abc", max_word_len=6, encoder_hidden=8, decoder_hidden=8, embed_dim=4, attn_dim=4)


def tiny_decoder(seed: int = 0) -> AttentionDecoder:
    torch.manual_seed(seed)
    return AttentionDecoder(SpotterConfig(**TINY)).eval()


def inputs(n: int = 3, w: int = 5, d: int = 8, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    memory = torch.randn(n, w, d, generator=g)
    widths = torch.tensor([w, 2, 1, 3, 4][:n])
    mask = torch.arange(w)[None, :] < widths[:, None]
    memory = memory * mask[..., None]
    holistic = torch.randn(n, d, generator=g)
    return memory, mask, holistic


def script_step(dec: AttentionDecoder, script: torch.Tensor, margin: float = 2.0):
    """Replace dec.step: call i returns logits whose argmax is script[:, i]; records the fed tokens."""
    calls: list[torch.Tensor] = []
    classes = 4

    def step(token, state, memory, mem_keys, mask):
        i = len(calls)
        calls.append(token.clone())
        logits = torch.zeros(token.shape[0], classes)
        logits[torch.arange(token.shape[0]), script[:, i]] = margin
        return logits, state, torch.zeros(mask.shape)

    dec.step = step
    return calls


P_WIN = float(torch.softmax(torch.tensor([2.0, 0, 0, 0]), 0)[0])  # probability of the scripted token


def test_greedy_tokens_zero_after_end_and_early_stop():
    dec = tiny_decoder()
    script = torch.tensor([
        [1, 2, 0, 3, 3, 3],   # "ab" then end at step 2
        [3, 0, 1, 1, 1, 1],   # "c" then end at step 1; steps after the end are forced to 0
        [2, 2, 2, 0, 1, 1],   # "bbb" then end at step 3
    ])
    calls = script_step(dec, script)
    tokens, probs = dec.greedy(*inputs(3))
    assert tokens.shape == (3, 6) and probs.shape == (3, 6) and tokens.dtype == torch.long
    assert tokens.tolist() == [[1, 2, 0, 0, 0, 0], [3, 0, 0, 0, 0, 0], [2, 2, 2, 0, 0, 0]]
    # Stopped once every region ended (after step 3): 4 calls, not max_len = 6.
    assert len(calls) == 4
    # Fed tokens: start, then the previous prediction, 0 once a region has ended.
    assert [c.tolist() for c in calls] == [[4, 4, 4], [1, 3, 2], [2, 0, 2], [0, 0, 2]]
    # Probabilities of the emitted tokens up to and including the end; 1 after it (until the stop).
    torch.testing.assert_close(probs[0, :3], torch.full((3,), P_WIN))
    assert probs[0, 3].item() == 1.0
    torch.testing.assert_close(probs[1, :2], torch.full((2,), P_WIN))
    assert probs[1, 2:4].tolist() == [1.0, 1.0]
    torch.testing.assert_close(probs[2, :4], torch.full((4,), P_WIN))


def test_greedy_probs_after_end_are_one_even_after_early_stop():
    dec = tiny_decoder()
    script = torch.tensor([[1, 0, 1, 1, 1, 1], [0, 1, 1, 1, 1, 1]])
    script_step(dec, script)
    _, probs = dec.greedy(*inputs(2))
    assert probs[0, 2:].tolist() == [1.0] * 4
    assert probs[1, 1:].tolist() == [1.0] * 5


def test_greedy_runs_max_len_without_end():
    dec = tiny_decoder()
    calls = script_step(dec, torch.tensor([[1] * 6, [2, 3, 1, 2, 3, 1]]))
    tokens, probs = dec.greedy(*inputs(2))
    assert len(calls) == 6
    assert tokens.tolist() == [[1] * 6, [2, 3, 1, 2, 3, 1]]
    torch.testing.assert_close(probs, torch.full((2, 6), P_WIN))


def count_steps(dec: AttentionDecoder) -> list[int]:
    calls: list[int] = []
    original = dec.step

    def step(*args):
        calls.append(1)
        return original(*args)

    dec.step = step
    return calls


def test_greedy_with_hand_set_weights():
    """Real step(), output layer set by hand: the bias alone decides the token."""
    dec = tiny_decoder()
    with torch.no_grad():
        dec.out.weight.zero_()
        dec.out.bias.copy_(torch.tensor([0.0, 0.0, 3.0, 0.0]))   # always 'b', never the end
    calls = count_steps(dec)
    tokens, probs = dec.greedy(*inputs(3))
    assert len(calls) == 6
    assert (tokens == 2).all()
    p = float(torch.softmax(torch.tensor([0.0, 0, 3, 0]), 0)[2])
    torch.testing.assert_close(probs, torch.full((3, 6), p))

    with torch.no_grad():
        dec.out.bias.copy_(torch.tensor([5.0, 0.0, 0.0, 0.0]))   # end-of-word at once
    calls.clear()
    tokens, probs = dec.greedy(*inputs(3))
    assert len(calls) == 1
    assert (tokens == 0).all()
    p0 = float(torch.softmax(torch.tensor([5.0, 0, 0, 0]), 0)[0])
    torch.testing.assert_close(probs[:, 0], torch.full((3,), p0))


def test_greedy_no_regions():
    dec = tiny_decoder()
    tokens, probs = dec.greedy(torch.zeros(0, 5, 8), torch.zeros(0, 5, dtype=torch.bool), torch.zeros(0, 8))
    assert tokens.shape == (0, 6) and probs.shape == (0, 6)


def test_teacher_forcing_matches_greedy():
    dec = tiny_decoder(seed=3)
    memory, mask, holistic = inputs(3)
    tokens, probs = dec.greedy(memory, mask, holistic)
    with torch.no_grad():
        logits = dec(memory, mask, holistic, tokens)
    assert logits.shape == (3, 6, 4)
    # Step 0 sees only the start token: identical to greedy's first step.
    p0, t0 = torch.softmax(logits[:, 0], -1).max(-1)
    assert torch.equal(t0, tokens[:, 0])
    torch.testing.assert_close(p0, probs[:, 0])
    # Fed its own predictions, teacher forcing reproduces greedy up to each region's end.
    for i in range(3):
        end = int((tokens[i] == 0).nonzero()[0]) if (tokens[i] == 0).any() else 6
        steps = min(end + 1, 6)
        pf, tf = torch.softmax(logits[i, :steps], -1).max(-1)
        assert torch.equal(tf, tokens[i, :steps])
        torch.testing.assert_close(pf, probs[i, :steps])


def test_masked_memory_columns_are_ignored():
    dec = tiny_decoder(seed=4)
    memory, mask, holistic = inputs(3)
    with torch.no_grad():
        a = dec(memory, mask, holistic, torch.tensor([[1, 2, 3, 0, 0, 0]] * 3))
        noisy = memory + 100.0 * (~mask)[..., None]
        b = dec(noisy, mask, holistic, torch.tensor([[1, 2, 3, 0, 0, 0]] * 3))
        c = dec(memory + 1.0, mask, holistic, torch.tensor([[1, 2, 3, 0, 0, 0]] * 3))
    torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    assert not torch.allclose(a, c)


SPOT_CFG = dict(feat_channels=16, max_proposals=6, max_word_len=4, encoder_hidden=16, decoder_hidden=16,
                embed_dim=8, attn_dim=8, roi_height=4, roi_max_width=12, pre_nms_top_n=100)


@pytest.mark.parametrize("changes", [{}, {"proposal_min_size": 1000.0}], ids=["proposals", "no-proposals"])
def test_spotter_forward_static_shapes(changes):
    torch.manual_seed(0)
    cfg = SpotterConfig(**SPOT_CFG, **changes)
    model = Spotter(cfg).eval()
    images = torch.randn(2, 3, 64, 128)
    out = model(images)
    b, k, t = 2, cfg.max_proposals, cfg.max_word_len
    assert out.boxes.shape == (b, k, 4) and out.proposals.shape == (b, k, 4)
    assert out.scores.shape == (b, k)
    assert out.tokens.shape == (b, k, t) and out.tokens.dtype == torch.long
    assert out.token_probs.shape == (b, k, t)
    assert out.count.shape == (b,) and out.count.dtype == torch.long
    assert ((out.count >= 0) & (out.count <= k)).all()
    if changes:
        assert out.count.tolist() == [0, 0]
    else:
        assert (out.count > 0).all()
    for i in range(b):
        n = int(out.count[i])
        for x in (out.boxes, out.scores, out.tokens, out.token_probs, out.proposals):
            assert (x[i, n:] == 0).all()
        valid = out.boxes[i, :n]
        assert ((valid[:, 0::2] >= 0) & (valid[:, 0::2] <= 128)).all()
        assert ((valid[:, 1::2] >= 0) & (valid[:, 1::2] <= 64)).all()
        assert ((out.scores[i, :n] > 0) & (out.scores[i, :n] < 1)).all()
        assert ((out.tokens[i, :n] >= 0) & (out.tokens[i, :n] < cfg.num_classes)).all()
        assert ((out.token_probs[i, :n, 0] > 0) & (out.token_probs[i, :n, 0] <= 1)).all()
        for row in out.tokens[i, :n]:
            ends = (row == 0).nonzero()
            if len(ends):
                assert (row[int(ends[0]):] == 0).all()
    # Batch items are independent: image 1 alone gives the same outputs as in the batch.
    if not changes:
        alone = model(images[1:])
        torch.testing.assert_close(alone.boxes[0], out.boxes[1], atol=1e-4, rtol=1e-4)
        assert torch.equal(alone.tokens[0], out.tokens[1])


ENC_CFG = dict(rec_channels=6, roi_height=8, roi_max_width=10, encoder_hidden=8, encoder_channels=5)


@pytest.mark.parametrize("convs,bidir", [(0, False), (3, True), (2, False), (4, True)])
def test_region_encoder_shapes_mask_and_holistic(convs, bidir):
    from spotrt.model.heads import RegionEncoder

    torch.manual_seed(0)
    enc = RegionEncoder(SpotterConfig(**ENC_CFG, encoder_convs=convs, encoder_bidirectional=bidir)).eval()
    pooled = torch.randn(3, 6, 8, 10)
    widths = torch.tensor([10, 4, 1])
    with torch.no_grad():
        memory, mask, holistic = enc(pooled, widths)
        out, _ = enc.lstm(torch.relu(enc.project(_columns(enc, pooled))))
    assert memory.shape == (3, 10, 8) and holistic.shape == (3, 8)
    assert mask.tolist()[1] == [True] * 4 + [False] * 6
    assert (memory[1, 4:] == 0).all() and (memory[2, 1:] == 0).all() and (memory[1, :4] != 0).any()
    half = 4 if bidir else 8
    # forward half: the state at each region's last valid column
    torch.testing.assert_close(holistic[:, :half], out[torch.arange(3), widths - 1, :half])
    if bidir:  # backward half: the state at its first column, which has read the whole row
        torch.testing.assert_close(holistic[:, half:], out[:, 0, half:])


def _columns(enc, pooled):
    x = enc.column(pooled)
    return x.permute(0, 3, 1, 2).reshape(x.shape[0], x.shape[3], -1)


def test_region_encoder_config_checks_and_old_weights_config():
    with pytest.raises(ValueError, match="even size"):
        from spotrt.model.heads import RegionEncoder

        RegionEncoder(SpotterConfig(encoder_hidden=7))
    with pytest.raises(ValueError, match="encoder_convs"):
        SpotterConfig(encoder_convs=-1)
    old = json.loads(SpotterConfig().to_json())
    for key in ("encoder_convs", "encoder_channels", "encoder_bidirectional"):
        del old[key]
    cfg = SpotterConfig.from_json(json.dumps(old))  # a file written before the encoder had conv blocks
    assert (cfg.encoder_convs, cfg.encoder_bidirectional) == (0, False)
    assert SpotterConfig().encoder_convs == 3 and SpotterConfig().encoder_bidirectional
