"""Quantization-aware fine-tuning: the same layers and the same weight rounding as INT8 calibration,
hooks that come off without a trace, and a run that trains and saves plain weights."""

import json

import numpy as np
import onnx
import pytest
import torch

from spotrt.calibration.qdq import quantize_weight, select_nodes
from spotrt.model.weights import load_weights
from spotrt.train.qat import QAT, fake_quant_weight, quantized_layers


def test_qat_simulates_the_layers_calibration_quantizes(exported_small):
    """Every node qdq.py quantizes in the exported portable graph is one layer QAT rounds, and back:
    same count, and for each node a layer named by its scope with a weight of the node's shape
    (BatchNorm folded: the same out/in channels and kernel)."""
    model, paths, _ = exported_small
    graph = onnx.load(str(paths["portable"])).graph
    inits = {t.name: tuple(t.dims) for t in graph.initializer}
    nodes = select_nodes(graph)
    layers = dict(quantized_layers(model))
    assert len(nodes) == len(layers) > 5
    unmatched = dict(layers)
    for n in nodes:
        scope = n.name.rsplit("/", 2)[-2]  # '/backbone.0/backbone.0.0/Conv' -> 'backbone.0.0'
        dims = inits[n.weight]
        hits = [k for k, m in unmatched.items() if (k == scope or k.endswith("." + scope))
                and tuple(m.weight.shape) == (dims if n.op_type == "Conv" else dims[::-1])]
        assert len(hits) == 1, (n.name, hits)
        del unmatched[hits[0]]
    assert not unmatched


def test_weight_rounding_is_the_calibration_grid():
    """fake_quant_weight gives the values the Q/DQ graph holds: quantize_weight's int8 times its
    per-channel scale, of the folded weight when a BatchNorm follows."""
    g = torch.Generator().manual_seed(0)
    w = torch.randn(8, 4, 3, 3, generator=g)
    fold = torch.rand(8, generator=g) + 0.5
    q, scale = quantize_weight((w * fold.reshape(-1, 1, 1, 1)).numpy(), 0)
    grid = q.astype(np.float32) * scale.reshape(-1, 1, 1, 1)
    got = fake_quant_weight(w, fold) * fold.reshape(-1, 1, 1, 1)
    np.testing.assert_allclose(got.numpy(), grid, rtol=1e-5, atol=1e-6)
    q2, s2 = quantize_weight(w.numpy(), 0)
    np.testing.assert_allclose(fake_quant_weight(w).numpy(), q2 * s2.reshape(-1, 1, 1, 1), rtol=1e-5, atol=1e-6)
    assert not torch.equal(fake_quant_weight(w), w)


def test_hooks_change_the_forward_and_leave_no_trace(exported_small):
    """Attached: BatchNorms frozen under model.train(), outputs changed a little; detached: the
    model computes exactly what it did, and its state_dict never changed keys."""
    model, _, weights = exported_small
    m = load_weights(weights).eval()
    x = torch.randn(1, 3, 128, 256, generator=torch.Generator().manual_seed(1))
    keys = list(m.state_dict())
    with torch.no_grad():
        before = m.features(x)[1].clone()
        qat = QAT(m).attach()
        m.train()
        bns = [mod for mod in m.modules() if isinstance(mod, torch.nn.BatchNorm2d)]
        assert bns and all(not bn.training for bn in bns)
        m.features(x)  # the ranges see a batch in training mode
        m.eval()
        during = m.features(x)[1]
        seen = [r.amax for k, r in qat.ranges.items() if k.startswith(("backbone.", "rec_features."))]
        assert len(seen) >= 6 and all(a and a > 0 for a in seen)
        qat.detach()
        m.train()
        assert any(bn.training for bn in bns)
        m.eval()
        after = m.features(x)[1]
    assert list(m.state_dict()) == keys
    assert torch.equal(before, after)
    diff = float((during - before).abs().max())
    assert 0 < diff < 0.5 * float(before.abs().max())


def test_train_with_qat_saves_plain_weights(tmp_path, capsys):
    from spotrt.cli import main

    run = tmp_path / "q"
    assert main(["train", "--out", str(run), "--steps", "2", "--batch", "1", "--size", "128x256", "--workers", "0",
                 "--curriculum", "0:0", "--checkpoint-every", "1", "--qat"]) == 0
    assert "layers train with their INT8 rounding" in capsys.readouterr().out
    assert json.loads((run / "state.json").read_text())["train"]["qat"] is True
    model = load_weights(run / "last.safetensors")
    assert not any("forward" in vars(mod) for mod in model.modules())
