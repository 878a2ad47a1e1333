"""TensorRT build, plugins and runtime: the plain-Python logic on CPU; the real thing marked `tensorrt`.

TensorRT cannot be installed on the development machines, so the tests marked `tensorrt` skip here
with the reason; they build and run engines where TensorRT and a GPU are present.
"""
from __future__ import annotations

import importlib.util
import json
from types import SimpleNamespace

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

from spotrt.cli import main  # noqa: E402
from spotrt.errors import SpotrtError  # noqa: E402
from spotrt.formats import engine as engine_meta  # noqa: E402
from spotrt.plugins.attn_decoder import launch as dec_launch  # noqa: E402
from spotrt.plugins.attn_decoder.reference import WEIGHT_NAMES, WEIGHT_SHAPES  # noqa: E402
from spotrt.plugins.attn_decoder.spec import SPEC as DEC_SPEC  # noqa: E402
from spotrt.plugins.attn_decoder.spec import shared_bytes, workspace_bytes  # noqa: E402
from spotrt.plugins.trt_support import PluginShapeError, attrs_from_fields, fields_to_serialize  # noqa: E402
from spotrt.plugins.var_roi_pool import launch as roi_launch  # noqa: E402
from spotrt.plugins.var_roi_pool.spec import SPEC as ROI_SPEC  # noqa: E402

HAVE_TRT = importlib.util.find_spec("tensorrt") is not None


def _gpu_reason():
    from spotrt.plugins.nvrtc import gpu_unavailable_reason

    try:
        return gpu_unavailable_reason()
    except Exception as exc:  # noqa: BLE001 - any failure means no usable GPU
        return str(exc)


def trt_skip_reason():
    if not HAVE_TRT:
        return "TensorRT's Python bindings are not installed"
    return _gpu_reason()


needs_trt = pytest.mark.skipif(trt_skip_reason() is not None, reason=str(trt_skip_reason()))
no_trt = pytest.mark.skipif(HAVE_TRT, reason="TensorRT is installed: the missing-TensorRT path cannot be shown")


def field(name, value):
    return SimpleNamespace(name=name, data=np.array([value]))


# --- plugin attributes and fields ----------------------------------------------------------------

def test_fields_from_the_onnx_parser_are_validated():
    fc = [field("stride", 4), field("pooled_height", 8), field("max_width", 64),
          SimpleNamespace(name="plugin_version", data=np.frombuffer(b"1\x00", np.int8))]
    assert attrs_from_fields(ROI_SPEC, fc) == {"stride": 4, "pooled_height": 8, "max_width": 64}
    with pytest.raises(ValueError, match="max_width: found 600"):
        attrs_from_fields(ROI_SPEC, fc[:2] + [field("max_width", 600)])
    with pytest.raises(ValueError, match=r"\['max_width'\] missing"):
        attrs_from_fields(ROI_SPEC, fc[:2])
    with pytest.raises(ValueError, match="expected an integer"):
        attrs_from_fields(ROI_SPEC, fc[:2] + [field("max_width", 2.5)])


def test_serialized_fields_round_trip():
    attrs = {"max_len": 16, "start_token": 37, "num_classes": 37}
    fields = fields_to_serialize(DEC_SPEC, attrs)
    assert [n for n, _ in fields] == ["max_len", "start_token", "num_classes"]
    assert all(v.dtype == np.int32 and v.shape == (1,) for _, v in fields)
    assert attrs_from_fields(DEC_SPEC, [SimpleNamespace(name=n, data=v) for n, v in fields]) == attrs
    with pytest.raises(ValueError):
        fields_to_serialize(DEC_SPEC, {**attrs, "max_len": 0})


# --- VarRoIPool shapes and launch ------------------------------------------------------------------

ROI_ATTRS = {"stride": 4, "pooled_height": 8, "max_width": 64}


