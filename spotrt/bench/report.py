"""The bench result as a Markdown table, JSON and a PNG plot; SCHEMA documents every JSON field."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import SpotrtError
from ..fileio import write_bytes_atomic

SUMMARY = {"n": "samples", "mean_ms": "mean", "median_ms": "median", "p90_ms": "90th percentile",
           "p99_ms": "99th percentile", "min_ms": "fastest", "max_ms": "slowest"}


def _summary(path: str, what: str) -> dict[str, str]:
    out = {path: f"latency summary of {what} (ms; wall clock, one sync per sample)"}
    out.update({f"{path}.{k}": f"{v} of {what}" + ("" if k == "n" else " (ms)") for k, v in SUMMARY.items()})
    return out


def _comparison(name: str, what: str, fields: dict[str, str]) -> dict[str, str]:
    """Fields of one comparison; a name ending in '!' is a latency summary."""
    p = f"comparisons.{name}"
    out = {p: what, f"{p}.status": "'measured', or 'skipped' (then only `reason` follows)",
           f"{p}.reason": "why it was skipped (only when skipped)"}
    for k, v in fields.items():
        out.update(_summary(f"{p}.{k[:-1]}", v) if k.endswith("!") else {f"{p}.{k}": v})
    return out


# Dotted paths: `[]` is every item of a list, `*` every key of a map. Every field of the JSON is here.
SCHEMA: dict[str, str] = {
    "format": "'spotrt-bench-1'",
    "created": "local time the run ended (ISO 8601)",
    "environment": "the machine and libraries",
    "environment.platform": "OS (platform.platform())",
    "environment.python": "Python version",
    "environment.cpu": "CPU model name",
    "environment.cpu_count": "logical CPUs",
    "environment.load_average_1m": "1-minute load average when the run ended (other work on the machine)",
    "environment.torch": "torch version (null: not installed, a runtime install)",
    "environment.torch_threads": "torch intra-op threads (null without torch)",
    "environment.onnxruntime": "onnxruntime version, null when absent",
    "environment.tensorrt": "tensorrt version, null when absent",
    "environment.gpu": "CUDA device name, null without one",
    "settings": "the options of the run",
    "settings.model": "weights file",
    "settings.model_sha256": "its sha256",
    "settings.backend": "torch, onnxruntime or tensorrt",
    "settings.precisions": "precisions swept",
    "settings.input_sizes": "input sizes swept, [H, W]",
    "settings.batches": "batch sizes swept",
    "settings.prep_threads": "preprocessing threads (each its own source of frames) feeding the pipelined loop",
    "settings.warmup": "untimed runs before each measurement",
    "settings.iterations": "timed runs per measurement (null with duration_s)",
    "settings.duration_s": "seconds per measurement (null with iterations)",
    "settings.frames": "distinct frames cycled through (also the INT8 calibration frames)",
    "settings.frame_source": "where the frames come from",
    "settings.device": "torch device",
    "settings.threads": "torch / ONNX Runtime threads asked for (null: their defaults)",
    "runs": "one entry per sweep point (input size x batch x precision)",
    "runs[].backend": "backend",
    "runs[].precision": "fp32, fp16 or int8",
    "runs[].input_size": "network input [H, W]",
    "runs[].batch": "frames per network call",
    "runs[].prep_threads": "preprocessing threads of the pipelined loop",
    "runs[].device": "where the network ran (cpu, cuda)",
    "runs[].stages": "per-stage latency of a batch, each stage synced at its end: torch: preprocess, "
                     "backbone+proposals, roi_pooling, encoder+detection, decoder, postprocess; graphs: "
                     "preprocess, network, postprocess",
    **_summary("runs[].stages.*", "the stage, per batch"),
    **_summary("runs[].end_to_end", "frames in -> words out per batch, one sync at the end"),
    "runs[].end_to_end.frames_per_s": "batch / median: frames/s of one frame after another",
    "runs[].throughput": "frames/s with preprocess, network and postprocess overlapped in threads",
    "runs[].throughput.frames": "frames through the pipelined loop",
    "runs[].throughput.seconds": "its wall time",
    "runs[].throughput.frames_per_s": "frames / seconds",
    "runs[].throughput.speedup_over_serial": "throughput / end_to_end.frames_per_s",
    **_summary("runs[].throughput.latency", "capture -> words of one frame in the pipelined loop, from the start "
               "of its preprocessing to the end of its postprocessing (sources always ready: includes its queue wait)"),
    "runs[].memory": "memory over the measurement",
    "runs[].memory.peak_rss_mib": "peak host resident set size (MiB)",
    "runs[].memory.peak_rss_scope": "'measurement' (peak reset before it) or 'process' (since start)",
    "runs[].memory.device_peak_mib": "torch's peak CUDA allocation (MiB); null on CPU and for graph backends",
    "runs[].cost": "work per frame, counted on the torch model at this input size (null values and no stages for a "
                  "graph measured as it is: bench --model X.onnx, or no torch)",
    "runs[].cost.flops_per_frame": "floating-point operations (2 per multiply-add) per frame",
    "runs[].cost.bytes_per_frame": "tensor bytes read and written per frame by eager ops (unfused: upper bound)",
    "runs[].cost.bytes_fused_per_frame": "the same without pointwise and batch-norm ops (fused into their "
                                         "producer by TensorRT): the bytes the Jetson estimates use",
    "runs[].cost.stages": "the same per torch stage",
    "runs[].cost.stages.*": "one stage",
    "runs[].cost.stages.*.flops": "its FLOPs per frame",
    "runs[].cost.stages.*.bytes": "its bytes per frame",
    "runs[].cost.stages.*.bytes_fused": "its fused bytes per frame",
    "runs[].cost.counted_on": "the torch device the cost was counted on (null: not counted)",
    "runs[].peak_fraction": "flops_per_frame x throughput / device peak; null where the peak is unknown (CPUs)",
    "runs[].peak_fraction_note": "which peak, or why none",
    "runs[].words_per_frame": "mean words spotted per frame in the end-to-end runs",
    "comparisons": "side-by-side measurements, interleaved in one run (empty with --no-compare)",
    **_comparison("single_vs_two_stage", "shared-feature single pass vs detect + crop + features per crop + "
                  "recognize, torch, batch 1, same weights and frames", {
                      "input_size": "network input [H, W]", "device": "torch device",
                      "single_pass!": "the single pass per frame", "two_stage!": "the two-stage way per frame",
                      "two_stage_over_single_pass": "median ratio (> 1: the single pass is faster)",
                      "words_per_frame": "mean words per frame of each",
                      "words_per_frame.single_pass": "single pass", "words_per_frame.two_stage": "two stages",
                      "flops_per_frame": "FLOPs per frame of each (first frame)",
                      "flops_per_frame.single_pass": "single pass", "flops_per_frame.two_stage": "two stages",
                      "flops_two_stage_over_single_pass": "FLOPs ratio"}),
    **_comparison("cpu_precisions", "PyTorch eager vs ONNX Runtime FP32 vs INT8 (Q/DQ) on the CPU, network only, "
                  "batch 1, same inputs", {
                      "input_size": "network input [H, W]", "batch": "1", "graph": "exported graph kind (portable)",
                      "threads": "ONNX Runtime threads",
                      "onnxruntime_spinning": "false: both sessions' idle threads sleep instead of busy-waiting "
                                              "(a spinning session would take the cores from the next one's run)",
                      "torch_eager!": "Spotter.forward",
                      "onnxruntime_fp32!": "the float graph", "onnxruntime_int8!": "its Q/DQ copy",
                      "torch_eager_over_onnxruntime_fp32": "median ratio (> 1: ONNX Runtime FP32 is faster)",
                      "onnxruntime_fp32_over_onnxruntime_int8": "median ratio (> 1: INT8 is faster)",
                      "torch_eager_over_onnxruntime_int8": "median ratio (> 1: INT8 is faster)",
                      "int8_same_words_pct": "frames where INT8 spots the same words as FP32 (%)"}),
    **_comparison("gpu_kernels", "plugin CUDA kernels vs their PyTorch equivalents on the GPU", {
        "device": "GPU name", "input_size": "network input [H, W]",
        "var_roi_pool_kernel!": "VarRoIPool kernel", "var_roi_pool_torch!": "spotrt.model.roi_pool.var_roi_pool",
        "attn_decoder_kernel!": "AttnDecoder kernel", "attn_decoder_torch!": "AttentionDecoder.greedy",
        "pipeline_kernels!": "frames -> words with both kernels", "pipeline_torch!": "frames -> words in PyTorch",
        "var_roi_pool_torch_over_var_roi_pool_kernel": "median ratio (> 1: the kernel is faster)",
        "attn_decoder_torch_over_attn_decoder_kernel": "median ratio (> 1: the kernel is faster)",
        "pipeline_torch_over_pipeline_kernels": "median ratio (> 1: the kernels are faster)",
        "max_abs_diff_pooled": "largest |kernel - torch| of the pooled features",
        "tokens_equal_pct": "regions whose decoded tokens are equal (%)"}),
    **_comparison("tensorrt_precisions", "TensorRT FP32 vs FP16 vs INT8 engines, network only, batch 1", {
        "input_size": "network input [H, W]", "batch": "1", "tensorrt_fp32!": "FP32 engine",
        "tensorrt_fp16!": "FP16 engine", "tensorrt_int8!": "INT8 engine (Q/DQ)",
        "tensorrt_fp32_over_tensorrt_fp16": "median ratio", "tensorrt_fp32_over_tensorrt_int8": "median ratio"}),
    "jetson_estimates": "ESTIMATED network frames/s on Jetson Orin modules (roofline; see spotrt/bench/jetson.py)",
    "jetson_estimates.estimate": "always true: computed, not measured",
    "jetson_estimates.efficiency": "assumed fraction of peak compute and bandwidth",
    "jetson_estimates.model": "the formula",
    "jetson_estimates.devices": "published peaks used",
    "jetson_estimates.devices[].name": "module",
    "jetson_estimates.devices[].int8_tops": "dense INT8 TOPS (GPU)",
    "jetson_estimates.devices[].fp16_tflops": "dense FP16 TFLOPS (GPU tensor cores)",
    "jetson_estimates.devices[].fp32_tflops": "FP32 TFLOPS (CUDA cores)",
    "jetson_estimates.devices[].bandwidth_gbs": "memory bandwidth GB/s",
    "jetson_estimates.devices[].source": "where the numbers come from",
    "jetson_estimates.rows": "one per device x precision x input size",
    "jetson_estimates.rows[].device": "module",
    "jetson_estimates.rows[].precision": "fp16 or int8 (RoI pooling and decoder stay fp32)",
    "jetson_estimates.rows[].input_size": "network input [H, W]",
    "jetson_estimates.rows[].ms_per_frame": "estimated network time per frame (ms)",
    "jetson_estimates.rows[].frames_per_s": "its inverse",
    "jetson_estimates.rows[].bound": "per stage: 'compute' or 'memory', whichever bounds it",
    "jetson_estimates.rows[].bound.*": "one stage",
}
MAPS = {k[:-2] for k in SCHEMA if k.endswith(".*")}


def _parent(path: str) -> str:
    return path.rsplit(".", 1)[0] if "." in path else ""


def _join(parent: str, key: str) -> str:
    return f"{parent}.{key}" if parent else key


def check_fields(result: dict) -> tuple[list[str], list[str]]:
    """(documented fields missing from `result`, fields of `result` SCHEMA does not document).

    Every dict is checked on its own (each run, each stage, each row); a skipped comparison needs
    only status and reason, a measured one everything but reason; no comparison is needed when
    none ran (--no-compare).
    """
    missing: set[str] = set()
    undocumented: set[str] = set()

    def check(obj, path: str) -> None:
        if isinstance(obj, list):
            for item in obj:
                if isinstance(item, dict):
                    check(item, f"{path}[]")
            return
        if not isinstance(obj, dict) or (path == "comparisons" and not obj):  # empty: --no-compare
            return
        if path in MAPS:
            for v in obj.values():
                check(v, f"{path}.*")
            return
        expected = {k.rsplit(".", 1)[-1] for k in SCHEMA if _parent(k) == path and k != path}
        if path.startswith("comparisons.") and path.count(".") == 1:
            expected = {"status", "reason"} if obj.get("status") == "skipped" else expected - {"reason"}
        missing.update(_join(path, k) for k in expected - set(obj))
        for k, v in obj.items():
            child = _join(path, str(k))
            if child in SCHEMA:
                check(v, child)
            else:
                undocumented.add(child)

    check(result, "")
    return sorted(missing), sorted(undocumented)


# --- Markdown ------------------------------------------------------------------------------------


def _ms(v) -> str:
    return "-" if v is None else f"{v:.1f}" if v < 100 else f"{v:.0f}"


def _mpp(s: dict | None) -> str:
    return "-" if not s else f"{_ms(s['median_ms'])} / {_ms(s['p90_ms'])} / {_ms(s['p99_ms'])}"


def _point(r: dict) -> str:
    return f"| {r['backend']} | {r['precision']} | {r['input_size'][0]}x{r['input_size'][1]} | {r['batch']} "


def format_markdown(result: dict) -> str:
    env, st = result["environment"], result["settings"]
    budget = f"{st['iterations']} iterations" if st["iterations"] else f"{st['duration_s']} s"
    torch_threads = "no torch" if env["torch"] is None else f"{env['torch_threads']} torch threads"
    lines = [f"spotrt bench: {st['backend']} on {st['device']} ({env['cpu']}, {env['cpu_count']} CPUs, "
             f"{torch_threads}, load {env['load_average_1m']:.1f}"
             + (f", GPU {env['gpu']}" if env["gpu"] else "") + f"); model {Path(st['model']).name} "
             f"(sha256 {st['model_sha256'][:12]}); {st['frames']} frames: {st['frame_source']}; "
             f"{budget} per measurement after {st['warmup']} warm-up", ""]
    runs = result["runs"]
    names: list[str] = []
    for r in runs:
        names += [s for s in r["stages"] if s not in names]
    lines += ["Latency per stage, ms per batch (median / p90 / p99):", "",
              "| backend | precision | input | batch | " + " | ".join(names) + " |",
              "|" + "---|" * (4 + len(names))]
    lines += [_point(r) + "| " + " | ".join(_mpp(r["stages"].get(s)) for s in names) + " |" for r in runs]
    lines += ["", "End to end (one sync per batch) and throughput (stages overlapped in threads):", "",
              "| backend | precision | input | batch | prep threads | end-to-end ms (median / p90 / p99) | frames/s serial "
              "| frames/s pipelined | pipelined / serial | pipelined latency ms (p50 / p99) | GFLOP/frame "
              "| MB/frame (fused) | peak RSS MiB | device MiB | % of peak | words/frame |", "|" + "---|" * 16]
    for r in runs:
        e, t, m, c = r["end_to_end"], r["throughput"], r["memory"], r["cost"]
        counted = c["flops_per_frame"] is not None
        mb = f"{c['bytes_per_frame'] / 1e6:.0f} ({c['bytes_fused_per_frame'] / 1e6:.0f})" if counted else "-"
        gflop = f"{c['flops_per_frame'] / 1e9:.2f}" if counted else "-"
        frac = "unknown" if r["peak_fraction"] is None else f"{100 * r['peak_fraction']:.2f}"
        dev = "-" if m["device_peak_mib"] is None else f"{m['device_peak_mib']:.0f}"
        lines.append(_point(r) + f"| {r['prep_threads']} | {_mpp(e)} | {e['frames_per_s']:.2f} | {t['frames_per_s']:.2f} "
                     f"| {t['speedup_over_serial']:.2f}x | {_ms(t['latency']['median_ms'])} / "
                     f"{_ms(t['latency']['p99_ms'])} | {gflop} | "
                     f"{mb} | {m['peak_rss_mib']:.0f} | {dev} | {frac} | "
                     f"{r['words_per_frame']:.1f} |")
    comp = result.get("comparisons") or {}
    if comp:
        lines += ["", "Comparisons (interleaved in one run, same frames; ratio = A / B, > 1: B is faster):", "",
                  "| comparison | A: median ms | B: median ms | A / B |", "|---|---|---|---|"]
        skipped = []
        for name, c in comp.items():
            if c["status"] != "measured":
                skipped.append(f"- {name}: skipped: {c['reason']}")
                continue
            for label, a, b, extra in _comparison_rows(name, c):
                lines.append(f"| {label} | {_ms(c[a]['median_ms'])} | {_ms(c[b]['median_ms'])} | "
                             f"{c[f'{a}_over_{b}']:.2f}x{extra} |")
        lines += [""] + skipped if skipped else []
    je = result.get("jetson_estimates") or {}
    if je.get("rows"):
        lines += ["", f"Jetson ESTIMATES (not measured): network only, roofline on the FLOPs and bytes above at "
                      f"{je['efficiency']:.0%} of the published peaks (spotrt/bench/jetson.py):", "",
                  "| device | precision | input | est. ms/frame | est. frames/s | memory-bound stages |", "|---|---|---|---|---|---|"]
        for row in je["rows"]:
            mem = ", ".join(k for k, v in row["bound"].items() if v == "memory") or "none"
            lines.append(f"| {row['device']} | {row['precision']} | {row['input_size'][0]}x{row['input_size'][1]} | "
                         f"{row['ms_per_frame']:.2f} | {row['frames_per_s']:.0f} | {mem} |")
    return "\n".join(lines)


def _comparison_rows(name: str, c: dict):
    size = "x".join(str(v) for v in c.get("input_size", []))
    if name == "single_vs_two_stage":
        w = c["words_per_frame"]
        yield (f"two-stage (A) vs single pass (B), torch {c['device']}, {size}", "two_stage", "single_pass",
               f" (FLOPs {c['flops_two_stage_over_single_pass']:.2f}x; words/frame {w['two_stage']:.1f} vs "
               f"{w['single_pass']:.1f})")
    elif name == "cpu_precisions":
        yield f"ONNX Runtime FP32 (A) vs INT8 (B), CPU, {size}", "onnxruntime_fp32", "onnxruntime_int8", \
            f" (same words on {c['int8_same_words_pct']:.0f} % of frames)"
        yield f"PyTorch eager (A) vs ONNX Runtime FP32 (B), CPU, {size}", "torch_eager", "onnxruntime_fp32", ""
        yield f"PyTorch eager (A) vs ONNX Runtime INT8 (B), CPU, {size}", "torch_eager", "onnxruntime_int8", ""
    elif name == "gpu_kernels":
        yield f"VarRoIPool: PyTorch (A) vs kernel (B), {c['device']}", "var_roi_pool_torch", "var_roi_pool_kernel", ""
        yield f"AttnDecoder: PyTorch (A) vs kernel (B), {c['device']}", "attn_decoder_torch", "attn_decoder_kernel", ""
        yield (f"pipeline: PyTorch (A) vs with kernels (B), {c['device']}, {size}", "pipeline_torch",
               "pipeline_kernels", f" (tokens equal {c['tokens_equal_pct']:.0f} %)")
    elif name == "tensorrt_precisions":
        yield f"TensorRT FP32 (A) vs FP16 (B), {size}", "tensorrt_fp32", "tensorrt_fp16", ""
        yield f"TensorRT FP32 (A) vs INT8 (B), {size}", "tensorrt_fp32", "tensorrt_int8", ""


# --- PNG -----------------------------------------------------------------------------------------

COLORS = [(180, 119, 31), (14, 127, 255), (44, 160, 44), (40, 39, 214), (189, 103, 148), (75, 86, 140),
          (194, 119, 227), (127, 127, 127)]  # BGR


def render_plot(result: dict) -> np.ndarray:
    """A BGR image: per-stage latency per frame of every run (stacked bars), and each comparison."""
    import cv2

    bars = []  # (label, [(stage, ms per frame)], right-hand text)
    for r in result["runs"]:
        b, e = r["batch"], r["end_to_end"]
        bars.append((f"{r['backend']} {r['precision']} {r['input_size'][0]}x{r['input_size'][1]} b{b}",
                     [(s, v["median_ms"] / b) for s, v in r["stages"].items()],
                     f"{e['median_ms'] / b:.1f} ms, {e['frames_per_s']:.1f} / {r['throughput']['frames_per_s']:.1f} fps"))
    pairs = [(label, (a, c[a]["median_ms"]), (b, c[b]["median_ms"]), c[f"{a}_over_{b}"])
             for name, c in (result.get("comparisons") or {}).items() if c["status"] == "measured"
             for label, a, b, _ in _comparison_rows(name, c)]
    stages: list[str] = []
    for _, segs, _ in bars:
        stages += [s for s, _ in segs if s not in stages]
    width, left, right, row = 1200, 250, 250, 30
    span = width - left - right
    height = 110 + row * len(bars) + (50 + 3 * row * len(pairs) if pairs else 0)
    img = np.full((height, width, 3), 255, np.uint8)

    def text(s, x, y, scale=0.45, color=(30, 30, 30)):
        cv2.putText(img, s, (int(x), int(y)), cv2.FONT_HERSHEY_SIMPLEX, scale, color, 1, cv2.LINE_AA)

    text("spotrt bench: median latency per frame by stage (ms); right: end to end, frames/s serial / pipelined",
         10, 24, 0.55)
    x = 10
    for i, s in enumerate(stages):
        cv2.rectangle(img, (x, 38), (x + 14, 52), COLORS[i % len(COLORS)], -1)
        text(s, x + 18, 50)
        x += 30 + 8 * len(s)
    top = 66
    scale = span / max([sum(v for _, v in segs) for _, segs, _ in bars] + [1e-9])
    for k, (label, segs, note) in enumerate(bars):
        y = top + k * row
        text(label, 10, y + 19)
        x = left
        for s, v in segs:
            w = max(1, int(round(v * scale)))
            cv2.rectangle(img, (x, y + 5), (x + w, y + row - 5), COLORS[stages.index(s) % len(COLORS)], -1)
            x += w
        text(note, left + span + 12, y + 19)
    y = top + len(bars) * row + 8
    _axis(img, left, span, y, 1 / scale, text)
    if pairs:
        y += 50
        text("comparisons, interleaved in one run: median ms of A and B; right: A / B (> 1: B is faster)", 10, y, 0.55)
        longest = max(max(a[1], b[1]) for _, a, b, _ in pairs)
        for label, a, b, ratio in pairs:
            text(label, 10, y + row - 6)
            for j, (name, v) in enumerate((a, b)):
                yy = y + (j + 1) * row
                w = max(1, int(round(v / longest * (span - 90))))  # room for the value after the bar
                text(f"{'AB'[j]}: {name}", 24, yy + 19, 0.42, (80, 80, 80))
                cv2.rectangle(img, (left, yy + 5), (left + w, yy + row - 5), COLORS[j], -1)
                text(f"{v:.1f} ms", left + w + 6, yy + 19)
            text(f"{ratio:.2f}x", left + span + 12, y + 2 * row, 0.6)
            y += 3 * row
    return img


def _axis(img, left: int, span: int, y: int, ms_per_px: float, text) -> None:
    import cv2

    total = span * ms_per_px
    step = 10 ** np.floor(np.log10(total / 5)) if total > 0 else 1
    step *= next(m for m in (1, 2, 5, 10) if total / (step * m) <= 6)
    cv2.line(img, (left, y), (left + span, y), (90, 90, 90), 1)
    v = 0.0
    while v <= total + 1e-9:
        x = left + int(round(v / ms_per_px))
        cv2.line(img, (x, y), (x, y + 5), (90, 90, 90), 1)
        text(f"{v:g}", x - 8, y + 18, 0.4)
        v += step


def check_output(path, what: str, suffix: str) -> Path:
    """An output path with the right suffix in a folder that exists (checked before the run)."""
    p = Path(path)
    if p.suffix.lower() != suffix:
        raise SpotrtError(f"{what} {p}: found suffix {p.suffix or 'none'!r}, expected a {suffix} file")
    if p.is_dir():
        raise SpotrtError(f"{what} {p}: is a folder, expected a {suffix} file path")
    if not (p.parent if str(p.parent) else Path(".")).is_dir():
        raise SpotrtError(f"{what} {p}: folder {p.parent} does not exist, expected an existing folder")
    return p


def write_outputs(result: dict, json_path=None, plot_path=None) -> None:
    """Write the JSON and the PNG (each whole or not at all)."""
    if json_path:
        write_bytes_atomic(json_path, (json.dumps(result, indent=2) + "\n").encode("utf-8"), "--json")
    if plot_path:
        import cv2

        ok, png = cv2.imencode(".png", render_plot(result))
        if not ok:
            raise RuntimeError("cv2.imencode('.png') failed")
        write_bytes_atomic(plot_path, png.tobytes(), "--plot")
