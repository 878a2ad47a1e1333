"""`spotrt bench`: it runs (tiny model, tiny inputs, few iterations), its JSON has every documented
field, its stages compute what Spotter.forward computes, bad options end in one line and exit 1.
Nothing here is asserted on time."""

import json

import cv2
import numpy as np
import pytest
import torch
from conftest import small_spotter

from spotrt.bench import check_fields, format_markdown, make_options, run_bench
from spotrt.bench.jetson import JETSON, DevicePeak, roofline
from spotrt.bench.timing import Budget, summarize
from spotrt.bench.workloads import TORCH_STAGES, CostCounter, TorchWorkload, bench_frames, stage_costs
from spotrt.cli import main
from spotrt.model.weights import save_weights

SIZE = (64, 128)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("bench") / "small.safetensors"
    save_weights(small_spotter(), path)
    return path


@pytest.fixture(scope="module")
def torch_result(weights):
    opts = make_options(model=weights, backend="torch", input_size="64x128,96x128", batch="1,2", iterations=2,
                        warmup=0, frames=2, threads=1, compare=True)
    return run_bench(opts)


def test_torch_sweep_and_comparisons_have_every_field(torch_result):
    missing, undocumented = check_fields(torch_result)
    assert missing == [] and undocumented == []
    runs = torch_result["runs"]
    assert [(tuple(r["input_size"]), r["batch"]) for r in runs] == [((64, 128), 1), ((64, 128), 2), ((96, 128), 1),
                                                                    ((96, 128), 2)]
    for r in runs:
        assert list(r["stages"]) == list(TORCH_STAGES)
        for s in [*r["stages"].values(), r["end_to_end"]]:
            assert s["n"] == 2 and 0 < s["min_ms"] <= s["median_ms"] <= s["p90_ms"] <= s["p99_ms"] <= s["max_ms"]
        assert r["throughput"]["frames"] == 2 * r["batch"]
        lat = r["throughput"]["latency"]  # capture -> words of each frame through the pipelined loop
        assert lat["n"] == r["throughput"]["frames"] and 0 < lat["median_ms"] <= lat["p99_ms"] <= lat["max_ms"]
        assert r["cost"]["flops_per_frame"] > 1e6 and r["cost"]["bytes_fused_per_frame"] < r["cost"]["bytes_per_frame"]
        assert r["cost"]["stages"]["preprocess"]["flops"] == 0 and r["cost"]["stages"]["decoder"]["flops"] > 0
        assert r["peak_fraction"] is None and "unknown" in r["peak_fraction_note"]
        assert r["memory"]["peak_rss_mib"] > 10 and r["memory"]["device_peak_mib"] is None
        assert r["words_per_frame"] > 0
    # more pixels, more work: the cost follows the input size
    assert runs[2]["cost"]["stages"]["backbone+proposals"]["flops"] > runs[0]["cost"]["stages"]["backbone+proposals"]["flops"]
    c = torch_result["comparisons"]
    assert c["single_vs_two_stage"]["status"] == "measured" and c["cpu_precisions"]["status"] == "measured"
    assert c["single_vs_two_stage"]["two_stage_over_single_pass"] > 0
    assert c["single_vs_two_stage"]["words_per_frame"]["two_stage"] > 0
    assert c["cpu_precisions"]["onnxruntime_fp32_over_onnxruntime_int8"] > 0
    if not torch.cuda.is_available():
        assert c["gpu_kernels"] == {"status": "skipped", "reason": c["gpu_kernels"]["reason"]}
        assert "no CUDA device" in c["gpu_kernels"]["reason"]
    rows = torch_result["jetson_estimates"]["rows"]
    assert len(rows) == 2 * len(JETSON) * 2 and all(r["frames_per_s"] > 0 for r in rows)
    assert torch_result["jetson_estimates"]["estimate"] is True


def test_markdown_and_json(torch_result, tmp_path):
    text = format_markdown(torch_result)
    assert "| torch | fp32 | 96x128 | 2 |" in text and "backbone+proposals" in text
    assert "pipelined latency ms (p50 / p99)" in text
    assert "two-stage (A) vs single pass (B)" in text and "Jetson ESTIMATES" in text
    from spotrt.plugins.nvrtc import gpu_unavailable_reason

    if not torch.cuda.is_available() or gpu_unavailable_reason():
        # the kernels could not run: the report says so, with the reason, and times none
        assert "- gpu_kernels: skipped: no CUDA device (" in text and "VarRoIPool" not in text
    else:
        assert "VarRoIPool" in text and "gpu_kernels: skipped" not in text
    assert json.loads(json.dumps(torch_result)) == torch_result