def test_var_roi_pool_shapes_and_launch():
    shapes = [(1, 32, 32, 64), (12, 4), (12,)]
    assert roi_launch.output_shapes(shapes[0], shapes[1], ROI_ATTRS) == ((12, 32, 8, 64), (12,))
    grid, block, scalars = roi_launch.launch(shapes, ROI_ATTRS)
    assert block == 256 and grid == -(-12 * 32 * 8 * 64 // 256)
    assert [int(s) for s in scalars] == [12, 32, 32, 64, 1, 4, 8, 64]
    assert all(s.dtype == np.int32 for s in scalars)


@pytest.mark.parametrize("shapes,match", [
    ([(32, 32, 64), (12, 4), (12,)], "features"),
    ([(1, 32, 32, 64), (12, 5), (12,)], "rois"),
    ([(1, 32, 32, 64), (12, 4), (11,)], "batch_index"),
    ([(1, 32, 32, 64), (12, 4)], "found 2 inputs"),
])
def test_var_roi_pool_rejects_bad_shapes(shapes, match):
    with pytest.raises(PluginShapeError, match=match):
        roi_launch.launch(shapes, ROI_ATTRS)


# --- AttnDecoder sizes, workspace and launch ---------------------------------------------------------

def decoder_shapes(n=12, w=64, D=64, E=32, Hd=96, A=48, C=37):
    sym = {"V": C + 1, "E": E, "D": D, "Hd": Hd, "A": A, "C": C, "1": 1, "4Hd": 4 * Hd, "E+D": E + D, "Hd+D": Hd + D}
    weights = [tuple(sym[s] for s in WEIGHT_SHAPES[k]) for k in WEIGHT_NAMES]
    return [(n, w, D), (n,), (n, D)] + weights


DEC_ATTRS = {"max_len": 16, "start_token": 37, "num_classes": 37}


def test_attn_decoder_sizes_workspace_and_launch():
    shapes = decoder_shapes()
    s = dec_launch.sizes(shapes, DEC_ATTRS)
    assert (s["N"], s["W"], s["D"], s["Hd"], s["A"], s["C"]) == (12, 64, 64, 96, 48, 37)
    assert dec_launch.workspace(shapes, DEC_ATTRS) == workspace_bytes(12, 64, s) == 4 * 12 * 64 * 48
    assert dec_launch.output_shapes(shapes[0], DEC_ATTRS) == ((12, 16), (12, 16))
    grid, block, shm, scalars = dec_launch.launch(shapes, DEC_ATTRS)
    assert grid == 12 and block == 128 and shm == shared_bytes(s, 64, 128)
    assert [int(v) for v in scalars] == [12, 64, 64, 32, 96, 48, 37, 16, 37]


def test_attn_decoder_rejects_inconsistent_inputs():
    shapes = decoder_shapes()
    with pytest.raises(PluginShapeError, match="memory"):
        dec_launch.sizes([(12, 64, 63)] + shapes[1:], DEC_ATTRS)
    with pytest.raises(PluginShapeError, match="widths"):
        dec_launch.sizes(shapes[:1] + [(11,)] + shapes[2:], DEC_ATTRS)
    with pytest.raises(PluginShapeError, match="num_classes"):
        dec_launch.sizes(shapes, {**DEC_ATTRS, "num_classes": 36})
    with pytest.raises(PluginShapeError, match="shared memory"):
        dec_launch.launch(decoder_shapes(w=20000), DEC_ATTRS)


# --- FP16 graph and Q/DQ preparation (plain ONNX) ---------------------------------------------------

def test_fp16_graph_keeps_plugins_nms_and_io_in_float32(exported_small):
    from spotrt.export.fp16 import to_float16

    _, paths, _ = exported_small
    for kind in ("plugin", "portable"):
        m = to_float16(onnx.load(str(paths[kind])))
        onnx.checker.check_model(m)
        inits = {t.name: t for t in m.graph.initializer}
        produced = {o: n for n in m.graph.node for o in n.output}
        assert m.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
        assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in inits.values())
        for n in m.graph.node:
            if n.domain == "spotrt" or n.op_type == "NonMaxSuppression":
                for i in n.input:
                    if i in inits:
                        assert inits[i].data_type != onnx.TensorProto.FLOAT16, (n.name, i)
                    elif i in produced and produced[i].op_type == "Cast":
                        assert produced[i].attribute[0].i != onnx.TensorProto.FLOAT16, (n.name, i)
        for o in m.graph.output:
            if o.type.tensor_type.elem_type == onnx.TensorProto.FLOAT:
                assert produced[o.name].op_type == "Cast"


def test_prepare_graph_refuses_wrong_precision_for_the_graph(exported_small):
    from spotrt.export.tensorrt_build import prepare_graph

    _, paths, _ = exported_small
    proto = onnx.load(str(paths["portable"]))
    with pytest.raises(SpotrtError, match="run spotrt calibrate first"):
        prepare_graph(proto, "int8", strongly_typed=True, implicit=False)
    assert prepare_graph(proto, "fp32", True, False).graph.node[0].op_type == proto.graph.node[0].op_type


# --- engine metadata: stale engines are refused in one line ----------------------------------------

def fake_engine(tmp_path, **changes):
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"engine bytes")
    meta = engine_meta.make_metadata(
        onnx_name="model.onnx", onnx_sha256="a" * 64, engine_sha256=engine_meta_sha(b"engine bytes"),
        tensorrt_version="10.3.0", compute_capability="8.7", gpu_name="Orin", precision="int8",
        inputs={"image": [1, 3, 128, 256]}, plugins={"VarRoIPool": "1", "AttnDecoder": "1"},
        spotrt_metadata={"spotrt_input_size": "128x256"}, strongly_typed=True, calibration="qdq")
    meta.update(changes)
    engine_meta.write_metadata(engine, meta)
    return engine, meta


