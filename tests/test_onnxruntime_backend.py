"""The ONNX Runtime backend: same words as the torch backend, clear errors (without torch: test_fresh_venv.py)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxruntime_extensions")

from runtime_helpers import spinning_entry  # noqa: E402
from spotrt.api import load_spotter  # noqa: E402
from spotrt.cli import main  # noqa: E402
from spotrt.errors import SpotrtError  # noqa: E402
from spotrt.model.infer import TorchSpotter  # noqa: E402
from spotrt.runtime.onnxruntime_backend import OnnxRuntimeSpotter  # noqa: E402


@pytest.fixture(scope="module")
def scene():
    rng = np.random.default_rng(11)
    return rng.integers(0, 256, (128, 256, 3), dtype=np.uint8)   # exactly the graph's input size


@pytest.mark.parametrize("kind", ["plugin", "portable"])
def test_spot_equals_torch_backend(exported_small, scene, kind):
    model, paths, weights = exported_small
    ref = TorchSpotter(weights, max_size=(128, 256)).spot(scene)
    got = load_spotter(paths[kind], "auto", threads=1)
    assert isinstance(got, OnnxRuntimeSpotter) and got.cfg == model.cfg
    words = got.spot(scene)
    assert len(ref) > 0
    assert [w.text for w in words] == [w.text for w in ref]
    for a, b in zip(words, ref):
        np.testing.assert_allclose(a.quad, b.quad, atol=1e-3)
        assert abs(a.score - b.score) < 1e-4


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_scale_reads_the_resized_frame_and_reports_frame_pixels(exported_small, scene, backend):
    """--scale 0.5 on a frame shown twice as large sees the very same network input."""
    _, paths, weights = exported_small
    if backend == "torch":
        plain, halved = TorchSpotter(weights, max_size=(128, 256)), TorchSpotter(weights, max_size=(128, 256))
        halved.scale = 0.5
    else:
        plain = load_spotter(paths["portable"], backend, threads=1)
        halved = load_spotter(paths["portable"], backend, threads=1, scale=0.5)
    big = np.repeat(np.repeat(scene, 2, axis=0), 2, axis=1)      # INTER_AREA 0.5 gives `scene` back
    ref, words = plain.spot(scene), halved.spot(big)
    assert len(ref) > 0 and [w.text for w in words] == [w.text for w in ref]
    for a, b in zip(words, ref):
        np.testing.assert_allclose(a.quad, 2 * b.quad, atol=1e-3)
        assert a.score == pytest.approx(b.score, abs=1e-5)


def test_scale_above_one_grows_the_torch_input(exported_small, scene):
    """--scale 2 on a frame that already fills the model's working size: torch reads it twice as large
    (small text is the reason to ask), with boxes still in frame pixels."""
    _, _, weights = exported_small
    doubled = TorchSpotter(weights, max_size=(128, 256))
    doubled.scale = 2.0
    x, lb = doubled._prep(scene)
    assert tuple(x.shape[2:]) == (256, 512) and lb.scale == pytest.approx(2.0)
    big = cv2.resize(scene, (512, 256), interpolation=cv2.INTER_LINEAR)  # the very input scale 2 makes
    ref = TorchSpotter(weights, max_size=(256, 512)).spot(big)
    words = doubled.spot(scene)
    assert len(ref) > 0 and [w.text for w in words] == [w.text for w in ref]
    for a, b in zip(words, ref):
        np.testing.assert_allclose(a.quad, b.quad / 2, atol=1e-3)  # frame pixels, not network pixels


def test_scale_above_what_a_graph_holds_is_said_once(exported_small, scene, capsys):
    """A fixed-size graph cannot grow: it reads at the largest scale that fits and says so, once."""
    _, paths, _ = exported_small
    sp = load_spotter(paths["portable"], "onnxruntime", threads=1, scale=2.0)
    plain = load_spotter(paths["portable"], "onnxruntime", threads=1)
    words = sp.spot(scene)
    sp.spot(scene)
    err = capsys.readouterr().err
    assert err.count("note: --scale 2:") == 1, err
    assert "256x128 frame fits this graph's 256x128 input only up to scale 1.00" in err
    assert [w.text for w in words] == [w.text for w in plain.spot(scene)]
    plain.spot(scene[:64, :128])        # scale 1 never notes
    small = load_spotter(paths["portable"], "onnxruntime", threads=1, scale=2.0)
    small.spot(scene[:64, :128])        # fits at 2: honoured, nothing to say
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_min_score_keeps_the_words_at_or_above_it(exported_small, scene, backend):
    """--min-score T reports exactly the words scoring >= T of everything read (T = 0)."""
    _, paths, weights = exported_small
    model = weights if backend == "torch" else paths["portable"]
    everything = load_spotter(model, backend, threads=1, min_score=0).spot(scene)
    assert len(everything) >= 2
    cut = sorted(w.score for w in everything)[len(everything) // 2]
    kept = load_spotter(model, backend, threads=1, min_score=cut).spot(scene)
    assert 0 < len(kept) < len(everything)
    assert [w.text for w in kept] == [w.text for w in everything if w.score >= cut]
    assert load_spotter(model, backend, threads=1).cfg.word_score_thresh == 0.0  # the model's own


def test_spot_letterboxes_other_sizes(exported_small):
    _, paths, _ = exported_small
    spotter = OnnxRuntimeSpotter(paths["portable"], threads=1)
    image = np.full((300, 200, 3), 200, np.uint8)
    for w in spotter.spot(image):
        assert w.quad[:, 0].max() <= 200 and w.quad[:, 1].max() <= 300


def test_spinning_off_lets_idle_threads_sleep_and_reads_the_same(exported_small, scene):
    """The bench times sessions in turn with spinning off; the default session spins (ORT's default)."""
    from spotrt.plugins.ort_session import SPINNING_KEYS

    _, paths, _ = exported_small
    default = OnnxRuntimeSpotter(paths["portable"], threads=1)
    quiet = OnnxRuntimeSpotter(paths["portable"], threads=1, spinning=False)
    for key in SPINNING_KEYS:
        assert spinning_entry(quiet.session, key) == "0" and spinning_entry(default.session, key) is None
    assert [w.text for w in quiet.spot(scene)] == [w.text for w in default.spot(scene)]
    quiet.read(np.full((32, 96, 3), 128, np.uint8))
    assert spinning_entry(quiet._read_session) == "0"


def test_read_matches_torch(exported_small):
    _, paths, weights = exported_small
    rng = np.random.default_rng(4)
    ort_sp = OnnxRuntimeSpotter(paths["plugin"], threads=1)
    torch_sp = TorchSpotter(weights)
    agree = 0
    for i in range(4):
        crop = rng.integers(0, 256, (24 + 6 * i, 80 + 20 * i, 3), dtype=np.uint8)
        text, score = ort_sp.read(crop)
        ref_text, ref_score = torch_sp.read(crop)
        assert isinstance(text, str) and 0.0 < score <= 1.0
        agree += text == ref_text
    # The read graph pads crops to 64x512, torch to a multiple of 8: borders may differ a little.
    assert agree >= 3


def test_non_spotrt_onnx_refused(tmp_path, capsys):
    from onnx import TensorProto, helper

    g = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    other = tmp_path / "other.onnx"
    onnx.save(helper.make_model(g, ir_version=10), str(other))
    with pytest.raises(SpotrtError, match="without spotrt metadata") as info:
        load_spotter(other, "onnxruntime")
    assert "\n" not in str(info.value)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00\x01 definitely not protobuf \xff" * 10)
    with pytest.raises(SpotrtError, match="garbage.onnx"):
        load_spotter(garbage, "auto")
    img = tmp_path / "a.png"
    import cv2

    cv2.imwrite(str(img), np.zeros((32, 32, 3), np.uint8))
    assert main(["spot", str(img), "--model", str(other), "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("spotrt: error: model") and "other.onnx" in err[0]


def test_backend_choice(exported_small, tmp_path):
    _, paths, weights = exported_small
    assert isinstance(load_spotter(weights, "auto"), TorchSpotter)
    with pytest.raises(SpotrtError, match="expected an .onnx"):
        load_spotter(weights, "onnxruntime")
    with pytest.raises(SpotrtError, match="expected a .safetensors"):
        load_spotter(paths["plugin"], "torch")
    with pytest.raises(SpotrtError, match="read graph"):
        load_spotter(paths["read"], "auto")


def test_cli_spot_with_onnx(exported_small, tmp_path, scene):
    import json

    import cv2

    _, paths, _ = exported_small
    cv2.imwrite(str(tmp_path / "s.png"), scene)
    out = tmp_path / "w.jsonl"
    assert main(["spot", str(tmp_path / "s.png"), "--model", str(paths["plugin"]), "--jsonl", str(out), "--quiet"]) == 0
    rec = json.loads(out.read_text().splitlines()[0])
    assert rec["image"].endswith("s.png") and len(rec["words"]) > 0
