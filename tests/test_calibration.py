"""INT8 calibration: range methods, the Q/DQ graph, ONNX Runtime accuracy against FP32, cache, errors."""
from __future__ import annotations

import json
from difflib import SequenceMatcher

import cv2
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxruntime_extensions")

from spotrt.calibration.calibrate import calibrate  # noqa: E402
from spotrt.calibration.frames import even_indices  # noqa: E402
from spotrt.calibration.qdq import (  # noqa: E402
    fold_int32_dequantize, quantize_weight, select_nodes)
from spotrt.calibration.stats import NUM_BINS, TensorStats, amax_from_stats, entropy_threshold_bin  # noqa: E402
from spotrt.cli import main  # noqa: E402
from spotrt.errors import SpotrtError  # noqa: E402
from spotrt.runtime.onnxruntime_backend import OnnxRuntimeSpotter  # noqa: E402


def stats_of(x) -> TensorStats:
    s = TensorStats()
    s.update_absmax(x)
    s.update_hist(x)
    return s


# --- range methods ------------------------------------------------------------------------------

def test_entropy_keeps_the_whole_range_of_a_uniform_distribution():
    x = np.random.default_rng(0).uniform(-1, 1, 200_000).astype(np.float32)
    s = stats_of(x)
    assert amax_from_stats(s, "entropy") > 0.95
    assert amax_from_stats(s, "minmax") == pytest.approx(np.abs(x).max())


def test_entropy_and_percentile_clip_outliers_of_a_gaussian():
    x = np.random.default_rng(1).standard_normal(200_000).astype(np.float32)
    x[:3] = 100.0
    s = stats_of(x)
    assert amax_from_stats(s, "minmax") == 100.0
    assert 3.0 < amax_from_stats(s, "entropy") < 10.0
    assert 3.5 < amax_from_stats(s, "percentile", 99.99) < 4.5  # 99.99th percentile of |N(0,1)| is 3.89
    # the default, 99.999, keeps 3 in 200,000 (1.5e-5) and clips 3 in 1,000,000 (3e-6)
    assert amax_from_stats(s, "percentile") == 100.0
    x = np.random.default_rng(2).standard_normal(1_000_000).astype(np.float32)
    x[:3] = 100.0
    assert 4.0 < amax_from_stats(stats_of(x), "percentile") < 5.0  # 99.999th of |N(0,1)| is 4.42


def test_entropy_threshold_bin_on_known_histograms():
    flat = np.ones(NUM_BINS)
    assert entropy_threshold_bin(flat) >= NUM_BINS - 16
    spike = np.zeros(NUM_BINS)
    spike[:200] = np.linspace(1000, 1, 200)
    spike[-1] = 1  # one far outlier: clipping it costs less than coarse levels for the bulk
    assert entropy_threshold_bin(spike) < 400
    assert entropy_threshold_bin(np.zeros(NUM_BINS)) == NUM_BINS


def test_stats_json_round_trip():
    s = stats_of(np.arange(10, dtype=np.float32))
    t = TensorStats.from_json(json.loads(json.dumps(s.to_json())))
    assert t.absmax == 9.0 and t.count == 10 and np.array_equal(t.hist, s.hist)


def test_quantize_weight_per_channel():
    w = np.array([[1.0, -2.0], [0.5, 0.25], [0.0, 0.0]], dtype=np.float32)
    q, scale = quantize_weight(w, 0)
    np.testing.assert_allclose(scale, [2 / 127, 0.5 / 127, 1.0], rtol=1e-6)
    assert q.dtype == np.int8 and q[0, 1] == -127 and q[1, 0] == 127 and not q[2].any()
    np.testing.assert_allclose(q * scale[:, None], w, atol=scale.max() / 2)


def test_even_indices():
    assert even_indices(10, 5) == [1, 3, 5, 7, 9]
    assert even_indices(3, 8) == [0, 1, 2] and even_indices(0, 4) == []


