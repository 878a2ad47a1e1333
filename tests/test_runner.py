"""The runner interface (spotrt/runner.py) of the torch, ONNX Runtime and TensorRT backends: load,
infer with checked inputs, close; and the one path from frames to words that `spot` and the stream
pipeline share."""
from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxruntime_extensions")

from spotrt.errors import SpotrtError  # noqa: E402
from spotrt.model.infer import TorchSpotter  # noqa: E402
from spotrt.runner import INPUT, OUTPUTS, Runner, TensorSpec, check_feed  # noqa: E402
from spotrt.runtime.onnxruntime_backend import OnnxRuntimeSpotter  # noqa: E402
from spotrt.runtime.pipeline import Pipeline, stages_of  # noqa: E402
from spotrt.runtime.sources import IterableSource  # noqa: E402
from spotrt.runtime.tensorrt_backend import TensorRTSpotter  # noqa: E402

BACKENDS = ["torch", "onnxruntime", "tensorrt"]


def _unloaded_tensorrt(path, cfg, batch=1, size=(128, 256)) -> TensorRTSpotter:
    """A TensorRTSpotter as its constructor leaves it after checking the engine's metadata, without
    TensorRT or a GPU (neither is here): what it checks before touching the engine is tested."""
    runner = object.__new__(TensorRTSpotter)
    runner.path, runner.cfg, runner.batch, runner.input_size = path, cfg, batch, size
    runner._buffers, runner.stream, runner.context, runner.engine = [], None, None, None
    runner.loaded = True  # as if _load had run: infer() checks its inputs before _infer
    return runner


@pytest.fixture
def runner(request, exported_small, tmp_path):
    model, paths, weights = exported_small
    if request.param == "torch":
        r = TorchSpotter(weights, max_size=(128, 256))
    elif request.param == "onnxruntime":
        r = OnnxRuntimeSpotter(paths["portable"], threads=1)
    else:
        r = _unloaded_tensorrt(tmp_path / "model.engine", model.cfg)
    yield r
    r.close()


def good_feed(runner) -> dict:
    spec = runner.input_specs()[INPUT]
    shape = tuple(128 if d is None and i == 2 else 256 if d is None else d for i, d in enumerate(spec.shape))
    return {INPUT: np.zeros(shape, np.float32)}


@pytest.mark.parametrize("runner", BACKENDS, indirect=True)
@pytest.mark.parametrize("case", ["dtype", "shape", "rank", "name", "missing", "extra", "not an array"])
def test_each_runner_rejects_wrong_inputs_naming_found_and_expected(runner, case):
    feed = good_feed(runner)
    x = feed[INPUT]
    bad, message = {
        "dtype": ({INPUT: x.astype(np.float64)}, "input image: found dtype float64, expected float32"),
        "shape": ({INPUT: np.zeros((x.shape[0] + 1, *x.shape[1:]), np.float32)},
                  f"input image: found shape ({x.shape[0] + 1}, 3, "),
        "rank": ({INPUT: x[0]}, "input image: found shape (3, 128, 256), expected ("),
        "name": ({"images": x}, "inputs: found ['images'], expected ['image']"),
        "missing": ({}, "inputs: found [], expected ['image']"),
        "extra": ({INPUT: x, "rois": x}, "inputs: found ['image', 'rois'], expected ['image']"),
        "not an array": ({INPUT: x.tolist()}, "input image: found list, expected a NumPy array"),
    }[case]
    with pytest.raises(SpotrtError) as info:
        runner.infer(bad)
    text = str(info.value)
    assert message in text and "\n" not in text
    assert text.startswith(runner.describe() + ": ")
    if case == "shape":
        assert "expected (1, 3, " in text


def test_input_specs_say_what_each_runner_takes(exported_small, tmp_path):
    model, paths, weights = exported_small
    torch_spec = TorchSpotter(weights).input_specs()[INPUT]
    assert torch_spec == TensorSpec(INPUT, np.dtype(np.float32), (1, 3, None, None))
    assert torch_spec.shape_text() == "(1, 3, any, any)"
    ort = OnnxRuntimeSpotter(paths["plugin"], threads=1)
    assert ort.input_specs()[INPUT].shape == (1, 3, 128, 256)
    trt = _unloaded_tensorrt(tmp_path / "m.engine", model.cfg, batch=4, size=(64, 96))
    assert trt.input_specs()[INPUT].shape == (4, 3, 64, 96)
    with pytest.raises(SpotrtError, match=r"engine .*m.engine: input image: found shape \(1, 3, 64, 96\), "
                                          r"expected \(4, 3, 64, 96\)"):
        trt.infer({INPUT: np.zeros((1, 3, 64, 96), np.float32)})


@pytest.mark.parametrize("runner", BACKENDS, indirect=True)
def test_runners_share_the_interface(runner):
    assert isinstance(runner, Runner) and runner.loaded
    with runner as entered:
        assert entered is runner and runner.loaded
    assert not runner.loaded
    runner.close()  # idempotent
    runner.close()
    with pytest.raises(SpotrtError, match=f"found the {runner.name} runner closed, expected it loaded"):
        runner.infer(good_feed(runner))


