"""The frame pipeline: one result per frame, batches split back to the right frames, --every and
--max-frames, stage timings, stop mid-run, a short soak with flat memory, the torch and ONNX
Runtime backends on small frames."""

import json
import sys
import threading

import numpy as np
import pytest
from runtime_helpers import FakeBatchedSpotter, FakeCapture, FakeSpotter, count_video_frames, frame_image, write_video

from spotrt.runtime.pipeline import STAGES, Pipeline, format_summary
from spotrt.runtime.sinks import JsonlSink, VideoSink
from spotrt.runtime.sources import DROP_NEWER, IterableSource, LiveSource, open_source, parse_source


class Collect:
    def __init__(self):
        self.results, self.closed = [], False

    def write(self, r):
        self.results.append((r.frame.stream, r.frame.index, r.frame.dropped, [w.text for w in r.words]))

    def close(self):
        self.closed = True


def images(n, size=(48, 64)):
    return (frame_image(i, size) for i in range(n))


def test_file_to_jsonl_and_video_one_record_and_one_frame_per_frame(tmp_path):
    src = open_source(write_video(tmp_path / "in.mp4", 17))
    jsonl, video = tmp_path / "out.jsonl", tmp_path / "out.mp4"
    sinks = [JsonlSink(jsonl), VideoSink(video, fps={0: src.fps})]
    summary = Pipeline([src], FakeSpotter(), sinks, every=3).run()
    recs = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [r["frame"] for r in recs] == list(range(17))
    assert [("words" in r) for r in recs] == [i % 3 == 0 for i in range(17)]
    assert all(r["dropped"] == "every" for r in recs if "words" not in r)
    assert recs[0]["words"][0]["track"] == 1 and recs[0]["words"][0]["stable"] is None
    seen = [recs[i]["words"][0]["text"] for i in (0, 3, 6)]
    assert recs[6]["words"][0]["stable"] in seen and recs[6]["words"][0]["track"] == 1  # 3rd sighting: stable
    assert count_video_frames(video) == 17
    assert summary["frames_in"] == 17 and summary["processed"] == 6 and summary["dropped"] == {"every": 11}
    assert summary["stage_ms"]["infer"] > 0 and summary["overlap"] > 0
    text = format_summary(summary)
    assert "frames in: 17, processed: 6, dropped: 11 (every: 11)" in text and "overlap:" in text
    assert all(st in text for st in STAGES)


def test_several_sources_batched_into_one_call_and_split_back():
    spotter = FakeBatchedSpotter(batch=3, delay=0.02)
    srcs = [IterableSource(images(20), "a", stream=0), IterableSource(images(25), "b", stream=1)]
    out = Collect()
    summary = Pipeline(srcs, spotter, [out], queue_size=2).run()
    assert out.closed
    for stream, n in ((0, 20), (1, 25)):
        rs = [r for r in out.results if r[0] == stream]
        assert [r[1] for r in rs] == list(range(n))  # in order, none lost
        assert all(r[3] == [str(10 * (r[1] % 25))] for r in rs)  # each frame got its own reading
    assert summary["processed"] == 45 and summary["batches"] == spotter.calls
    assert spotter.calls < 45  # frames were batched (3 to a call when they queue up)


@pytest.mark.parametrize("min_score, read", [(0.85, True), (0.95, False)])
def test_batched_path_applies_the_word_score_threshold_set_after_the_pipeline(min_score, read):
    from spotrt.api import set_min_score

    spotter = FakeBatchedSpotter(batch=2, delay=0.0)  # every word scores 0.9 x 1.0
    out = Collect()
    pipe = Pipeline([IterableSource(images(4), stream=0)], spotter, [out])
    set_min_score(spotter, min_score)
    pipe.run()
    assert len(out.results) == 4
    assert all(bool(words) == read for *_, words in out.results)


def test_latency_from_capture_to_result(tmp_path):
    """Each processed frame's capture-to-result latency is in its record and, as p50/p99, in the
    summary; with a 30 ms model it is at least 30 ms (dropped frames have none)."""
    jsonl = tmp_path / "o.jsonl"
    summary = Pipeline([IterableSource(images(12), "a")], FakeSpotter(delay=0.03), [JsonlSink(jsonl)], every=2).run()
    recs = [json.loads(line) for line in jsonl.read_text().splitlines()]
    lat = [r.get("latency_ms") for r in recs]
    assert all(v >= 30 for v in lat[::2]) and lat[1::2] == [None] * 6
    s = summary["latency_ms"]
    assert s["frames"] == 6 and 30 <= s["p50"] <= s["p99"] <= s["max"] == pytest.approx(max(lat[::2]), abs=0.01)
    assert sorted(lat[::2])[2] == pytest.approx(s["p50"], abs=0.01)  # nearest rank: the 3rd of 6
    assert f"latency capture -> result: p50 {s['p50']:.0f} ms, p99 {s['p99']:.0f} ms" in format_summary(summary)