def engine_meta_sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def test_engine_metadata_round_trip_and_compatible(tmp_path):
    engine, meta = fake_engine(tmp_path)
    assert engine_meta.meta_path(engine).name == "model.engine.json"
    assert engine_meta.read_metadata(engine) == meta
    engine_meta.check_compatible(engine, meta, tensorrt_version="10.3.0", compute_capability="8.7",
                                 engine_sha256=engine_meta_sha(b"engine bytes"), onnx_sha256="a" * 64)
    assert engine_meta.compute_capability("sm_87") == "8.7" and engine_meta.compute_capability("sm_100") == "10.0"


@pytest.mark.parametrize("kwargs,match", [
    ({"tensorrt_version": "10.16.1"}, "built with TensorRT 10.3.0, found TensorRT 10.16.1"),
    ({"compute_capability": "9.0"}, "built for GPU compute capability 8.7, found 9.0"),
    ({"onnx_sha256": "b" * 64}, "built from ONNX sha256 aaaaaaaaaaaa"),
    ({"engine_sha256": "c" * 64}, "differs from"),
])
def test_stale_engine_is_refused(tmp_path, kwargs, match):
    engine, meta = fake_engine(tmp_path)
    args = {"tensorrt_version": "10.3.0", "compute_capability": "8.7", "engine_sha256": meta["engine_sha256"],
            "onnx_sha256": "a" * 64, **kwargs}
    with pytest.raises(SpotrtError, match=match) as exc:
        engine_meta.check_compatible(engine, meta, **args)
    assert "\n" not in str(exc.value)


def test_missing_or_foreign_metadata(tmp_path):
    engine = tmp_path / "x.engine"
    engine.write_bytes(b"x")
    with pytest.raises(SpotrtError, match="found no x.engine.json beside it"):
        engine_meta.read_metadata(engine)
    engine_meta.meta_path(engine).write_text(json.dumps({"format": "other"}))
    with pytest.raises(SpotrtError, match="expected 'spotrt-engine-1'"):
        engine_meta.read_metadata(engine)


def test_backend_refuses_engine_without_metadata(tmp_path):
    from spotrt.runtime.tensorrt_backend import TensorRTSpotter

    engine = tmp_path / "x.engine"
    engine.write_bytes(b"x")
    with pytest.raises(SpotrtError, match="found no x.engine.json"):
        TensorRTSpotter(engine)


# --- without TensorRT: one line, exit 1 ---------------------------------------------------------------

@no_trt
def test_backend_without_tensorrt_is_one_line(tmp_path):
    from spotrt.runtime.tensorrt_backend import TensorRTSpotter

    engine, _ = fake_engine(tmp_path)
    with pytest.raises(SpotrtError, match="TensorRT: not installed"):
        TensorRTSpotter(engine)


