"""Serving from Triton: `spotrt serve` (a real tritonserver through PyTriton), `spotrt run --server`
(real tritonclient gRPC), a stock model repository in the bundled tritonserver, restarts and bad input.

Servers run on 127.0.0.1 with free ports, with the small exported test model and a few small frames.
They need a Python with PyTriton (tests/triton_helpers.py): skip without one, fail where
SPOTRT_REQUIRE_TRITON=1 (CI).
"""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
from runtime_helpers import count_video_frames, frame_image, free_ports, spinning_entry, write_video
from test_runtime_cli import one_error_line
from triton_helpers import BundledTritonServer, ServeProcess, model_metrics, require_triton

from spotrt.cli import main
from spotrt.errors import SpotrtError
from spotrt.postprocess import SpottedWord
from spotrt.formats import triton as protocol


def records(path) -> dict:
    """(stream, frame) -> the record without its latency (the one field that differs between runs)."""
    out = {}
    for line in path.read_text().splitlines():
        r = json.loads(line)
        r.pop("latency_ms", None)
        out[(r["stream"], r["frame"])] = r
    return out


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("serve_videos")
    return write_video(d / "a.mp4", 6), write_video(d / "b.mp4", 5)


@pytest.fixture(scope="module")
def local_words(exported_small, videos, tmp_path_factory):
    """What the local ONNX Runtime backend reads in the two videos (every word: --min-score 0)."""
    out = tmp_path_factory.mktemp("local") / "local.jsonl"
    assert main(["run", *map(str, videos), "--model", str(exported_small[1]["plugin"]), "--jsonl", str(out),
                 "--min-score", "0", "--quiet"]) == 0
    recs = records(out)
    assert len(recs) == 11 and sum(len(r["words"]) for r in recs.values()) > 0  # words to compare, or it proves nothing
    return recs


@pytest.fixture(scope="module")
def server(exported_small, tmp_path_factory):
    py = require_triton()
    s = ServeProcess(exported_small[1]["plugin"], py, ["--max-batch", "4", "--instances", "2", "--queue-delay-us", "1000"],
                     log_dir=tmp_path_factory.mktemp("serve_logs")).start()
    yield s
    assert s.stop() == 0  # SIGTERM: a clean stop


# -- no server needed ---------------------------------------------------------------------------------------