def test_check_fields_finds_missing_and_undocumented(torch_result):
    broken = json.loads(json.dumps(torch_result))
    del broken["runs"][1]["throughput"]["frames_per_s"]
    broken["runs"][0]["extra"] = 1
    broken["comparisons"]["cpu_precisions"].pop("onnxruntime_int8")
    missing, undocumented = check_fields(broken)
    # a field lost from one run of several is not hidden by the others
    assert missing == ["comparisons.cpu_precisions.onnxruntime_int8", "runs[].throughput.frames_per_s"]
    assert undocumented == ["runs[].extra"]
    skipped = json.loads(json.dumps(torch_result))
    skipped["comparisons"]["cpu_precisions"] = {"status": "skipped", "reason": "no onnxruntime"}
    assert check_fields(skipped) == ([], [])


def test_onnxruntime_backend_sweeps_precisions(weights):
    opts = make_options(model=weights, backend="onnxruntime", precision="fp32,int8", input_size="64x128",
                        iterations=1, warmup=0, frames=1, threads=1, compare=False)
    result = run_bench(opts)
    assert check_fields(result) == ([], [])
    assert [r["precision"] for r in result["runs"]] == ["fp32", "int8"]
    for r in result["runs"]:
        assert list(r["stages"]) == ["preprocess", "network", "postprocess"]
        assert r["cost"]["counted_on"] == "torch cpu" and r["cost"]["flops_per_frame"] > 0
    assert result["comparisons"] == {}


def test_stages_compute_what_forward_computes():
    model = small_spotter()
    pipe = TorchWorkload(model, (128, 256))
    frames = bench_frames((128, 256), 2, model.cfg.charset)
    for frame in frames:
        x, _ = pipe.prepare_one(frame)
        ref = model(torch.from_numpy(x)[None])
        raw = pipe.network(pipe.to_input([x]))
        assert int(ref.count[0]) == int(raw["count"][0]) > 0
        for name in ("boxes", "scores", "token_probs"):
            np.testing.assert_allclose(raw[name], getattr(ref, name).numpy(), atol=1e-6, rtol=0)
        np.testing.assert_array_equal(raw["tokens"], ref.tokens.numpy())
    laps = {}
    words = pipe.run(frames, lambda name: laps.setdefault(name, 0))
    assert list(laps) == list(TORCH_STAGES) and len(words) == 2 and sum(map(len, words)) > 0
    two = pipe.run_two_stage(frames)
    assert len(two) == 2 and sum(map(len, two)) > 0
    assert all(len(w.text) > 0 and 0 < w.score <= 1 for ws in two for w in ws)
    # The model's word-score threshold applies to both ways, so their words per frame compare.
    cut = float(np.median([w.score for ws in two for w in ws]))
    pipe.cfg = model.cfg = model.cfg.replace(word_score_thresh=cut)
    kept = pipe.run_two_stage(frames)
    below = sum(w.score < cut for ws in two for w in ws)
    assert 0 < sum(map(len, kept)) == sum(map(len, two)) - below
    assert all(w.score >= cut for ws in kept for w in ws)
    assert all(w.score >= cut for ws in pipe.run(frames) for w in ws)


def test_two_stage_costs_more_backbone_per_crop():
    model = small_spotter()
    pipe = TorchWorkload(model, (128, 256))
    frames = bench_frames((128, 256), 1, model.cfg.charset)
    single = stage_costs(model, lambda lap: pipe.run(frames, lap))
    two = stage_costs(model, lambda lap: pipe.run_two_stage(frames, lap))
    assert set(two) == {"preprocess", "detect", "crop", "recognize", "postprocess"}
    assert two["recognize"]["flops"] > 0 and two["detect"]["flops"] < sum(s["flops"] for s in single.values())


def test_lstm_flops_counted_analytically():
    lstm = torch.nn.LSTM(128, 64, batch_first=True, bidirectional=True)
    with torch.no_grad(), CostCounter(lstm) as cc:
        lstm(torch.randn(10, 48, 128))
        cc.lap("all")
    assert cc.stages["all"]["flops"] == 2 * 2 * 10 * 48 * 4 * 64 * (128 + 64)


def test_roofline_picks_the_bound_and_fp32_for_plugin_stages():
    dev = DevicePeak("test", int8_tops=10.0, fp16_tflops=5.0, fp32_tflops=1.0, bandwidth_gbs=100.0, source="-")
    stages = {"preprocess": {"flops": 1e12, "bytes": 1e12, "bytes_fused": 1e12},  # host stage: not modelled
              "backbone+proposals": {"flops": 1e9, "bytes": 8e7, "bytes_fused": 2e7},
              "encoder+detection": {"flops": 1e6, "bytes": 9e8, "bytes_fused": 2e8},
              "decoder": {"flops": 1e8, "bytes": 1e9, "bytes_fused": 1e6}}
    # efficiency 0.5: int8 5e12 op/s, fp16 2.5e12, fp32 (decoder) 5e11, 5e10 B/s; int8 bytes x 0.25
    est = roofline(stages, dev, "int8", efficiency=0.5)
    # backbone: compute 0.2 ms > memory 0.1 ms; encoder: memory 1 ms; decoder at fp32: compute 0.2 ms
    assert est["ms_per_frame"] == pytest.approx(1.4)
    assert est["bound"] == {"backbone+proposals": "compute", "encoder+detection": "memory", "decoder": "compute"}
    # fp16: backbone 0.4 ms, encoder 2 ms (bytes x 0.5), decoder 0.2 ms
    assert roofline(stages, dev, "fp16", 0.5)["ms_per_frame"] == pytest.approx(2.6)