@no_trt
def test_cli_build_and_spot_without_tensorrt(exported_small, tmp_path, capsys):
    _, paths, _ = exported_small
    rc = main(["build", "--onnx", str(paths["portable"]), "--precision", "fp16"])
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1 and "TensorRT: not installed" in err
    engine, _ = fake_engine(tmp_path)
    img = tmp_path / "i.png"
    import cv2

    cv2.imwrite(str(img), np.zeros((32, 32, 3), np.uint8))
    rc = main(["spot", str(img), "--model", str(engine), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1 and "TensorRT: not installed" in err


def test_cli_build_refuses_graph_without_metadata(exported_small, tmp_path, capsys):
    _, paths, _ = exported_small
    m = onnx.load(str(paths["portable"]))
    del m.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(m, str(bare))
    rc = main(["build", "--onnx", str(bare)])
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1 and "without spotrt metadata" in err


def test_api_backend_choice_for_engines(tmp_path):
    from spotrt.api import load_spotter

    with pytest.raises(SpotrtError, match="expected a TensorRT .engine"):
        load_spotter(str(tmp_path / "m.onnx"), backend="tensorrt")
    with pytest.raises(SpotrtError, match="expected --backend tensorrt or auto"):
        load_spotter(str(tmp_path / "m.engine"), backend="onnxruntime")


def test_cuda_status_becomes_an_exception_naming_the_call():
    pytest.importorskip("cuda.bindings")
    from cuda.bindings import runtime as cudart

    from spotrt.runtime.cuda_buffers import CudaCallError, check

    assert check("cudaMalloc", (cudart.cudaError_t.cudaSuccess, 1234)) == 1234
    with pytest.raises(CudaCallError, match="cudaMalloc failed: cudaErrorMemoryAllocation"):
        check("cudaMalloc", (cudart.cudaError_t.cudaErrorMemoryAllocation, 0))


# --- real TensorRT (skip here) ------------------------------------------------------------------------

def _compare(engine_out, ort_out, tokens_min=0.9, box_atol=0.5):
    np.testing.assert_array_equal(engine_out["count"], ort_out["count"])
    assert np.mean(engine_out["tokens"] == ort_out["tokens"]) >= tokens_min
    np.testing.assert_allclose(engine_out["boxes"], ort_out["boxes"], atol=box_atol)


@pytest.mark.tensorrt
@pytest.mark.gpu
@needs_trt
@pytest.mark.parametrize("kind,precision,tokens_min", [("portable", "fp32", 1.0), ("plugin", "fp32", 1.0),
                                                       ("portable", "fp16", 0.8), ("plugin", "fp16", 0.8)])
def test_engine_builds_and_matches_onnxruntime(exported_small, tmp_path, kind, precision, tokens_min):
    from spotrt.export.tensorrt_build import build_engine
    from spotrt.runtime.onnxruntime_backend import OnnxRuntimeSpotter
    from spotrt.runtime.tensorrt_backend import TensorRTSpotter

    _, paths, _ = exported_small
    engine = build_engine(paths[kind], precision=precision, save_engine=tmp_path / f"{kind}.engine")
    meta = engine_meta.read_metadata(engine)
    assert meta["precision"] == precision and meta["inputs"]["image"] == [1, 3, 128, 256]
    x = np.random.default_rng(3).standard_normal((1, 3, 128, 256)).astype(np.float32)
    with TensorRTSpotter(engine, onnx=paths[kind]) as spotter:
        got = spotter.run(x)
    _compare(got, OnnxRuntimeSpotter(paths[kind], threads=1).run(x), tokens_min)


@pytest.mark.tensorrt
@pytest.mark.gpu
@needs_trt
def test_int8_engine_from_qdq_graph(exported_small, tmp_path):
    from spotrt.calibration.calibrate import calibrate
    from spotrt.export.tensorrt_build import build_engine
    from spotrt.runtime.onnxruntime_backend import OnnxRuntimeSpotter
    from spotrt.runtime.tensorrt_backend import TensorRTSpotter

    _, paths, _ = exported_small
    rng = np.random.default_rng(0)
    batches = [rng.standard_normal((1, 3, 128, 256)).astype(np.float32) for _ in range(4)]
    q = calibrate(paths["portable"], tmp_path / "m.int8.onnx", batches=batches, method="entropy")
    engine = build_engine(q.out, precision="int8", save_engine=tmp_path / "m.int8.engine")
    with TensorRTSpotter(engine) as spotter:
        got = spotter.run(batches[0])
    ref = OnnxRuntimeSpotter(q.out, threads=1).run(batches[0])
    # the same Q/DQ graph: the same words, read alike (TensorRT fuses and rounds a little differently)
    assert int(ref["count"].sum()) > 0
    _compare(got, ref, tokens_min=0.9, box_atol=2.0)


@pytest.mark.tensorrt
@pytest.mark.gpu
@needs_trt
def test_stale_engine_refused_for_changed_onnx(exported_small, tmp_path):
    import shutil

    from spotrt.export.tensorrt_build import build_engine
    from spotrt.runtime.tensorrt_backend import TensorRTSpotter

    _, paths, _ = exported_small
    onnx_copy = tmp_path / "model.portable.onnx"
    shutil.copy(paths["portable"], onnx_copy)
    engine = build_engine(onnx_copy, precision="fp32")
    m = onnx.load(str(onnx_copy))
    m.doc_string = "changed"
    onnx.save(m, str(onnx_copy))
    with pytest.raises(SpotrtError, match="built from ONNX sha256"):
        TensorRTSpotter(engine)


def test_fp16_portable_graph_runs_on_onnxruntime_like_fp32(exported_small):
    ort = pytest.importorskip("onnxruntime")
    from spotrt.export.fp16 import to_float16

    _, paths, _ = exported_small
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    half = ort.InferenceSession(to_float16(onnx.load(str(paths["portable"]))).SerializeToString(), so,
                                providers=["CPUExecutionProvider"])
    full = ort.InferenceSession(str(paths["portable"]), so, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(3).standard_normal((1, 3, 128, 256)).astype(np.float32)
    a, b = half.run(None, {"image": x}), full.run(None, {"image": x})
    assert a[2].dtype == np.int32 and a[0].dtype == np.float32
    np.testing.assert_array_equal(a[4], b[4])
    assert np.mean(a[2] == b[2]) >= 0.8
