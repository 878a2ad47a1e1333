"""The shipped model's exported graphs (spotrt/weights/*.onnx): exported from the shipped weights as
they are now, and reading what the torch model reads. A runtime install without torch reads with them.

Retrained or re-thresholded weights without `make shipped-onnx` fail the first test (the graphs
record the weights' sha256); a graph exported wrongly fails the torch comparison.
"""
from __future__ import annotations

import numpy as np
import pytest

from conftest import shared_data
from spotrt.formats import shipped
from spotrt.formats.digest import sha256_file
from spotrt.formats.onnx_graph import KIND_PLUGIN, KIND_READ, load_graph
from spotrt.formats.weights import read_metadata
from spotrt.model.config import SpotterConfig

pytest.importorskip("onnx")
REGENERATE = "the shipped graphs are stale: run `make shipped-onnx` and commit spotrt/weights/*.onnx"


def test_graphs_were_exported_from_the_shipped_weights_as_they_are():
    weights = read_metadata(shipped.WEIGHTS, require_config=True)
    sha = sha256_file(shipped.WEIGHTS)
    _, plugin = load_graph(shipped.ONNX, (KIND_PLUGIN,))
    _, read = load_graph(shipped.READ_ONNX, (KIND_READ,))
    assert plugin["spotrt_read_graph"] == shipped.READ_ONNX.name
    for meta in (plugin, read):
        assert meta["spotrt_weights"] == shipped.WEIGHTS.name
        assert meta["spotrt_weights_sha256"] == sha, REGENERATE
        assert SpotterConfig.from_json(meta["spotrt_config"]) == SpotterConfig.from_json(weights["config"]), REGENERATE
    assert plugin["spotrt_input_size"] == "736x1280" and plugin["spotrt_batch"] == "1"


def test_packaged_with_the_weights():
    import tomllib
    from pathlib import Path

    data = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    globs = data["tool"]["setuptools"]["package-data"]["spotrt"]
    assert "weights/*.onnx" in globs and "weights/*.safetensors" in globs
    assert "torch" not in " ".join(data["project"]["dependencies"] + data["project"]["optional-dependencies"]["runtime"])


def test_onnxruntime_without_a_model_and_auto_without_torch_take_the_shipped_graph(monkeypatch):
    pytest.importorskip("onnxruntime")
    from spotrt import api
    from spotrt.runtime.onnxruntime_backend import OnnxRuntimeSpotter

    assert api.resolve_backend(None, "onnxruntime") == (shipped.ONNX, "onnxruntime")
    monkeypatch.setattr(api, "torch_installed", lambda: False)
    assert api.resolve_backend(None, "auto") == (shipped.ONNX, "onnxruntime")
    spotter = api.load_spotter(threads=1)
    assert isinstance(spotter, OnnxRuntimeSpotter) and spotter.path == shipped.ONNX
    for model, backend, words in ((None, "torch", "backend torch: found no torch installed"),
                                  (shipped.WEIGHTS, "auto", "found a weights file, which only the torch backend")):
        with pytest.raises(api.SpotrtError, match=words) as info:
            api.load_spotter(model, backend)
        assert "\n" not in str(info.value)


def test_shipped_graphs_read_what_the_torch_model_reads():
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    from spotrt.api import load_spotter
    from spotrt.imageops import read_image

    image = read_image(shared_data("ic15_dev", "images", "img_2.jpg"))
    torch_words = load_spotter(None, "torch").spot(image)
    graph = load_spotter(None, "onnxruntime", threads=1)
    graph_words = graph.spot(image)
    assert len(torch_words) >= 3
    assert [w.text for w in graph_words] == [w.text for w in torch_words]
    np.testing.assert_allclose([w.quad for w in graph_words], [w.quad for w in torch_words], atol=1.0)
    np.testing.assert_allclose([w.score for w in graph_words], [w.score for w in torch_words], atol=1e-3)
    quad = np.asarray(torch_words[0].quad, np.float32).reshape(-1, 2)
    (x1, y1), (x2, y2) = np.floor(quad.min(axis=0)).astype(int), np.ceil(quad.max(axis=0)).astype(int)
    crop = image[max(y1, 0):y2, max(x1, 0):x2]
    text = graph.read(crop)[0]
    assert text and text == load_spotter(None, "torch").read(crop)[0]
