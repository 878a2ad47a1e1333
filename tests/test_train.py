"""Training: a few real steps on CPU, checkpoints in safetensors, the loss log, and exact resume."""

import json

import cv2
import numpy as np
import pytest

import torch

from spotrt.model.spotter import Spotter
from spotrt.model.weights import load_weights
from spotrt.errors import SpotrtError
from spotrt.postprocess import decode_tokens
from spotrt.train.batches import BatchMaker, degrade_crop, level_at, parse_curriculum
from spotrt.train.loop import TrainConfig, train

SMALL = dict(batch=2, height=128, width=256, checkpoint_every=1, workers=0, warmup=2, curriculum="0:0,2:1")


def test_curriculum():
    cur = parse_curriculum("0:0,300:1,1200:2")
    assert [level_at(cur, s) for s in (0, 299, 300, 1199, 1200, 10**6)] == [0, 0, 1, 1, 2, 2]


def test_degrade_crop_keeps_size_and_is_reproducible():
    """The real-crop degradation keeps the crop's shape and dtype, is a pure function of the rng,
    and, over a few draws, really lowers the detail (resolution/blur) of a sharp crop."""
    img = np.zeros((40, 120, 3), np.uint8)
    img[:, ::4] = 255  # 1-px-sharp vertical stripes: every blur or down/up-scale flattens them
    outs = [degrade_crop(img, np.random.default_rng(s)) for s in range(20)]
    assert all(o.shape == img.shape and o.dtype == np.uint8 for o in outs)
    again = degrade_crop(img, np.random.default_rng(3))
    assert np.array_equal(again, outs[3])
    detail = [float(np.abs(np.diff(o.astype(np.float32), axis=1)).mean()) for o in outs]
    sharp = float(np.abs(np.diff(img.astype(np.float32), axis=1)).mean())
    assert min(detail) < 0.6 * sharp  # some draws blur it
    assert any(not np.array_equal(o, img) for o in outs)


def test_train_checkpoint_and_exact_resume(tmp_path):
    straight = train(TrainConfig(out=str(tmp_path / "a"), steps=3, **SMALL))
    log = [json.loads(ln) for ln in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [0, 1, 2]
    for r in log:
        assert all(k in r for k in ("tpn_cls", "tpn_reg", "det_cls", "det_reg", "rec")) and r["loss"] > 0

    train(TrainConfig(out=str(tmp_path / "b"), steps=2, **SMALL))
    resumed = train(TrainConfig(out=str(tmp_path / "b"), steps=3, **SMALL), resume=True)
    state = json.loads((tmp_path / "b" / "state.json").read_text())
    assert state["step"] == 3
    a = load_weights(straight).state_dict()
    b = load_weights(resumed).state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-5), k
    init = Spotter(load_weights(straight).cfg).state_dict()
    changed = sum(not torch.equal(init[k], a[k]) for k in a if a[k].dtype.is_floating_point)
    assert changed > 10  # the steps did move the weights


def test_a_run_that_goes_on_keeps_its_own_settings(tmp_path, capsys):
    """`--resume` with only --out (and --continue-from on another machine with only the file) goes on with
    the settings the run was started with, not the flags' defaults; a flag written again changes its
    setting and the change is printed; a run cut below its step is one line."""
    from spotrt.cli import main

    flags = ["--batch", "2", "--size", "128x256", "--workers", "0", "--warmup", "2", "--curriculum", "0:0",
             "--lr", "0.0007", "--seed", "5", "--no-augment", "--checkpoint-every", "1"]
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), "--steps", "1", *flags]) == 0
    started = json.loads((run / "state.json").read_text())["train"]
    assert started["lr"] == 0.0007 and started["height"] == 128 and started["augment"] is False

    capsys.readouterr()
    assert main(["train", "--out", str(run), "--resume", "--steps", "2"]) == 0
    state = json.loads((run / "state.json").read_text())
    assert state["step"] == 2 and state["train"] == dict(started, steps=2)
    said = capsys.readouterr().out
    assert "going on from" in said and "--steps 2 (the run had 1)" in said and "--lr" not in said

    assert main(["train", "--out", str(run), "--resume", "--steps", "3", "--lr", "0.0003"]) == 0
    assert json.loads((run / "state.json").read_text())["train"] == dict(started, steps=3, lr=0.0003)
    assert "--lr 0.0003 (the run had 0.0007)" in capsys.readouterr().out

    # another machine: the weights-only checkpoint carries the settings
    other = tmp_path / "other"
    assert main(["train", "--out", str(other), "--continue-from", str(run / "last.safetensors"), "--steps", "4"]) == 0
    moved = json.loads((other / "state.json").read_text())
    assert moved["step"] == 4
    assert moved["train"] == dict(started, steps=4, lr=0.0003, out=str(other),
                                  continue_from=str(run / "last.safetensors"))

    assert main(["train", "--out", str(run), "--resume", "--steps", "2"]) == 1
    assert "found the run at step 3, expected at most --steps 2" in capsys.readouterr().err


