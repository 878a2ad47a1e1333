"""`spotrt run` and `spotrt demo` end to end: counts match, and every fault ends as described
(one line and exit 1 before starting, or a clean stop with complete files)."""

import json
import signal
import subprocess
import sys
import time

import pytest
from runtime_helpers import count_video_frames, frame_image, require_gst, write_h264, write_video

from spotrt.cli import main


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    errors = [ln for ln in err if ln.startswith("spotrt: error:")]
    assert len(errors) == 1 and not any("Traceback" in ln for ln in err), err
    return errors[0]


def test_run_file_one_record_and_one_video_frame_per_frame(tmp_path, untrained_weights, capsys):
    video = write_video(tmp_path / "in.mp4", 6)
    jsonl, out = tmp_path / "out.jsonl", tmp_path / "out.mp4"
    code = main(["run", str(video), "--model", str(untrained_weights), "--jsonl", str(jsonl), "--output", str(out),
                 "--every", "2", "--quiet"])
    assert code == 0
    recs = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [r["frame"] for r in recs] == list(range(6))
    assert [r.get("dropped") for r in recs] == [None, "every"] * 3
    assert all(r["source"] == str(video) and r["stream"] == 0 for r in recs)
    assert count_video_frames(out) == 6
    text = capsys.readouterr().out
    assert "frames in: 6, processed: 3, dropped: 3 (every: 3)" in text and "overlap:" in text


def test_run_two_sources_write_two_videos(tmp_path, untrained_weights):
    a, b = write_video(tmp_path / "a.mp4", 3), write_video(tmp_path / "b.mp4", 2)
    jsonl = tmp_path / "o.jsonl"
    assert main(["run", str(a), str(b), "--model", str(untrained_weights), "--jsonl", str(jsonl),
                 "--output", str(tmp_path / "o.mp4"), "--quiet"]) == 0
    recs = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert sorted((r["stream"], r["frame"]) for r in recs) == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]
    assert count_video_frames(tmp_path / "o.0.mp4") == 3 and count_video_frames(tmp_path / "o.1.mp4") == 2


@pytest.mark.parametrize("source", ["rtsp://127.0.0.1:9/none", "/dev/video99"])
def test_a_source_that_never_opens(source, untrained_weights, capsys):
    assert main(["run", source, "--model", str(untrained_weights), "--quiet"]) == 1
    line = one_error_line(capsys)
    assert source in line and "cannot open" in line


def test_missing_file_fails_before_the_model_loads(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nope.mp4"), "--model", str(tmp_path / "no_model.safetensors")]) == 1
    assert "nope.mp4: no such file" in one_error_line(capsys)


@pytest.mark.parametrize("flag, name, words", [
    ("--jsonl", "a_file/out.jsonl", "cannot be written"),
    ("--output", "a_file/out.mp4", "cannot be written"),
    ("--output", "out.txt", "expected one of .mp4"),
])
def test_unwritable_output_fails_before_starting(tmp_path, flag, name, words, capsys):
    video = write_video(tmp_path / "in.mp4", 2)
    (tmp_path / "a_file").write_text("a file, not a folder")
    # The model does not exist either: the output is checked first, nothing is loaded or read.
    code = main(["run", str(video), flag, str(tmp_path / name), "--model", str(tmp_path / "none.safetensors")])
    assert code == 1
    line = one_error_line(capsys)
    assert name.split("/")[-1] in line and words in line


def test_display_without_a_desktop(tmp_path, untrained_weights, monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    video = write_video(tmp_path / "in.mp4", 2)
    assert main(["run", str(video), "--model", str(untrained_weights), "--display"]) == 1
    assert "--display" in one_error_line(capsys)


@pytest.mark.parametrize("backend", ["opencv", "gst"])
def test_corrupted_frame_and_truncated_file_in_the_output(tmp_path, untrained_weights, backend):
    """A file cut at two thirds: every frame it states is a record, the lost ones "truncated".
    OpenCV: an MJPEG AVI (its header states 12 frames); GStreamer: an H.264 MP4 with its index first
    (GStreamer's avidemux counts only the frames it finds in an AVI without its index)."""
    if backend == "opencv":
        path = write_video(tmp_path / "clip.avi", 12, "MJPG")
    else:
        require_gst("x264enc", "avdec_h264")
        path = write_h264(tmp_path / "clip.mp4", [frame_image(i) for i in range(12)])
    data = path.read_bytes()
    cut = tmp_path / f"cut{path.suffix}"
    cut.write_bytes(data[: len(data) * 2 // 3])
    jsonl, out = tmp_path / "o.jsonl", tmp_path / "o.mp4"
    assert main(["run", str(cut), "--model", str(untrained_weights), "--jsonl", str(jsonl), "--output", str(out),
                 "--every", "4", "--source-backend", backend, "--quiet"]) == 0
    recs = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [r["frame"] for r in recs] == list(range(12))
    assert recs[-1]["dropped"].startswith("truncated")
    assert count_video_frames(out) == 12  # unreadable frames are written black


def test_sigterm_mid_run_leaves_complete_files(tmp_path, untrained_weights):
    video = write_video(tmp_path / "long.mp4", 400)
    jsonl, out = tmp_path / "o.jsonl", tmp_path / "o.mp4"
    proc = subprocess.Popen([sys.executable, "-m", "spotrt.cli", "run", str(video), "--model", str(untrained_weights),
                             "--jsonl", str(jsonl), "--output", str(out), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and (not jsonl.exists() or jsonl.read_text().count("\n") < 3):
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert "stopped by SIGTERM" in stdout and "Traceback" not in stderr
    recs = [json.loads(line) for line in jsonl.read_text().splitlines()]  # every line parses
    assert 3 <= len(recs) < 400 and [r["frame"] for r in recs] == list(range(len(recs)))
    assert count_video_frames(out) == len(recs)  # the video was finalized


def test_demo_runs_on_the_pipeline(tmp_path, untrained_weights, capsys):
    out, jsonl = tmp_path / "d" / "demo.mp4", tmp_path / "d" / "demo.jsonl"
    assert main(["demo", "--model", str(untrained_weights), "--frames", "4", "--output", str(out),
                 "--jsonl", str(jsonl)]) == 0
    recs = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [r["frame"] for r in recs] == [0, 1, 2, 3] and all("words" in r for r in recs)
    assert count_video_frames(out) == 4
    text = capsys.readouterr().out
    assert "frame   0:" in text and "4 frames in" in text and str(out) in text
