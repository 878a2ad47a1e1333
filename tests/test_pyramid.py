"""The pyramid's coarse pass (spotrt/model/pyramid.py): its merge rule, and both graphs against
Spotter.forward with it."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import random_batch, small_spotter
from spotrt.model import pyramid
from spotrt.model.config import SpotterConfig
from spotrt.postprocess import decode_tokens, text_confidence


def test_pack_moves_valid_slots_first_in_order_and_zeroes_the_rest():
    valid = torch.tensor([[False, True, False, True, True], [False, False, False, False, False]])
    boxes = torch.arange(2 * 5 * 4, dtype=torch.float32).reshape(2, 5, 4) + 1
    tokens = torch.arange(2 * 5 * 3).reshape(2, 5, 3) + 1
    (b, t), count = pyramid.pack(valid, [boxes, tokens])
    assert count.tolist() == [3, 0]
    assert torch.equal(b[0, :3], boxes[0, [1, 3, 4]]) and torch.equal(t[0, :3], tokens[0, [1, 3, 4]])
    assert not b[0, 3:].any() and not t[0, 3:].any() and not b[1].any() and not t[1].any()


def test_read_confidence_is_postprocess_text_confidence():
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 4, (64, 6))
    tokens[:4] = [[0, 2, 3, 0, 0, 0], [1, 2, 3, 1, 2, 3], [3, 0, 1, 1, 1, 1], [2, 2, 0, 0, 0, 0]]
    probs = rng.random((64, 6)).astype(np.float32)
    conf, length = pyramid.read_confidence(torch.from_numpy(tokens), torch.from_numpy(probs))
    for i in range(64):
        text = decode_tokens(tokens[i], "abc")
        assert int(length[i]) == len(text)
        assert float(conf[i]) == pytest.approx(text_confidence(probs[i], text), abs=1e-6)


def test_fine_pieces_inside_a_better_read_coarse_word_are_left_to_it():
    cfg = SpotterConfig(score_thresh=0.5, word_score_thresh=0.6)
    t = cfg.max_word_len

    def pass_of(boxes, valid, scores, texts, conf):
        tokens = torch.zeros((1, len(texts), t), dtype=torch.long)
        for j, n in enumerate(texts):
            tokens[0, j, :n] = 1
        probs = torch.tensor(conf)[None, :, None].expand(1, len(texts), t)
        return torch.tensor([boxes]), torch.tensor([valid]), torch.tensor([scores]), tokens, probs

    # fine: two pieces read with word score 0.7 under the first coarse word, a third piece under the
    # second, a well-read word (0.95) under the first too, and an empty slot
    fine = pass_of([[10.0, 10, 40, 60], [45, 10, 90, 60], [300, 10, 340, 40], [50, 62, 90, 69], [80, 10, 150, 60]],
                   [True, True, True, True, False], [1.0, 1.0, 1.0, 1.0, 1.0], [3, 4, 2, 5, 3],
                   [0.7, 0.7, 0.7, 0.95, 0.7])
    # coarse: a word over the first pieces (detection 0.9 x reading 0.9 = 0.81); one over the third
    # read below the word threshold (0.9 x 0.5)
    coarse = pass_of([[0.0, 0, 100, 70], [290, 0, 350, 50]], [True, True], [0.9, 0.9], [5, 1], [0.9, 0.5])
    assert pyramid.fine_kept(cfg, fine, coarse).tolist() == [[False, False, True, True, False]]
    # below the detection threshold the coarse word claims nothing; nor does an empty reading
    low = (coarse[0], coarse[1], torch.tensor([[0.4, 0.9]]), coarse[3], coarse[4])
    assert pyramid.fine_kept(cfg, fine, low).tolist() == [[True, True, True, True, False]]
    empty = (coarse[0], coarse[1], coarse[2], torch.zeros_like(coarse[3]), coarse[4])
    assert pyramid.fine_kept(cfg, fine, empty).tolist() == [[True, True, True, True, False]]


@pytest.mark.parametrize("factor,levels", [(3, 1), (-2, 1), (1, 1), (4, 2), (2, 3), (2, 0)])
def test_bad_factor_or_levels_are_refused(factor, levels):
    with pytest.raises(ValueError, match="pyramid_factor"):
        SpotterConfig(pyramid_factor=factor, pyramid_levels=levels)


def test_coarse_levels_and_slots():
    assert SpotterConfig().pyramid_factors == () and SpotterConfig().output_slots == 48
    assert SpotterConfig(pyramid_factor=2).pyramid_factors == (2,)
    cfg = SpotterConfig(pyramid_factor=2, pyramid_levels=2)
    assert cfg.pyramid_factors == (2, 4) and cfg.output_slots == 48 + 2 * 16


def _pyramid_model():
    model = small_spotter(seed=6, pyramid_factor=2, pyramid_min_height=24.0, pyramid_proposals=5)
    assert model.cfg.output_slots == 17
    return model


def test_forward_reports_coarse_regions_after_the_fine_ones():
    """Spotter.forward with the coarse pass: K + K2 slots, packed; its regions are the coarse pass's
    proposals (at least pyramid_min_height tall), read like the fine ones."""
    model = _pyramid_model()
    x = random_batch(2)
    out = model(x)
    assert out.boxes.shape == (2, 17, 4) and out.tokens.shape == (2, 17, model.cfg.max_word_len)
    plain = model.cfg.replace(pyramid_factor=0)
    fine_model = small_spotter(seed=6)  # the same weights without the coarse pass
    fine_model.cfg = plain
    fine = fine_model(x)
    _, props, coarse_count = model.coarse_proposals(x)
    assert (coarse_count > 0).all()
    valid = props[0, : int(coarse_count[0])]
    assert ((valid[:, 3] - valid[:, 1]) >= 24.0).all()
    for i in range(2):
        n = int(out.count[i])
        assert n <= int(fine.count[i]) + int(coarse_count[i]) and n >= int(coarse_count[i])
        assert not out.boxes[i, n:].any() and not out.tokens[i, n:].any()
        # the coarse regions are the last slots, in proposal order
        tail = out.proposals[i, n - int(coarse_count[i]):n]
        assert torch.allclose(tail, props[i, : int(coarse_count[i])])


@pytest.mark.parametrize("kind", ["plugin", "portable"])
@pytest.mark.parametrize("levels", [1, 2])
def test_pyramid_graphs_equal_torch(tmp_path, kind, levels):
    pytest.importorskip("onnxruntime_extensions")
    from spotrt.export.onnx_export import export_model
    from test_export import compare_with_torch

    model = _pyramid_model()
    model.cfg = model.cfg.replace(pyramid_levels=levels)
    slots = 12 + 5 * levels
    paths = export_model(model, tmp_path / "m.onnx", input_size=(128, 256), batch=2, kinds=(kind,))
    got = compare_with_torch(model, paths[kind], batch=2, seed=3)
    assert got["boxes"].shape == (2, slots, 4)
    if levels == 2:  # the quarter-size pass proposes too (its regions are among the slots)
        _, _, count4 = model.coarse_proposals(random_batch(2, seed=3), 4)
        assert (count4 > 0).any()


def test_coarse_pass_is_quantized_like_the_fine_one(tmp_path):
    """Q/DQ covers both passes alike: the coarse pass's convolutions read the shared weights from
    their initializers (the exporter's Identity copies are folded), its proposal heads stay float as
    the fine ones do, and the INT8 graph runs and reads about as FP32 does."""
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    import cv2

    from spotrt.calibration.calibrate import calibrate
    from spotrt.calibration.qdq import select_nodes
    from spotrt.export.onnx_export import export_model
    from spotrt.runtime.onnxruntime_backend import OnnxRuntimeSpotter

    model = _pyramid_model()
    path = export_model(model, tmp_path / "m.onnx", input_size=(128, 256), batch=1, kinds=("portable",))["portable"]
    graph = onnx.load(str(path)).graph
    assert not [n for n in graph.node if n.op_type == "Identity" and n.input[0] in {t.name for t in graph.initializer}]
    convs = [n.name for n in graph.node if n.op_type == "Conv"]
    quantized = {q.name for q in select_nodes(graph)}
    heads = [c for c in convs if c.startswith(("/tpn/cls", "/tpn/reg"))]
    assert len(heads) == 4 and not quantized & set(heads)               # both passes' heads stay float
    assert set(convs) - set(heads) <= quantized                          # every other conv, in both passes
    assert any("_1/" in c for c in quantized) and len(quantized & set(convs)) == len(convs) - 4
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        img = np.full((128, 256, 3), 210, np.uint8)
        cv2.putText(img, ["open", "exit", "stop"][i], (10, 90), cv2.FONT_HERSHEY_SIMPLEX, 2.0, (20, 20, 20), 5)
        cv2.imwrite(str(frames / f"f{i}.png"), img)
    r = calibrate(path, tmp_path / "m.int8.onnx", images=frames, frames=3, method="minmax", threads=1)
    out = OnnxRuntimeSpotter(r.out, threads=1).run(
        np.random.default_rng(1).standard_normal((1, 3, 128, 256)).astype(np.float32))
    assert out["boxes"].shape == (1, 17, 4) and 0 < int(out["count"][0]) <= 17