def test_vgg16_backbone_builds_and_runs():
    """The paper's backbone: VGG16 conv1_1..conv4_3 (10 conv layers, stride 8), then the same heads."""
    from spotrt.model.config import SpotterConfig

    model = Spotter(SpotterConfig(backbone="vgg16")).eval()
    convs = [m for m in model.backbone.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs[:10]] == [64, 64, 128, 128, 256, 256, 256, 512, 512, 512]
    feats = model.backbone(torch.zeros(1, 3, 64, 128))
    assert feats.shape == (1, 128, 8, 16)
    out = model(torch.randn(1, 3, 64, 128))
    assert out.tokens.shape == (1, model.cfg.max_proposals, model.cfg.max_word_len)


def test_custom_charset_trains(tmp_path):
    """A digits-only charset with a shorter max length trains and decodes in its own alphabet."""
    cfg = dict(SMALL, curriculum="0:0")
    out = train(TrainConfig(out=str(tmp_path / "d"), steps=1, model={"charset": "0123456789", "max_word_len": 8}, **cfg))
    model = load_weights(out)
    assert model.cfg.charset == "0123456789" and model.cfg.num_classes == 11
    assert model.decoder.out.out_features == 11
    # the data is drawn in the run's alphabet: readable labels are digit strings of at most 8, and
    # there are some (a charset the generator ignored would leave the recognizer nothing to learn)
    maker = BatchMaker(model.cfg, 0, 2, 1, 128, 256, parse_curriculum("0:0"), None, 0.0, 8, "0123456789")
    labels = [t for texts in maker(0).texts for t in texts if t]
    assert labels and all(set(t) <= set("0123456789") and len(t) <= 8 for t in labels)
    log = [json.loads(ln) for ln in (tmp_path / "d" / "log.jsonl").read_text().splitlines()]
    assert log and all(0.0 < r["rec"] < 1e3 for r in log)
    # the decoder's classes are end-of-word + the 10 digits, and its text decodes in that alphabet
    with torch.no_grad():
        model.decoder.out.bias.fill_(-10.0)
        model.decoder.out.bias[1 + "0123456789".index("7")] = 10.0
    tokens, _ = model.decoder.greedy(torch.zeros(2, 5, 128), torch.ones(2, 5, dtype=torch.bool), torch.zeros(2, 128))
    assert tokens.shape == (2, 8)
    assert decode_tokens(tokens[0].numpy(), model.cfg.charset) == "77777777"


def test_real_scenes_levels_open_text_and_bf16_train(tmp_path):
    """The real-scenes recipe on a tiny ICDAR-layout folder: real scene crops with ignored regions,
    open-vocabulary text on photo backgrounds, extra proposal levels, bfloat16 autocast; the losses
    are finite, the weights move and keep the levels in their config."""
    pytest.importorskip("wordfreq")
    from test_scenes import _write_set

    scenes = _write_set(tmp_path / "scenes", 12)
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):
        cv2.imwrite(str(photos / f"p{i}.jpg"), np.random.default_rng(i).integers(0, 255, (90, 120, 3), dtype=np.uint8))
    tc = TrainConfig(out=str(tmp_path / "r"), steps=2, batch=2, mosaics=1, height=128, width=256, checkpoint_every=1,
                     workers=0, warmup=1, curriculum="0:2", real_scenes=1, scene_root=str(scenes), open_text=True,
                     backgrounds=str(photos), bf16=True, paste_share=0.5, label_smoothing=0.1,
                     model={"level_anchor_heights": ((110.0,), (280.0,))})
    out = train(tc)
    log = [json.loads(ln) for ln in (tmp_path / "r" / "log.jsonl").read_text().splitlines()]
    assert len(log) == 2 and all(np.isfinite(r["loss"]) and r["loss"] > 0 for r in log)
    model = load_weights(out)
    assert model.cfg.level_anchor_heights == ((110.0,), (280.0,))
    assert len(model.tpn.down) == 2