def test_live_source_latency_is_about_one_inference():
    """A camera at 100 frames/s, a 50 ms model: the pipeline takes a live frame only when the model can
    take it, so a frame's capture-to-result latency stays near one inference (the camera's other frames
    are "live: newer frame" records) instead of growing with the pipeline's queues."""
    src = LiveSource(parse_source("rtsp://cam/x"), opener=lambda spec: FakeCapture(frames=150, delay=0.01),
                     give_up_s=0.0, log=lambda line: None)
    out = Collect()
    summary = Pipeline([src], FakeSpotter(delay=0.05), [out]).run(handle_signals=False)
    assert [r[1] for r in out.results] == list(range(150))
    assert summary["dropped"][DROP_NEWER] > 50 and summary["processed"] > 10
    assert 50 <= summary["latency_ms"]["p50"] < 120, summary["latency_ms"]


def test_max_frames_per_source():
    out = Collect()
    summary = Pipeline([IterableSource(images(50), "a")], FakeSpotter(), [out], max_frames=7).run()
    assert [r[1] for r in out.results] == list(range(7)) and summary["frames_in"] == 7


def test_stop_mid_run_closes_sinks_with_every_read_frame(tmp_path):
    def endless():
        i = 0
        while True:
            yield frame_image(i, (48, 64))
            i += 1

    class StopAfter:
        """Stops the pipeline from inside a sink once 10 frames were written: no timing involved."""

        def __init__(self):
            self.seen = 0

        def write(self, result):
            self.seen += 1
            if self.seen == 10:
                pipe.stop("test")

        def close(self):
            pass

    jsonl = tmp_path / "o.jsonl"
    pipe = Pipeline([IterableSource(endless(), "loop")], FakeSpotter(delay=0.005), [JsonlSink(jsonl), StopAfter()])
    summary = pipe.run(handle_signals=False)
    recs = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert summary["stopped"] == "test" and len(recs) == summary["frames_in"] > 5
    assert [r["frame"] for r in recs] == list(range(len(recs)))


def test_a_failing_backend_raises_after_closing_the_files(tmp_path):
    class Broken(FakeSpotter):
        def _infer(self, feed):
            if self.calls >= 3:
                raise RuntimeError("boom")
            return super()._infer(feed)

    jsonl = tmp_path / "o.jsonl"
    with pytest.raises(RuntimeError, match="boom"):
        Pipeline([IterableSource(images(30), "a")], Broken(), [JsonlSink(jsonl)]).run()
    recs = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert recs and [r["frame"] for r in recs] == list(range(len(recs)))
    assert any(r.get("dropped", "").startswith("error: RuntimeError") for r in recs)


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads RSS from /proc")
def test_short_soak_no_record_lost_memory_flat(tmp_path):
    n, rss = 2000, {}

    class Probe(Collect):
        def write(self, r):
            if r.frame.index in (200, n - 1):
                rss[r.frame.index] = _rss_mb()
            self.results.append(r.frame.index)

    def looping():  # a short clip played over and over, with a moving "word"
        clip = [frame_image(i, (32, 48)) for i in range(25)]
        for i in range(n):
            yield clip[i % 25]

    probe = Probe()
    jsonl = tmp_path / "soak.jsonl"
    summary = Pipeline([IterableSource(looping(), "loop")], FakeSpotter(), [JsonlSink(jsonl), probe],
                       every=2).run(handle_signals=False)
    assert probe.results == list(range(n))
    assert sum(1 for _ in jsonl.open()) == n
    assert summary["processed"] == n // 2 and summary["dropped"] == {"every": n // 2}
    assert rss[n - 1] - rss[200] < 15, rss  # MB


def test_torch_backend_on_small_frames(tmp_path, untrained_weights):
    from spotrt.api import load_spotter

    spotter = load_spotter(untrained_weights, "torch")
    out = Collect()
    src = open_source(write_video(tmp_path / "in.mp4", 4))
    summary = Pipeline([src], spotter, [out]).run()
    assert [r[1] for r in out.results] == [0, 1, 2, 3] and summary["processed"] == 4
    assert summary["batch"] == 1 and summary["batches"] == 4


@pytest.mark.parametrize("scale", [1.0, 0.5, 2.0])
def test_onnxruntime_backend_batched_path(tmp_path, exported_small, scale, capsys):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxruntime_extensions")
    from spotrt.api import load_spotter

    _, paths, _ = exported_small
    spotter = load_spotter(paths["portable"], "onnxruntime", scale=scale)
    src = open_source(write_video(tmp_path / "in.mp4", 3))
    results = []

    class Keep(Collect):
        def write(self, r):
            results.append(r.words)

    Pipeline([src], spotter, [Keep()]).run()
    # The pipeline's batched path reads what spot() reads, frame by frame (at the same --scale).
    src2 = open_source(tmp_path / "in.mp4")
    frames = [f.image for f in src2.frames(threading.Event())]
    for words, image in zip(results, frames):
        direct = spotter.spot(image)
        assert [w.text for w in words] == [w.text for w in direct]
        assert all(np.allclose(a.quad, b.quad) for a, b in zip(words, direct))
    assert len(results) == 3 and any(results)  # words to compare, so a scale left out would show
    # A scale the fixed-size graph cannot hold is said once (frames are read at the largest that fits).
    assert capsys.readouterr().err.count("note: --scale") == (1 if scale > 1 else 0)