# --- Q/DQ graphs on the small model -------------------------------------------------------------

@pytest.fixture(scope="module")
def frames_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("calib_frames")
    rng = np.random.default_rng(0)
    for i in range(6):
        img = np.full((180, 360, 3), 200, np.uint8) + (rng.random((180, 360, 3)) * 55).astype(np.uint8)
        cv2.putText(img, ["open", "exit", "stop"][i % 3], (20 + 10 * i, 110), cv2.FONT_HERSHEY_SIMPLEX, 2.0,
                    (20, 20, 20), 4)
        cv2.imwrite(str(d / f"f{i}.png"), img)
    return d


@pytest.fixture(scope="module")
def int8_portable(exported_small, frames_dir, tmp_path_factory):
    _, paths, _ = exported_small
    out = tmp_path_factory.mktemp("int8") / "model.int8.onnx"
    return calibrate(paths["portable"], out, images=frames_dir, frames=6, method="entropy", threads=1)


def test_qdq_graph_structure_and_metadata(exported_small, int8_portable):
    _, paths, _ = exported_small
    src = onnx.load(str(paths["portable"]))
    q = onnx.load(str(int8_portable.out))
    onnx.checker.check_model(q)
    nodes = {n.name: n for n in q.graph.node}
    inits = {t.name: t for t in q.graph.initializer}
    produced = {o: n for n in q.graph.node for o in n.output}
    quantized = int8_portable.quantized
    assert "/backbone.0/backbone.0.0/Conv" in quantized and "/encoder/project/MatMul" in quantized
    assert sum(n.op_type == "Conv" for n in src.graph.node) - 2 == sum(name.endswith("Conv") for name in quantized)
    for name in quantized:
        node = nodes[name]
        act, weight = produced[node.input[0]], produced[node.input[1]]
        assert act.op_type == "DequantizeLinear" and produced[act.input[0]].op_type == "QuantizeLinear"
        assert weight.op_type == "DequantizeLinear" and inits[weight.input[0]].data_type == onnx.TensorProto.INT8
        assert not onnx.numpy_helper.to_array(inits[act.input[2]]).any()  # symmetric: zero point 0
    # Kept in float: proposal heads, detector heads, the decoder.
    for n in q.graph.node:
        if n.name.startswith(("/tpn/cls/", "/tpn/reg/", "/detector/", "/cell", "/out", "/init_h", "/mem_proj")):
            assert all(produced.get(i) is None or produced[i].op_type != "DequantizeLinear" for i in n.input), n.name
    meta = {p.key: p.value for p in q.metadata_props}
    src_meta = {p.key: p.value for p in src.metadata_props}
    assert {k: meta[k] for k in src_meta if k != "spotrt_read_graph"} == {
        k: v for k, v in src_meta.items() if k != "spotrt_read_graph"}
    assert meta["spotrt_read_graph"] == "model.int8.read.onnx" == int8_portable.read_out.name
    info = json.loads(meta["spotrt_quantization"])
    assert info["method"] == "entropy" and info["quantized"] == quantized