def test_summary_and_budget():
    s = summarize(np.arange(1, 101) / 1e3)
    assert (s["n"], s["median_ms"], s["min_ms"], s["max_ms"]) == (100, 50.5, 1.0, 100.0)
    assert s["p90_ms"] == pytest.approx(90.1) and s["p99_ms"] == pytest.approx(99.01)
    assert list(Budget(iterations=3).rounds()) == [0, 1, 2]
    assert list(Budget(duration=1e-9).rounds()) == [0]


def test_cli_writes_json_and_png(weights, tmp_path, capsys):
    out, png = tmp_path / "b.json", tmp_path / "b.png"
    code = main(["bench", "--model", str(weights), "--input-size", "64x128", "--iterations", "1", "--warmup", "0",
                 "--frames", "1", "--threads", "1", "--no-compare", "--json", str(out), "--plot", str(png), "--quiet"])
    assert code == 0
    assert "| torch | fp32 | 64x128 | 1 |" in capsys.readouterr().out
    result = json.loads(out.read_text())
    assert check_fields(result) == ([], []) and result["settings"]["iterations"] == 1
    img = cv2.imread(str(png))
    assert img is not None and img.shape[1] == 1200 and (img < 255).any()


@pytest.mark.parametrize("args,expected", [
    (["--input-size", "12x"], "--input-size: found '12x', expected HEIGHTxWIDTH"),
    (["--input-size", "100x128"], "--input-size: found 100x128, expected"),
    (["--iterations", "0"], "--iterations: found '0', expected an integer >= 1"),
    (["--duration", "-1"], "--duration: found '-1', expected seconds"),
    (["--iterations", "2", "--duration", "1"], "--iterations/--duration: found both"),
    (["--batch", "1,0"], "--batch: found '0', expected an integer in [1, 64]"),
    (["--backend", "tensorflow"], "--backend: found 'tensorflow', expected one of torch, onnxruntime, tensorrt"),
    (["--precision", "int8"], "--precision: found 'int8' for backend torch, expected one of fp32"),
    (["--model", "nope.safetensors"], "--model nope.safetensors: file not found"),
    (["--plot", "out.jpg"], "--plot out.jpg: found suffix '.jpg', expected a .png file"),
    (["--json", "no/such/dir/b.json"], "folder no/such/dir does not exist"),
])
def test_cli_bad_input_one_line_exit_1(args, expected, capsys):
    assert main(["bench", *args]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("spotrt: error: ") and expected in err[0], err


def test_cli_tensorrt_absent_is_one_line(capsys):
    from spotrt.bench.options import tensorrt_missing

    if tensorrt_missing() is None:
        pytest.skip("TensorRT is installed here")
    assert main(["bench", "--backend", "tensorrt"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--backend tensorrt: the tensorrt Python bindings are not installed" in err[0]


def test_exported_graph_is_measured_as_it_is(exported_small):
    """--model X.onnx: the graph's own size and batch, fp32 and its calibrated int8; no torch cost."""
    _, paths, _ = exported_small
    opts = make_options(model=paths["portable"], precision="fp32,int8", iterations=1, warmup=0, frames=1,
                        threads=1, compare=True)
    assert (opts.backend, opts.graph, opts.model) == ("onnxruntime", str(paths["portable"]), None)
    assert opts.input_sizes == ((128, 256),) and opts.batches == (1,)
    result = run_bench(opts)
    assert [(r["precision"], r["input_size"], r["cost"]["flops_per_frame"]) for r in result["runs"]] == \
        [("fp32", [128, 256], None), ("int8", [128, 256], None)]
    assert all(c["status"] == "skipped" for c in result["comparisons"].values())
    assert result["jetson_estimates"]["rows"] == [] and check_fields(result) == ([], [])
    assert "| onnxruntime | int8 | 128x256 | 1 | 1 |" in format_markdown(result)


@pytest.mark.parametrize("args,expected", [
    (["--input-size", "64x128"], "--input-size: found 64x128 for the graph"),
    (["--batch", "2"], "--batch: found 2 for the graph"),
    (["--backend", "torch"], "found an exported graph with --backend torch"),
])
def test_exported_graph_keeps_its_shape(exported_small, args, expected, capsys):
    _, paths, _ = exported_small
    assert main(["bench", "--model", str(paths["portable"]), *args]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0], err
