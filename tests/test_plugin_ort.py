"""The plugin ops as ONNX Runtime CPU custom ops (onnxruntime-extensions) against their references."""
from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
ext = pytest.importorskip("onnxruntime_extensions")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from spotrt.plugins.attn_decoder import WEIGHT_NAMES, attn_decoder_ref  # noqa: E402
from spotrt.plugins.attn_decoder import ort as dec_ort  # noqa: E402
from spotrt.plugins.var_roi_pool import ort as roi_ort  # noqa: E402
from spotrt.plugins.var_roi_pool.reference import var_roi_pool_ref  # noqa: E402


def session(model: onnx.ModelProto) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.register_custom_ops_library(ext.get_library_path())
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def one_node_model(op_type, inputs, outputs, attrs, initializers=(), domain=roi_ort.DOMAIN):
    node = helper.make_node(op_type, [i.name for i in inputs] + [t.name for t in initializers],
                            [o.name for o in outputs], domain=domain, **attrs)
    graph = helper.make_graph([node], op_type, inputs, outputs, initializer=list(initializers))
    # IR 10: what ONNX Runtime 1.18 (our floor) reads; a newer onnx writes a newer IR by default.
    return helper.make_model(graph, ir_version=10,
                             opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(domain, 1)])


@pytest.mark.parametrize("module", [roi_ort, dec_ort], ids=["VarRoIPool", "AttnDecoder"])
def test_ops_are_found_in_their_domain_and_only_there(module):
    """DOMAIN is where onnxruntime-extensions registered the ops: a session finds them there, and the
    exported graph's own domain ("spotrt", TensorRT's namespace) is unknown to ONNX Runtime, which is
    why the runtime moves the nodes before it opens a session."""
    roi_in = [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["B", 3, 9, 14]),
              helper.make_tensor_value_info("rois", TensorProto.FLOAT, ["N", 4]),
              helper.make_tensor_value_info("batch_index", TensorProto.INT32, ["N"])]
    outs = [helper.make_tensor_value_info("pooled", TensorProto.FLOAT, None),
            helper.make_tensor_value_info("widths", TensorProto.INT64, None)]
    assert module.DOMAIN != "spotrt"
    if module is roi_ort:
        def build(domain):
            return one_node_model("VarRoIPool", roi_in, outs, {"stride": 8, "pooled_height": 5, "max_width": 19},
                                  domain=domain)
        session(build(module.DOMAIN))
    else:
        def build(domain):
            return decoder_model(np.random.default_rng(0), domain)[0]
        session(build(module.DOMAIN))
    with pytest.raises(Exception, match="(?i)spotrt|not a registered|no schema|unrecognized"):
        session(build("spotrt"))


def test_var_roi_pool_in_onnxruntime():
    rng = np.random.default_rng(42)
    feats = rng.standard_normal((2, 3, 9, 14)).astype(np.float32)
    x1 = rng.uniform(-20, 100, 11)
    y1 = rng.uniform(-20, 60, 11)
    rois = np.stack([x1, y1, x1 + rng.uniform(1, 90, 11), y1 + rng.uniform(1, 30, 11)], 1).astype(np.float32)
    bidx = rng.integers(0, 2, 11).astype(np.int32)
    model = one_node_model(
        "VarRoIPool",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["B", 3, 9, 14]),
         helper.make_tensor_value_info("rois", TensorProto.FLOAT, ["N", 4]),
         helper.make_tensor_value_info("batch_index", TensorProto.INT32, ["N"])],
        [helper.make_tensor_value_info("pooled", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("widths", TensorProto.INT64, None)],
        {"stride": 8, "pooled_height": 5, "max_width": 19})
    pooled, widths = session(model).run(None, {"features": feats, "rois": rois, "batch_index": bidx})
    ref, ref_widths = var_roi_pool_ref(feats, rois, bidx, 8, 5, 19)
    assert pooled.shape == (11, 3, 5, 19) and widths.dtype == np.int64
    np.testing.assert_array_equal(widths, ref_widths)
    np.testing.assert_allclose(pooled, ref, atol=1e-6, rtol=0)
    assert np.abs(ref).max() > 0.5


DEC_SIZES = dict(n=6, w=9, d=12, e=5, hd=10, a=7, c=6, t=8)


def decoder_model(rng, domain=roi_ort.DOMAIN):
    """A one-node AttnDecoder graph with random weights -> (model, feeds, weights)."""
    n, w, d, e, hd, a, c, t = DEC_SIZES.values()
    shapes = {"embed.weight": (c + 1, e), "init_h.weight": (hd, d), "init_h.bias": (hd,), "mem_proj.weight": (a, d),
              "mem_proj.bias": (a,), "hid_proj.weight": (a, hd), "score.weight": (1, a), "cell.weight_ih": (4 * hd, e + d),
              "cell.weight_hh": (4 * hd, hd), "cell.bias_ih": (4 * hd,), "cell.bias_hh": (4 * hd,),
              "out.weight": (c, hd + d), "out.bias": (c,)}
    weights = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
    feeds = {"memory": rng.standard_normal((n, w, d)).astype(np.float32),
             "widths": rng.integers(1, w + 1, n).astype(np.int32),
             "holistic": rng.standard_normal((n, d)).astype(np.float32)}
    inits = [numpy_helper.from_array(weights[k], k) for k in WEIGHT_NAMES]
    model = one_node_model(
        "AttnDecoder",
        [helper.make_tensor_value_info("memory", TensorProto.FLOAT, ["N", w, d]),
         helper.make_tensor_value_info("widths", TensorProto.INT32, ["N"]),
         helper.make_tensor_value_info("holistic", TensorProto.FLOAT, ["N", d])],
        [helper.make_tensor_value_info("tokens", TensorProto.INT32, None),
         helper.make_tensor_value_info("probs", TensorProto.FLOAT, None)],
        {"max_len": t, "start_token": c, "num_classes": c}, inits, domain=domain)
    return model, feeds, weights


def test_attn_decoder_in_onnxruntime():
    model, feeds, weights = decoder_model(np.random.default_rng(7))
    memory, widths, holistic = feeds["memory"], feeds["widths"], feeds["holistic"]
    n, t, c = DEC_SIZES["n"], DEC_SIZES["t"], DEC_SIZES["c"]
    tokens, probs = session(model).run(None, {"memory": memory, "widths": widths, "holistic": holistic})
    ref_tokens, ref_probs = attn_decoder_ref(memory, widths, holistic, weights, t, c, c)
    assert tokens.shape == (n, t) and tokens.dtype == np.int32
    np.testing.assert_array_equal(tokens, ref_tokens)
    np.testing.assert_allclose(probs, ref_probs, atol=1e-6, rtol=0)
    assert (ref_tokens != 0).any()