def test_serving_never_imports_torch():
    import subprocess
    import sys

    code = ("import sys; import spotrt.runtime.triton_backend, spotrt.serve.answer, spotrt.serve.repository, "
            "spotrt.serve.pytriton_server; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_words_survive_the_tensors_both_ways():
    quad = np.array([[1, 2], [30, 2], [30, 12], [1, 12]], np.float32)
    words = [[SpottedWord("exit", 0.9, quad, 0.95, 0.94), SpottedWord("née", 0.5, quad + 1, 0.6, 0.8)], []]
    out = protocol.pack_words(words)
    assert out["count"].tolist() == [[2], [0]] and out["quads"].shape == (2, 2, 4, 2)
    back = protocol.unpack_words(out)
    assert [[(w.text, round(w.score, 6), w.quad.tolist(), round(w.det_score, 6)) for w in f] for f in back] == \
        [[(w.text, round(w.score, 6), w.quad.tolist(), round(w.det_score, 6)) for w in f] for f in words]


@pytest.mark.parametrize("frames, scale, min_score, words", [
    (np.zeros((1, 8, 8, 4), np.uint8), np.ones((1, 1), np.float32), np.zeros((1, 1), np.float32), "expected uint8 [n, H, W, 3]"),
    (np.zeros((1, 0, 8, 3), np.uint8), np.ones((1, 1), np.float32), np.zeros((1, 1), np.float32), "at least one frame"),
    (np.zeros((2, 8, 8, 3), np.uint8), np.ones((1, 1), np.float32), np.zeros((2, 1), np.float32), "expected [2, 1]"),
    (np.zeros((1, 8, 8, 3), np.uint8), np.full((1, 1), 9, np.float32), np.zeros((1, 1), np.float32), "scale: found 9.0"),
    (np.zeros((1, 8, 8, 3), np.uint8), np.ones((1, 1), np.float32), np.full((1, 1), np.nan, np.float32), "min_score: found nan"),
])
def test_a_request_the_model_cannot_answer_is_one_line(frames, scale, min_score, words):
    with pytest.raises(protocol.RequestError, match=words.replace("[", r"\[").replace("]", r"\]")):
        protocol.check_request(frames, scale, min_score)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000", "grpc://127.0.0.1", "grpc://:8001", "grpc://h:99999"])
def test_server_url_must_be_grpc_host_port(url):
    from spotrt.runtime.triton_backend import parse_server_url

    with pytest.raises(SpotrtError, match="expected grpc://host:port"):
        parse_server_url(url)


def test_failed_requests_become_dropped_records_with_their_reason():
    """What the client does with each kind of failed request (the real exception type of tritonclient)."""
    pytest.importorskip("tritonclient.grpc")
    from types import SimpleNamespace

    from tritonclient.utils import InferenceServerException

    from spotrt.runtime.triton_backend import DROP_ERROR, DROP_LOST, MAX_ERRORS_IN_A_ROW, RemoteBackend, _Pending

    said = []
    spotter = SimpleNamespace(in_flight=2, url="grpc://127.0.0.1:1", model="spotrt", timeout=1.0, log=said.append,
                              words_of_result=lambda result: ["a word"])
    backend = RemoteBackend(spotter)

    def post(error, result=None):
        pending = _Pending()
        pending.done(result, error)
        r = SimpleNamespace(raw=pending, frame=SimpleNamespace(dropped=None, index=7, stream=1))
        return backend.post(r), r.frame.dropped

    lost = InferenceServerException("Socket closed", status="StatusCode.UNAVAILABLE")
    assert post(lost) == ([], f"{DROP_LOST} (UNAVAILABLE)")
    assert post(None, result=object()) == (["a word"], None)
    model_error = InferenceServerException("Traceback ...\nRequestError: input scale: found 9.0, expected 0.1 to 4.0",
                                           status="StatusCode.INTERNAL")
    for _ in range(MAX_ERRORS_IN_A_ROW - 1):
        assert post(model_error) == ([], DROP_ERROR)
    assert len(said) == 1 and "input scale: found 9.0" in said[0] and "frame 7 of stream 1 dropped" in said[0]
    with pytest.raises(SpotrtError, match=f"{MAX_ERRORS_IN_A_ROW} frames in a row"):
        post(model_error)
    assert backend.answered == 1 and backend.lost == {f"{DROP_LOST} (UNAVAILABLE)": 1, DROP_ERROR: MAX_ERRORS_IN_A_ROW - 1}


def test_a_request_that_never_gets_an_answer_is_lost_in_flight_not_waited_for(monkeypatch):
    """A callback that never comes (no result, no error) holds its stream's slot only until the deadline
    and its grace have passed: then it is lost in flight, the client reconnects and the next frame goes."""
    from types import SimpleNamespace

    from spotrt.runtime import triton_backend
    from spotrt.runtime.triton_backend import DROP_LOST, RemoteBackend

    monkeypatch.setattr(triton_backend, "ANSWER_GRACE_S", 0.0)
    sent, reconnects = [], []
    spotter = SimpleNamespace(in_flight=1, url="grpc://127.0.0.1:1", model="spotrt", timeout=0.2, log=print,
                              Error=SpotrtError, reconnect=reconnects.append,
                              submit=lambda image, pending: sent.append(pending))  # never answers
    backend = RemoteBackend(spotter)
    frames = [SimpleNamespace(raw=None, frame=SimpleNamespace(dropped=None, index=i, stream=0, image=None))
              for i in range(2)]
    t0 = time.monotonic()
    backend.infer(frames)  # the second frame waits for the first one's slot
    assert len(sent) == 2 and time.monotonic() - t0 < 5
    assert reconnects == ["TimeoutError: no answer"]
    assert backend.post(frames[0]) == [] and frames[0].frame.dropped == f"{DROP_LOST} (TimeoutError)"
    sent[1].done(None, TimeoutError("no answer"))
    sent[1].done(object(), None)  # a late answer after the client gave up changes nothing
    assert backend.post(frames[1]) == [] and frames[1].frame.dropped == f"{DROP_LOST} (TimeoutError)"


@pytest.mark.parametrize("args, words", [
    (["--max-batch", "0"], "--max-batch: found 0"),
    (["--instances", "0"], "--instances: found 0"),
    (["--grpc-port", "70000"], "--grpc-port: found 70000"),
    (["--grpc-port", "9100", "--http-port", "9100"], "three different ports"),
])
def test_serve_flags_out_of_range(args, words, capsys):
    assert main(["serve", *args]) == 1
    assert words in one_error_line(capsys)


def test_serve_on_a_port_in_use(capsys):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        assert main(["serve", "--grpc-port", str(s.getsockname()[1])]) == 1
    assert "cannot listen there" in one_error_line(capsys)


def test_export_triton_repo_checks_its_model_first(tmp_path, capsys):
    (tmp_path / "x.txt").write_text("not a model")
    assert main(["export", "--triton-repo", str(tmp_path / "repo"), "--triton-model", str(tmp_path / "x.txt")]) == 1
    assert "expected an .onnx graph or a TensorRT .engine" in one_error_line(capsys)
    (tmp_path / "m.engine").write_bytes(b"engine")
    assert main(["export", "--triton-repo", str(tmp_path / "repo"), "--triton-model", str(tmp_path / "m.engine")]) == 1
    assert "m.engine.json" in one_error_line(capsys)
    assert not (tmp_path / "repo").exists()


@pytest.mark.parametrize("instances", [1, 2])
def test_serve_lets_the_idle_threads_of_several_instances_sleep(instances, exported_small, monkeypatch):
    """Several ONNX Runtime instances run at once: spinning sessions would take each other's cores."""
    import spotrt.api
    from spotrt.serve import pytriton_server

    class NoServer(Exception):
        pass

    class Triton:  # stands in for PyTriton only to stop serve() once its spotters are loaded
        def __init__(self, **_kw):
            raise NoServer

    loaded, real_load = [], spotrt.api.load_spotter
    monkeypatch.setattr(spotrt.api, "load_spotter", lambda *a, **kw: loaded.append(real_load(*a, **kw)) or loaded[-1])
    monkeypatch.setattr(pytriton_server, "import_pytriton", lambda: (Triton, lambda **kw: None, None, None, None))
    with pytest.raises(NoServer):
        pytriton_server.serve(exported_small[1]["plugin"], instances=instances, stop=threading.Event())
    assert len(loaded) == instances
    assert [spinning_entry(s.session) for s in loaded] == ([None] if instances == 1 else ["0"] * instances)


def test_a_repository_with_several_cpu_instances_lets_their_idle_threads_sleep(exported_small, monkeypatch):
    """config.pbtxt carries the rule to the stock server's Python model (model.py), which applies it."""
    import importlib.util
    import sys
    import types

    from spotrt.serve.repository import MODEL_PY, config_pbtxt

    assert "spotrt_spinning" not in config_pbtxt("m", "model.onnx", 4, 100, 1, gpu=False)
    assert "spotrt_spinning" not in config_pbtxt("m", "model.engine", 4, 100, 2, gpu=True)
    assert 'key: "spotrt_spinning" value: { string_value: "false" }' in config_pbtxt("m", "model.onnx", 4, 100, 2,
                                                                                      gpu=False)
    utils = types.ModuleType("triton_python_backend_utils")
    utils.TritonModelException = RuntimeError
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", utils)
    spec = importlib.util.spec_from_file_location("spotrt_triton_model", MODEL_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    graph = exported_small[1]["plugin"]
    for value, expected in (("false", "0"), (None, None)):
        params = {"spotrt_model": {"string_value": graph.name}}
        if value:
            params["spotrt_spinning"] = {"string_value": value}
        model = module.TritonPythonModel()
        model.initialize({"model_config": json.dumps({"parameters": params}),
                          "model_repository": str(graph.parent.parent), "model_version": graph.parent.name})
        assert spinning_entry(model.spotter.session) == expected
        model.finalize()


# -- spotrt serve ----------------------------------------------------------------------------------------------

def test_run_two_streams_on_the_server_reads_what_the_local_backend_reads(server, videos, local_words, tmp_path, capsys):
    out = tmp_path / "remote.jsonl"
    assert main(["run", *map(str, videos), "--server", server.url, "--jsonl", str(out), "--min-score", "0",
                 "--in-flight", "3", "--output", str(tmp_path / "o.mp4"), "--quiet"]) == 0
    assert count_video_frames(tmp_path / "o.0.mp4") == 6 and count_video_frames(tmp_path / "o.1.mp4") == 5
    remote = records(out)
    assert remote == local_words  # every frame, same words (text, score, box), same tracks
    assert "11 frames sent, 11 answered, 0 lost" in capsys.readouterr().out
    m = model_metrics(server.metrics)  # Prometheus: the frames went through Triton's scheduler
    assert m["nv_inference_request_success"] >= 11 and m["nv_inference_count"] >= 11
    assert m["nv_inference_exec_count"] <= m["nv_inference_count"]


def test_the_word_threshold_travels_with_the_request(server, videos, local_words, tmp_path):
    scores = sorted(w["score"] for k, r in local_words.items() if k[0] == 0 for w in r["words"])
    threshold = str((scores[0] + scores[-1]) / 2)  # between the lowest and highest score: cuts some, keeps some
    got = {}
    for where in (["--server", server.url], ["--model", str(server.model)]):
        out = tmp_path / f"{where[0][2:]}.jsonl"
        assert main(["run", str(videos[0]), *where, "--jsonl", str(out), "--min-score", threshold, "--quiet"]) == 0
        got[where[0]] = records(out)
    assert got["--server"] == got["--model"]
    kept = sum(len(r["words"]) for r in got["--server"].values())
    assert 0 < kept < len(scores)


def test_two_live_cameras_on_the_server(server, exported_small, tmp_path):
    """Two RTSP streams (a real RTSP server on 127.0.0.1, real time) read through the server: every
    frame index once per stream, read or dropped with a live reason, and each frame read gets the
    words the local backend reads in the same frame of the file."""
    from runtime_helpers import RtspServer, require_gst, write_h264

    require_gst("x264enc", "avdec_h264", "rtspsrc", "parsebin")
    clip = write_h264(tmp_path / "cams.mp4", [frame_image(i) for i in range(30)])
    local = tmp_path / "local.jsonl"
    assert main(["run", str(clip), "--model", str(exported_small[1]["plugin"]), "--jsonl", str(local),
                 "--min-score", "0", "--source-backend", "gst", "--quiet"]) == 0
    words = {r["frame"]: [(w["text"], w["score"], w["box"]) for w in r["words"]] for r in records(local).values()}
    assert sum(map(len, words.values())) > 0
    cams = RtspServer(clip).start()
    try:
        out = tmp_path / "cams.jsonl"
        assert main(["run", cams.url, cams.url, "--server", server.url, "--jsonl", str(out), "--min-score", "0",
                     "--source-backend", "gst", "--reconnect-timeout", "10", "--quiet"]) == 0
    finally:
        cams.close()
    recs = records(out)
    for stream in (0, 1):
        got = {i: r for (s, i), r in recs.items() if s == stream}
        assert sorted(got) == list(range(30))
        read = [i for i, r in got.items() if "words" in r]
        assert len(read) >= 5 and all(r["dropped"].startswith("live:") for r in got.values() if "dropped" in r)
        for i in read:
            assert [(w["text"], w["score"], w["box"]) for w in got[i]["words"]] == words[i], (stream, i)


def test_bad_requests_get_error_responses_and_the_server_keeps_serving(server):
    import tritonclient.grpc as gc
    from tritonclient.utils import InferenceServerException

    client = gc.InferenceServerClient(f"127.0.0.1:{server.grpc}")

    def request(frames, dtype="UINT8", scale=1.0):
        n = frames.shape[0]
        values = [("frames", frames, dtype), ("scale", np.full((n, 1), scale, np.float32), "FP32"),
                  ("min_score", np.zeros((n, 1), np.float32), "FP32")]
        inputs = []
        for name, value, dt in values:
            t = gc.InferInput(name, list(value.shape), dt)
            t.set_data_from_numpy(value)
            inputs.append(t)
        return client.infer("spotrt", inputs, client_timeout=30)

    good = np.stack([frame_image(3)])
    for bad, words in [
        (lambda: request(good.astype(np.float32), "FP32"), "data-type is 'FP32'"),
        (lambda: request(np.zeros((1, 20, 20, 4), np.uint8)), "unexpected shape"),
        (lambda: request(np.repeat(good, 5, axis=0)), "batch-size must be <= 4"),
        (lambda: request(good, scale=9.0), "input scale: found 9.0"),
    ]:
        with pytest.raises(InferenceServerException, match=words):
            bad()
    answer = request(good)
    assert int(answer.as_numpy("count")[0, 0]) > 0 and client.is_model_ready("spotrt")


def test_client_mistakes_are_one_line(server, videos, tmp_path, capsys):
    unused = free_ports(1)[0]
    cases = [
        (["--server", f"grpc://127.0.0.1:{unused}"], "not reachable"),
        (["--server", server.url, "--server-model", "nope"], "model nope is not ready"),
        (["--server", server.url, "--model", "x.onnx"], "found --model/--backend as well"),
        (["--server", server.url, "--in-flight", "0"], "--in-flight: found 0"),
        (["--server", f"http://127.0.0.1:{server.http}"], "expected grpc://host:port"),
    ]
    for args, words in cases:
        t0 = time.monotonic()
        assert main(["run", str(videos[0]), "--quiet", *args]) == 1, args
        assert words in one_error_line(capsys), args
        assert time.monotonic() - t0 < 15


def test_server_restart_drops_the_frames_in_flight_and_reconnects(exported_small, tmp_path, capsys):
    py = require_triton()
    video = write_video(tmp_path / "long.mp4", 40)
    srv = ServeProcess(exported_small[1]["plugin"], py, ["--max-batch", "2"], log_dir=tmp_path).start()
    out = tmp_path / "restart.jsonl"
    state = {}

    def kill_and_restart():  # once 8 records are out, the server goes the hard way and comes back 1 s later
        t0 = time.monotonic()
        while time.monotonic() - t0 < 60:
            if out.exists() and len(out.read_text().splitlines()) >= 8:
                srv.kill()
                state["killed_at"] = len(out.read_text().splitlines())
                time.sleep(1.0)
                srv.start()
                return
            time.sleep(0.02)

    chaos = threading.Thread(target=kill_and_restart, daemon=True)
    chaos.start()
    try:
        code = main(["run", str(video), str(video), "--server", srv.url, "--jsonl", str(out), "--min-score", "0",
                     "--in-flight", "4", "--server-timeout", "60", "--quiet"])
        chaos.join(90)
    finally:
        srv.stop()
    assert code == 0 and "killed_at" in state, state
    recs = records(out)
    assert sorted(recs) == [(s, i) for s in (0, 1) for i in range(40)]  # every frame accounted for
    dropped = [r["dropped"] for r in recs.values() if "dropped" in r]
    assert dropped and all(d.startswith("server: lost in flight (") for d in dropped)
    assert len(dropped) <= 2 * 4 + 2  # what was on its way (in flight per stream), not the rest of the files
    after = [k for k, r in recs.items() if "words" in r and k[1] > 20]
    assert after  # frames read again after the restart
    err = capsys.readouterr()
    assert "reconnected after" in err.err and "1 reconnects" in err.out
    assert f"dropped: {len(dropped)} " in err.out


# -- a stock model repository --------------------------------------------------------------------------------

def test_triton_repo_loads_in_the_bundled_tritonserver_and_reads_like_local(exported_small, videos, local_words,
                                                                            tmp_path, capsys):
    py = require_triton()
    repo = tmp_path / "repo"
    assert main(["export", "--model", str(exported_small[2]), "--out", str(tmp_path / "x"), "--input-size", "128x256",
                 "--graphs", "plugin", "--triton-repo", str(repo), "--max-batch", "4", "--instances", "1"]) == 0
    config = (repo / "spotrt" / "config.pbtxt").read_text()
    assert "max_batch_size: 4" in config and "max_queue_delay_microseconds: 2000" in config and "KIND_CPU" in config
    # A second model whose file is broken: its load fails with a reason, the server and the good model go on.
    broken = repo / "broken" / "1"
    broken.mkdir(parents=True)
    (broken / "model.py").write_text((repo / "spotrt" / "1" / "model.py").read_text())
    (broken / "model.onnx").write_bytes(b"not onnx")
    (repo / "broken" / "config.pbtxt").write_text(config.replace('name: "spotrt"', 'name: "broken"'))
    # A third model that loads but is not spotrt's (other input shapes): the client refuses it in one line.
    other = repo / "other" / "1"
    other.mkdir(parents=True)
    (other / "model.py").write_text((repo / "spotrt" / "1" / "model.py").read_text())
    (other / "model.onnx").write_bytes((repo / "spotrt" / "1" / "model.onnx").read_bytes())
    (repo / "other" / "config.pbtxt").write_text(config.replace('name: "spotrt"', 'name: "other"')
                                                 .replace("dims: [ -1, -1, 3 ]", "dims: [ -1, -1, 4 ]"))
    srv = BundledTritonServer(repo, py).start()
    try:
        out = tmp_path / "repo.jsonl"
        assert main(["run", *map(str, videos), "--server", srv.url, "--jsonl", str(out), "--min-score", "0",
                     "--quiet"]) == 0
        assert records(out) == local_words
        capsys.readouterr()
        assert main(["run", str(videos[0]), "--server", srv.url, "--server-model", "broken", "--quiet"]) == 1
        assert "model broken is not ready" in one_error_line(capsys)
        assert main(["run", str(videos[0]), "--server", srv.url, "--server-model", "other", "--quiet"]) == 1
        line = one_error_line(capsys)
        assert "model other: found inputs" in line and "expected spotrt's model" in line
        assert "spotrt: model" in srv.log() and "not an ONNX file" in srv.log()  # the load's one-line reason
    finally:
        srv.stop()