def test_batches_hold_real_scenes_first_and_ignore_per_image(tmp_path):
    from test_scenes import _write_set

    from spotrt.model.config import SpotterConfig
    from spotrt.train.batches import BatchMaker

    scenes = _write_set(tmp_path / "scenes", 12)
    maker = BatchMaker(SpotterConfig(), 0, 3, 1, 128, 256, parse_curriculum("0:1"), None, 0.0, 16,
                       SpotterConfig().charset, real_scenes=2, scene_root=str(scenes))
    b = maker(0)
    assert b.images.shape == (4, 3, 128, 256) and b.num_scenes == 3
    assert len(b.ignore) == 4 and all(g.shape[1] == 4 for g in b.ignore)
    assert b.ignore[2].shape[0] == 0 and b.ignore[3].shape[0] == 0  # synthetic scene and mosaic
    # the real scenes' words are 'hello' (or detection-only when trimmed)
    assert set(t for ts in b.texts[:2] for t in ts) <= {"hello", ""}
    again = maker(0)
    assert torch.equal(b.images, again.images)  # a batch is a pure function of (seed, step)


def test_continue_from_a_weights_only_checkpoint(tmp_path):
    """A new machine has only the committed last.safetensors: the run goes on from its step."""
    from spotrt.train.loop import checkpoint_step

    first = train(TrainConfig(out=str(tmp_path / "a"), steps=2, **SMALL))
    assert checkpoint_step(first) == 2
    moved = train(TrainConfig(out=str(tmp_path / "b"), steps=3, continue_from=str(first), **SMALL))
    log = [json.loads(ln) for ln in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [2]
    assert checkpoint_step(moved) == 3
    a, b = load_weights(first).state_dict(), load_weights(moved).state_dict()
    assert any(not torch.equal(a[k], b[k]) for k in a if a[k].dtype.is_floating_point)
    try:
        train(TrainConfig(out=str(tmp_path / "c"), steps=2, continue_from=str(first), **SMALL))
    except SpotrtError as exc:
        assert "found step 2, expected fewer than --steps 2" in str(exc)
    else:
        raise AssertionError("continuing past the end must fail")


def test_arch_sizes_reach_the_model(tmp_path):
    """`--arch` sets SpotterConfig sizes of a new model; unknown names and bad sizes are refused."""
    from spotrt.train.config import parse_arch

    sizes = parse_arch("decoder_hidden=48, encoder-channels=40")
    assert sizes == {"decoder_hidden": 48, "encoder_channels": 40}
    cfg = dict(SMALL, curriculum="0:0")
    model = load_weights(train(TrainConfig(out=str(tmp_path / "a"), steps=1, model=sizes, **cfg)))
    assert model.cfg.decoder_hidden == 48 and model.cfg.encoder_channels == 40
    assert tuple(model.decoder.cell.weight_hh.shape) == (4 * 48, 48)
    with pytest.raises(SpotrtError, match="expected NAME=INTEGER"):
        parse_arch("decoder_hidden")


def test_a_wider_recognizer_starts_from_what_the_narrow_one_read(tmp_path):
    """init_matching embeds a narrower recognizer into a wider one (encoder channels, decoder LSTM):
    the grown model's outputs equal the old model's exactly; a change of shape that the widenable
    fields do not explain starts fresh instead."""
    from conftest import small_spotter

    from spotrt.model.weights import init_matching, save_weights

    old = small_spotter(seed=3)
    path = tmp_path / "narrow.safetensors"
    save_weights(old, path)
    torch.manual_seed(4)
    grown = Spotter(old.cfg.replace(encoder_channels=old.cfg.encoder_channels + 32,
                                    decoder_hidden=old.cfg.decoder_hidden + 64)).eval()
    fresh, widened = init_matching(grown, path)
    assert fresh == [] and "decoder.cell.weight_hh" in widened and "encoder.project.weight" in widened
    x = torch.randn(2, 3, 128, 256, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        a, b = old(x), grown(x)
    assert int(a.count.sum()) > 0 and bool((a.tokens > 0).any())  # something was read
    for name in ("boxes", "scores", "token_probs", "proposals"):
        assert torch.allclose(getattr(a, name), getattr(b, name), atol=1e-5), name
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.count, b.count)
    # training moves the new units off their start: the zero weights into the old units get gradients
    dec, h = grown.decoder, old.cfg.decoder_hidden
    assert float(dec.hid_proj.weight.detach()[:, h:].abs().max()) == 0.0
    memory = torch.randn(3, 5, old.cfg.encoder_hidden)
    mask = torch.ones(3, 5, dtype=torch.bool)
    dec(memory, mask, memory[:, 0], torch.randint(1, 10, (3, 4))).square().mean().backward()
    assert float(dec.hid_proj.weight.grad[:, h:].abs().max()) > 0
    assert float(dec.out.weight.grad[:, h:dec.cell.weight_hh.shape[1]].abs().max()) > 0
    other = Spotter(old.cfg.replace(embed_dim=old.cfg.embed_dim + 8, decoder_hidden=old.cfg.decoder_hidden + 64))
    fresh, widened = init_matching(other, path)
    assert widened == [] and "decoder.embed.weight" in fresh and "decoder.cell.weight_hh" in fresh