def test_read_graph_is_quantized_with_the_spotting_graphs_ranges(exported_small, int8_portable):
    """The INT8 model reads crops in INT8 too: its read graph has the same nodes quantized, with the
    scales of the same-named nodes of the spotting graph, and read() goes through it."""
    _, paths, _ = exported_small
    spot = onnx.load(str(int8_portable.out))
    read = onnx.load(str(int8_portable.read_out))
    onnx.checker.check_model(read)
    rmeta = {p.key: p.value for p in read.metadata_props}
    assert rmeta["spotrt_graph"] == "read"
    rinfo = json.loads(rmeta["spotrt_quantization"])
    assert rinfo["ranges_from"] == paths["portable"].name and rinfo["method"] == "entropy"
    assert set(rinfo["quantized"]) <= set(int8_portable.quantized) and "/encoder/project/MatMul" in rinfo["quantized"]

    def act_scales(model):
        inits = {t.name: t for t in model.graph.initializer}
        produced = {o: n for n in model.graph.node for o in n.output}
        out = {}
        for n in model.graph.node:
            if n.name in rinfo["quantized"]:
                dq = produced[n.input[0]]
                out[n.name] = float(onnx.numpy_helper.to_array(inits[dq.input[1]]))
        return out

    spot_scales, read_scales = act_scales(spot), act_scales(read)
    assert read_scales and all(read_scales[k] == spot_scales[k] for k in read_scales)
    int8 = OnnxRuntimeSpotter(int8_portable.out, threads=1)
    crop = np.full((32, 96, 3), 200, np.uint8)
    cv2.putText(crop, "AB1", (4, 26), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (0, 0, 0), 2)
    text, conf = int8.read(crop)
    assert int8._read_session is not None and 0.0 <= conf <= 1.0 and isinstance(text, str)


def _texts(spotter, folder):
    out = []
    for p in sorted(folder.iterdir()):
        out += [w.text for w in spotter.spot(cv2.imread(str(p)))]
    return out


def test_qdq_graph_reads_like_fp32_on_onnxruntime(exported_small, int8_portable, frames_dir):
    _, paths, _ = exported_small
    fp32 = _texts(OnnxRuntimeSpotter(paths["portable"], threads=1), frames_dir)
    int8 = _texts(OnnxRuntimeSpotter(int8_portable.out, threads=1), frames_dir)
    assert fp32 and int8
    # The untrained model's greedy decoder is chaotic (one flipped step shifts the rest of a word), so
    # the tolerance is on characters: every INT8 reading close to an FP32 one, and a similar count.
    similarity = [max(SequenceMatcher(None, t, f).ratio() for f in fp32) for t in int8]
    assert np.mean(similarity) >= 0.75, (fp32, int8)
    assert abs(len(int8) - len(fp32)) <= 0.3 * len(fp32)


def test_plugin_graph_quantizes_backbone_only_and_runs(exported_small, frames_dir, tmp_path):
    _, paths, _ = exported_small
    r = calibrate(paths["plugin"], tmp_path / "plugin.int8.onnx", images=frames_dir, frames=2, method="minmax",
                  threads=1)
    q = onnx.load(str(r.out))
    custom = [n for n in q.graph.node if n.domain == "spotrt"]
    produced = {o: n for n in q.graph.node for o in n.output}
    assert sorted(n.op_type for n in custom) == ["AttnDecoder", "VarRoIPool"]
    for n in custom:  # plugin inputs stay float: no DequantizeLinear feeds them directly
        assert all(produced.get(i) is None or produced[i].op_type != "DequantizeLinear" for i in n.input)
    out = OnnxRuntimeSpotter(r.out, threads=1).run(np.zeros((1, 3, 128, 256), np.float32))
    model = exported_small[0]
    assert out["tokens"].shape == (1, 12, model.cfg.max_word_len) and out["count"].dtype == np.int32


def test_cache_is_reused_and_serves_every_method(exported_small, int8_portable, tmp_path):
    _, paths, _ = exported_small
    again = calibrate(paths["portable"], tmp_path / "again" / "model.int8.onnx", cache=int8_portable.cache,
                      method="entropy")
    assert again.reused_cache and again.frames == 0 and again.amax == int8_portable.amax
    assert again.out.read_bytes() == int8_portable.out.read_bytes()
    pct = calibrate(paths["portable"], tmp_path / "pct.onnx", cache=int8_portable.cache, method="percentile")
    mm = calibrate(paths["portable"], tmp_path / "mm.onnx", cache=int8_portable.cache, method="minmax")
    assert all(pct.amax[t] <= mm.amax[t] + 1e-6 for t in mm.amax)
    assert any(pct.amax[t] < mm.amax[t] for t in mm.amax)