@pytest.mark.parametrize("runner", ["torch", "onnxruntime"], indirect=True)
def test_a_closed_runner_loads_again_and_infers_the_same(runner):
    feed = {INPUT: np.random.default_rng(5).standard_normal(good_feed(runner)[INPUT].shape).astype(np.float32)}
    before = runner.infer(feed)
    assert set(before) == set(OUTPUTS)
    runner.close()
    if runner.name == "onnxruntime":
        assert runner.session is None
    else:
        assert runner.model is None
    with runner:
        after = runner.infer(feed)
    for name in OUTPUTS:
        np.testing.assert_array_equal(after[name], before[name])


def test_onnxruntime_refuses_a_graph_whose_input_is_not_what_its_metadata_says(exported_small, tmp_path):
    _, paths, _ = exported_small
    proto = onnx.load(str(paths["portable"]))
    for p in proto.metadata_props:
        if p.key == "spotrt_input_size":
            p.value = "64x64"
    bad = tmp_path / "bad.onnx"
    onnx.save(proto, str(bad))
    with pytest.raises(SpotrtError) as info:
        OnnxRuntimeSpotter(bad, threads=1)
    text = str(info.value)
    assert "bad.onnx: found inputs {'image': ('tensor(float)', [1, 3, 128, 256])}" in text
    assert "expected {'image': ('tensor(float)', [1, 3, 64, 64])}" in text and "\n" not in text


def test_check_feed_dimension_none_takes_any_size():
    specs = {"x": TensorSpec("x", np.dtype(np.int32), (None, 4))}
    check_feed({"x": np.zeros((7, 4), np.int32)}, specs, "thing")
    with pytest.raises(SpotrtError, match=r"thing: input x: found shape \(7, 5\), expected \(any, 4\)"):
        check_feed({"x": np.zeros((7, 5), np.int32)}, specs, "thing")
    assert TensorSpec("c", np.dtype(np.int32), (3,)).shape_text() == "(3,)"


def test_the_pipeline_takes_only_runners():
    class SpotOnly:
        def spot(self, image):
            return []

    with pytest.raises(TypeError, match="found SpotOnly, expected a spotrt.runner.Runner"):
        stages_of(SpotOnly())


def _frames(n: int) -> list[np.ndarray]:
    """Frames of several sizes (letterboxed differently into a 128x256 graph), of random texture."""
    rng = np.random.default_rng(21)
    sizes = [(128, 256), (100, 300), (200, 150), (128, 256), (64, 128)]
    return [rng.integers(0, 256, (*sizes[i % len(sizes)], 3), dtype=np.uint8) for i in range(n)]


def _texts(words) -> list:
    return [(w.text, np.round(w.quad, 3).tolist(), round(w.score, 5)) for w in words]


def _pipeline_words(runner, frames) -> list:
    got = {}

    class Keep:
        def write(self, r):
            got[r.frame.index] = _texts([tracked.word for tracked in r.words])

        def close(self):
            pass

    summary = Pipeline([IterableSource(iter(frames), "f")], runner, [Keep()]).run(handle_signals=False)
    assert summary["processed"] == len(frames)
    return [got[i] for i in range(len(frames))]


@pytest.fixture(scope="module")
def portable_batch2(exported_small, tmp_path_factory):
    from spotrt.export.onnx_export import export_model

    model, _, _ = exported_small
    out = tmp_path_factory.mktemp("b2") / "model.onnx"
    return export_model(model, out, input_size=(128, 256), batch=2, kinds=("portable",))["portable"]


@pytest.mark.parametrize("backend", ["torch", "onnxruntime", "onnxruntime-batch2"])
def test_pipeline_and_spot_give_the_same_words_on_the_same_frames(exported_small, portable_batch2, backend):
    _, paths, weights = exported_small
    if backend == "torch":
        runner = TorchSpotter(weights, max_size=(128, 256))
    elif backend == "onnxruntime":
        runner = OnnxRuntimeSpotter(paths["plugin"], threads=1)
    else:
        runner = OnnxRuntimeSpotter(portable_batch2, threads=1)
        assert runner.batch == 2
    runner.cfg = runner.cfg.replace(word_score_thresh=0.0)
    frames = _frames(5)
    one_by_one = [_texts(runner.spot(f)) for f in frames]
    assert sum(map(len, one_by_one)) >= 5  # words to compare, so a misplaced frame would show
    assert [_texts(w) for w in runner.spot_many(frames)] == one_by_one
    assert _pipeline_words(runner, frames) == one_by_one
    runner.close()


def test_torch_and_onnxruntime_read_the_same_words_through_the_shared_path(exported_small):
    _, paths, weights = exported_small
    frames = [f for f in _frames(5) if f.shape[:2] == (128, 256)]  # the graph's size: the same input for both
    assert len(frames) == 2
    a = TorchSpotter(weights, max_size=(128, 256)).spot_many(frames)
    b = OnnxRuntimeSpotter(paths["portable"], threads=1).spot_many(frames)
    assert [[w.text for w in ws] for ws in a] == [[w.text for w in ws] for ws in b]
    assert sum(map(len, a)) > 0

