"""ONNX export: graph structure, metadata, and both graphs on ONNX Runtime against Spotter.forward."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxruntime_extensions")

from conftest import random_batch, small_spotter  # noqa: E402
from spotrt.cli import main  # noqa: E402
from spotrt.errors import SpotrtError  # noqa: E402
from spotrt.export.onnx_export import export_model  # noqa: E402
from spotrt.plugins.attn_decoder.reference import WEIGHT_NAMES  # noqa: E402
from spotrt.runtime.onnxruntime_backend import OnnxRuntimeSpotter  # noqa: E402

OUTPUTS = ("boxes", "scores", "tokens", "token_probs", "count")


def compare_with_torch(model, path, batch: int, seed: int = 3):
    """Run the graph on ONNX Runtime and Spotter.forward on the same random batch; assert equality."""
    x = random_batch(batch, seed)
    ref = model(x)
    got = OnnxRuntimeSpotter(path, threads=1).run(x.numpy())
    k, t = model.cfg.output_slots, model.cfg.max_word_len
    assert got["boxes"].shape == (batch, k, 4) and got["tokens"].shape == (batch, k, t)
    assert got["tokens"].dtype == np.int32 and got["count"].dtype == np.int32
    np.testing.assert_array_equal(got["count"], ref.count.numpy())
    assert ref.count.min() > 0
    np.testing.assert_allclose(got["boxes"], ref.boxes.numpy(), atol=1e-3, rtol=0)
    np.testing.assert_allclose(got["scores"], ref.scores.numpy(), atol=1e-4, rtol=0)
    np.testing.assert_array_equal(got["tokens"], ref.tokens.numpy())
    np.testing.assert_allclose(got["token_probs"], ref.token_probs.numpy(), atol=1e-4, rtol=0)
    assert (ref.tokens > 0).any() and (ref.scores > 0.5).any()
    return got


def test_graphs_pass_checker_and_carry_metadata(exported_small):
    model, paths, _ = exported_small
    assert set(paths) == {"plugin", "portable", "read"}
    for kind, path in paths.items():
        proto = onnx.load(str(path))
        onnx.checker.check_model(proto)
        meta = {p.key: p.value for p in proto.metadata_props}
        assert meta["spotrt_graph"] == kind
        assert json.loads(meta["spotrt_config"]) == json.loads(model.cfg.to_json())
        assert meta["spotrt_charset"] == model.cfg.charset
        assert json.loads(meta["spotrt_mean"]) == list(model.cfg.mean)
        assert json.loads(meta["spotrt_std"]) == list(model.cfg.std)
        assert meta["spotrt_version"]
        assert proto.ir_version <= 10
    main_meta = {p.key: p.value for p in onnx.load(str(paths["plugin"])).metadata_props}
    assert main_meta["spotrt_input_size"] == "128x256" and main_meta["spotrt_read_graph"] == paths["read"].name


def test_plugin_graph_structure(exported_small):
    model, paths, _ = exported_small
    proto = onnx.load(str(paths["plugin"]))
    assert {(o.domain, o.version) for o in proto.opset_import} >= {("spotrt", 1)}
    custom = [n for n in proto.graph.node if n.domain == "spotrt"]
    assert sorted(n.op_type for n in custom) == ["AttnDecoder", "VarRoIPool"]
    for n in custom:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
        assert attrs["plugin_namespace"] == b"spotrt" and attrs["plugin_version"] == b"1"
        if n.op_type == "VarRoIPool":
            c = model.cfg
            assert (attrs["stride"], attrs["pooled_height"], attrs["max_width"]) == (c.rec_stride, c.roi_height, c.roi_max_width)
        else:
            c = model.cfg
            assert (attrs["max_len"], attrs["start_token"], attrs["num_classes"]) == (c.max_word_len, c.start_token, c.num_classes)
            inits = {t.name: onnx.numpy_helper.to_array(t) for t in proto.graph.initializer}
            weights = list(n.input)[3:]
            assert len(weights) == len(WEIGHT_NAMES)
            params = dict(model.decoder.named_parameters())
            for name, init in zip(WEIGHT_NAMES, weights):
                np.testing.assert_array_equal(inits[init], params[name].detach().numpy())
    # The portable graph uses the default domain only; every output has a static shape.
    portable = onnx.load(str(paths["portable"]))
    assert {n.domain for n in portable.graph.node} <= {"", "ai.onnx"}
    assert {n.op_type for n in portable.graph.node} >= {"GridSample", "NonMaxSuppression", "TopK", "LSTM"}
    for g in (proto, portable):
        shapes = {o.name: [d.dim_value for d in o.type.tensor_type.shape.dim] for o in g.graph.output}
        k, t = model.cfg.max_proposals, model.cfg.max_word_len
        assert shapes == {"boxes": [1, k, 4], "scores": [1, k], "tokens": [1, k, t], "token_probs": [1, k, t],
                          "count": [1]}


@pytest.mark.parametrize("kind", ["plugin", "portable"])
def test_graph_equals_torch(exported_small, kind):
    model, paths, _ = exported_small
    compare_with_torch(model, paths[kind], batch=1)


@pytest.mark.parametrize("kind", ["plugin", "portable"])
def test_proposal_levels_export_and_equal_torch(tmp_path, kind):
    """Extra proposal levels (strides 16 and 32) go into both graphs and rank with the stride-8 ones."""
    model = small_spotter(seed=2, level_anchor_heights=((40.0, 64.0), (100.0,)))
    with torch.no_grad():
        for cls in model.tpn.level_cls:
            cls.weight.mul_(20.0)
            cls.bias.zero_()
    paths = export_model(model, tmp_path / "m.onnx", input_size=(128, 256), batch=1, kinds=(kind,))
    compare_with_torch(model, paths[kind], batch=1, seed=4)
    graph = onnx.load(str(paths[kind])).graph
    assert any(n.name.startswith("/tpn/level_cls.1/") for n in graph.node)
    from spotrt.calibration.qdq import select_nodes

    quantized = [q.name for q in select_nodes(graph)]
    assert any(q.startswith("/tpn/down.1/") for q in quantized)        # the level's conv is INT8
    assert not any(q.startswith(("/tpn/level_cls", "/tpn/level_reg")) for q in quantized)  # its heads stay float


def test_batch_and_other_charset_and_word_length(tmp_path):
    model = small_spotter(seed=5, charset="abcxyz", max_word_len=5).train()
    paths = export_model(model, tmp_path / "m.onnx", input_size=(128, 256), batch=2, kinds=("portable",))
    assert model.training  # the caller's model is left as it was
    model.eval()
    assert paths == {"portable": tmp_path / "m.portable.onnx"}
    got = compare_with_torch(model, paths["portable"], batch=2, seed=9)
    assert got["tokens"].shape == (2, 12, 5) and got["tokens"].max() <= 6


def test_bad_weights_and_unwritable_output(tmp_path, capsys):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a weights file")
    with pytest.raises(SpotrtError, match="bad.safetensors"):
        export_model(bad, tmp_path / "out")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    model = small_spotter()
    with pytest.raises(SpotrtError, match="cannot be created"):
        export_model(model, blocker / "sub" / "m.onnx", input_size=(128, 256))
    with pytest.raises(SpotrtError, match="multiples of 32"):
        export_model(model, tmp_path / "o", input_size=(100, 256))
    assert main(["export", "--model", str(bad), "--out", str(tmp_path / "o2")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("spotrt: error: weights") and "Traceback" not in err[0]
    assert main(["export", "--model", str(bad), "--input-size", "abc"]) == 1
    assert "HEIGHTxWIDTH" in capsys.readouterr().err


def test_cli_export_from_weights_file(exported_small, tmp_path, capsys):
    _, _, weights = exported_small
    assert main(["export", "--model", str(weights), "--out", str(tmp_path / "x"), "--input-size", "128x256",
                 "--graphs", "plugin"]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "x" / "model.onnx").is_file() and "model.onnx" in out
    assert not (tmp_path / "x" / "model.portable.onnx").exists()
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "x" / "model.onnx")).metadata_props}
    assert meta["spotrt_input_size"] == "128x256" and json.loads(meta["spotrt_config"])["max_proposals"] == 12
