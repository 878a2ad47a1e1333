"""`spotrt calibrate`: representative frames -> activation ranges (ONNX Runtime, CPU) -> a Q/DQ graph.

    calibrate("model.portable.onnx", "model.int8.onnx", images="frames/", method="entropy")

Ranges come from the graph's own tensors on ONNX Runtime: the tensors the Q/DQ nodes need are added
as graph outputs in memory, the frames run twice (absolute maxima, then 2048-bin histograms over
them), and the statistics go to a JSON cache (`--cache`, default `<out>.calib.json`) that later
runs reuse instead of running the frames again; the cache records the sha256 of the graph it was
measured on and is refused for another one. Methods: entropy (KL, TensorRT's), percentile (99.999),
minmax; the cache holds histograms, so every method can be computed from it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import SpotrtError
from ..fileio import write_bytes_atomic
from ..formats.digest import sha256_file
from ..formats.onnx_graph import KIND_READ, SPOTTING_KINDS, load_graph
from ..plugins.ort_session import cpu_session
from .frames import calibration_batches, check_batch, image_frames, video_frames
from .qdq import QuantNode, calibrated_tensors, insert_qdq, select_nodes
from .stats import DEFAULT_PERCENTILE, METHODS, TensorStats, amax_from_stats

CACHE_FORMAT = "spotrt-calib-1"
DEFAULT_FRAMES = 64


@dataclass
class CalibrationResult:
    out: Path
    cache: Path
    method: str
    frames: int            # frames measured (0 when the cache was reused)
    reused_cache: bool
    quantized: list[str]   # node names with Q/DQ
    amax: dict[str, float]
    read_out: Path | None = None  # the INT8 read graph written beside `out`, when the source had one


def load_cache(path: Path, sha: str, tensors: list[str]) -> dict[str, TensorStats]:
    """Statistics from a cache file; SpotrtError for one of another graph or without the tensors needed."""
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
        if d.get("format") != CACHE_FORMAT:
            raise ValueError(f"format {d.get('format')!r}")
        stats = {k: TensorStats.from_json(v) for k, v in d["tensors"].items()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SpotrtError(f"calibration cache {path}: unreadable ({exc}), expected a {CACHE_FORMAT} JSON file "
                          "written by spotrt calibrate") from None
    if d.get("model_sha256") != sha:
        raise SpotrtError(f"calibration cache {path}: found ranges of graph sha256 {str(d.get('model_sha256'))[:12]}, "
                          f"expected {sha[:12]} (this graph); delete the cache or pass another --cache")
    missing = [t for t in tensors if t not in stats]
    if missing:
        raise SpotrtError(f"calibration cache {path}: found no range for {len(missing)} tensors (e.g. {missing[0]}), "
                          "expected all the tensors this graph quantizes; delete the cache to recalibrate")
    return stats


def _collect(proto, path: Path, tensors: list[str], batches: list[np.ndarray], threads) -> dict[str, TensorStats]:
    import onnx

    inputs = {i.name for i in proto.graph.input}
    aug = onnx.ModelProto.FromString(proto.SerializeToString())
    present = {o.name for o in aug.graph.output}
    for t in tensors:
        if t not in inputs and t not in present:
            aug.graph.output.append(onnx.helper.make_tensor_value_info(t, onnx.TensorProto.FLOAT, None))
    session = cpu_session(aug, path, threads)
    in_name = session.get_inputs()[0].name
    fetch = [t for t in tensors if t not in inputs]
    stats = {t: TensorStats() for t in tensors}

    def run(x):
        vals = dict(zip(fetch, session.run(fetch, {in_name: x}))) if fetch else {}
        for t in tensors:
            yield t, (x if t in inputs else vals[t])

    for x in batches:
        for t, v in run(x):
            stats[t].update_absmax(v)
    for x in batches:
        for t, v in run(x):
            stats[t].update_hist(v)
    return stats


def calibrate(onnx_path, out, images=None, video=None, frames: int = DEFAULT_FRAMES, method: str = "percentile",
              cache=None, percentile: float | None = DEFAULT_PERCENTILE, threads: int | None = None,
              batches=None) -> CalibrationResult:
    """Write a Q/DQ (INT8) copy of an exported spotrt graph; see the module docstring.

    Frames come from `images` (a folder), `video` (a file) or `batches` (preprocessed arrays of the
    graph's input shape); none is needed when the cache exists. Returns what was done.
    """
    if percentile is None:
        percentile = DEFAULT_PERCENTILE
    if method not in METHODS:
        raise SpotrtError(f"calibration method {method!r}: not known, expected one of {', '.join(METHODS)}")
    if int(frames) < 1:
        raise SpotrtError(f"--frames {frames}: expected an integer >= 1")
    if images is not None and video is not None:
        raise SpotrtError("calibration frames: found both --images and --video, expected one of them")
    path = Path(onnx_path)
    proto, meta = load_graph(path, SPOTTING_KINDS)
    if "spotrt_quantization" in meta:
        raise SpotrtError(f"model {path}: is already quantized (Q/DQ), expected the float graph written by spotrt export")
    try:
        h, w = (int(v) for v in meta["spotrt_input_size"].split("x"))
        n = int(meta.get("spotrt_batch", "1"))
        mean, std = json.loads(meta["spotrt_mean"]), json.loads(meta["spotrt_std"])
    except (KeyError, ValueError) as exc:
        raise SpotrtError(f"model {path}: its spotrt metadata is invalid ({exc})") from None
    nodes = select_nodes(proto.graph)
    if not nodes:
        raise SpotrtError(f"model {path}: found no Conv/MatMul with constant weights to quantize, expected a spotrt graph")
    tensors = calibrated_tensors(nodes)
    sha = sha256_file(path)
    out = Path(out)
    cache = Path(cache) if cache else out.with_name(out.name + ".calib.json")
    reused = cache.is_file()
    measured = 0
    if reused:
        stats = load_cache(cache, sha, tensors)
    else:
        if batches is not None:
            data = [check_batch(b, (n, 3, h, w)) for b in batches]
            if not data:
                raise SpotrtError("calibration set: found no frames, expected at least one image or video frame")
        elif images is not None:
            data = calibration_batches(image_frames(images, frames), mean, std, (h, w), n)
        elif video is not None:
            data = calibration_batches(video_frames(video, frames), mean, std, (h, w), n)
        else:
            raise SpotrtError(f"calibration frames: found no --images or --video and no cache at {cache}, expected "
                              "representative frames")
        measured = sum(len(b) for b in data)
        stats = _collect(proto, path, tensors, data, threads)
        payload = {"format": CACHE_FORMAT, "model": path.name, "model_sha256": sha, "input_size": f"{h}x{w}",
                   "frames": measured, "tensors": {t: stats[t].to_json() for t in tensors}}
        write_bytes_atomic(cache, json.dumps(payload).encode("utf-8"))
    amax = {t: amax_from_stats(stats[t], method, percentile) for t in tensors}
    qmodel = insert_qdq(proto, amax, nodes)
    info = {"method": method, "percentile": percentile if method == "percentile" else None,
            "source_sha256": sha, "quantized": [q.name for q in nodes]}
    extra = {"spotrt_quantization": json.dumps(info)}
    read_out = _quantize_read_graph(path, meta, nodes, out, amax, info)
    if read_out is not None:  # the INT8 model reads crops in INT8 too
        extra["spotrt_read_graph"] = read_out.name
    _update_metadata(qmodel, extra)
    _check_and_write(qmodel, out)
    return CalibrationResult(out, cache, method, measured, reused, [q.name for q in nodes], amax, read_out)


def _update_metadata(model, extra: dict[str, str]) -> None:
    """Set `extra` in the model's metadata_props, keeping the other keys and their order."""
    props = {p.key: p.value for p in model.metadata_props}
    props.update(extra)
    del model.metadata_props[:]
    for k, v in props.items():
        model.metadata_props.add(key=k, value=v)


def _check_and_write(qmodel, out: Path) -> None:
    import onnx

    try:
        onnx.checker.check_model(qmodel)
    except onnx.checker.ValidationError as exc:  # a bug here, not a user error: keep the message
        raise RuntimeError(f"Q/DQ graph fails onnx.checker: {exc}") from exc
    write_bytes_atomic(out, qmodel.SerializeToString())


def _quantize_read_graph(path: Path, meta: dict, spot_nodes: list[QuantNode], out: Path, amax: dict[str, float],
                         info: dict) -> Path | None:
    """Quantize the read graph the source names (X.read.onnx) with the spotting graph's ranges.

    The read graph is the same backbone, FPN and region encoder as the spotting graph, exported from
    the same modules, so its quantized nodes and their tensors carry the same names: the ranges
    measured on full frames apply to them, as they do to the recognition branch inside an INT8
    engine. Returns the path written (`<out stem>.read.onnx`), or None when the source has no read
    graph beside it or one of its quantized nodes has no counterpart (then the INT8 model reads in
    float, as before)."""
    name = meta.get("spotrt_read_graph")
    src = path.with_name(name) if name else None
    if src is None or not src.is_file():
        return None
    proto, rmeta = load_graph(src)
    if rmeta.get("spotrt_graph") != KIND_READ or rmeta.get("spotrt_config") != meta.get("spotrt_config"):
        return None
    nodes = select_nodes(proto.graph)
    # by node name: the modules' nodes are named alike in both graphs, while the exporter numbers
    # anonymous tensors (/Mul_9_output_0) by their position in each graph
    spot = {q.name: q for q in spot_nodes}
    read_amax: dict[str, float] = {}
    for q in nodes:
        s = spot.get(q.name)
        if s is None or s.activation not in amax or bool(q.output) != bool(s.output):
            return None
        read_amax[q.activation] = amax[s.activation]
        if q.output:
            read_amax[q.output] = amax[s.output]
    if not nodes:
        return None
    qmodel = insert_qdq(proto, read_amax, nodes)
    _update_metadata(qmodel, {"spotrt_quantization": json.dumps({**info, "quantized": [q.name for q in nodes],
                                                                  "ranges_from": path.name})})
    stem = out.name[: -len(".onnx")] if out.name.endswith(".onnx") else out.name
    read_out = out.with_name(stem + ".read.onnx")
    _check_and_write(qmodel, read_out)
    return read_out