def test_cache_of_another_graph_is_refused(exported_small, int8_portable, tmp_path):
    _, paths, _ = exported_small
    with pytest.raises(SpotrtError, match="calibration cache .*expected .* \\(this graph\\)"):
        calibrate(paths["plugin"], tmp_path / "x.onnx", cache=int8_portable.cache)


def test_int32_bias_folding_keeps_results(int8_portable, tmp_path):
    q = onnx.load(str(int8_portable.out))
    assert fold_int32_dequantize(q) > 0
    assert not any(n.op_type == "DequantizeLinear" and n.input[0].endswith("_int32") for n in q.graph.node)
    folded = tmp_path / "folded.onnx"
    onnx.save(q, str(folded))
    x = np.random.default_rng(5).standard_normal((1, 3, 128, 256)).astype(np.float32) * 0.5
    a = OnnxRuntimeSpotter(int8_portable.out, threads=1).run(x)
    b = OnnxRuntimeSpotter(folded, threads=1).run(x)
    np.testing.assert_array_equal(a["count"], b["count"])
    assert np.mean(a["tokens"] == b["tokens"]) > 0.9


# --- errors: one line each -------------------------------------------------------------------------

def test_empty_calibration_folder(exported_small, tmp_path):
    _, paths, _ = exported_small
    (tmp_path / "empty").mkdir()
    with pytest.raises(SpotrtError, match="found no image files"):
        calibrate(paths["portable"], tmp_path / "o.onnx", images=tmp_path / "empty")
    with pytest.raises(SpotrtError, match="found no frames"):
        calibrate(paths["portable"], tmp_path / "o.onnx", batches=[])


def test_unreadable_and_wrong_size_frames(exported_small, tmp_path):
    _, paths, _ = exported_small
    d = tmp_path / "bad"
    d.mkdir()
    (d / "a.png").write_bytes(b"not a png")
    with pytest.raises(SpotrtError, match="a.png"):
        calibrate(paths["portable"], tmp_path / "o.onnx", images=d)
    (d / "a.png").unlink()
    cv2.imwrite(str(d / "tiny.png"), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(SpotrtError, match="found size 4x4"):
        calibrate(paths["portable"], tmp_path / "o.onnx", images=d)
    with pytest.raises(SpotrtError, match=r"found shape \(1, 3, 64, 64\), expected \(1, 3, 128, 256\)"):
        calibrate(paths["portable"], tmp_path / "o.onnx", batches=[np.zeros((1, 3, 64, 64), np.float32)])
    with pytest.raises(SpotrtError, match="cannot be read|OpenCV cannot open"):
        (tmp_path / "v.mp4").write_bytes(b"junk")
        calibrate(paths["portable"], tmp_path / "o.onnx", video=tmp_path / "v.mp4")


def test_graph_without_metadata(exported_small, tmp_path):
    _, paths, _ = exported_small
    m = onnx.load(str(paths["portable"]))
    del m.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(m, str(bare))
    with pytest.raises(SpotrtError, match="without spotrt metadata"):
        calibrate(bare, tmp_path / "o.onnx", images=tmp_path)


def test_cli_calibrate_errors_are_one_line(exported_small, tmp_path, capsys):
    _, paths, _ = exported_small
    (tmp_path / "empty").mkdir()
    rc = main(["calibrate", "--onnx", str(paths["portable"]), "--images", str(tmp_path / "empty"),
               "--out", str(tmp_path / "o.onnx")])
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1 and err.startswith("spotrt: error: calibration images")


def test_selection_skips_graphs_without_weights():
    from onnx import TensorProto, helper

    g = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], name="c")], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4]),
                           helper.make_tensor_value_info("w", TensorProto.FLOAT, [1, 1, 3, 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    assert select_nodes(g) == []  # the weight is an input, not a constant: nothing to quantize
