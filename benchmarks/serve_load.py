"""Load test of serving: 1..N streams of the sign video against `spotrt serve` (a real tritonserver
through PyTriton, on 127.0.0.1), for several max-batch / queue-delay settings, and the same streams
on the local pipeline in the same run.

    nice -n 19 .venv/bin/python benchmarks/serve_load.py --streams 1,2,4 --settings 1:0,4:2000 --frames 40

For each setting a server starts (`--instances` model instances of the exported graph); each row
runs `spotrt run`'s pipeline (run_stream) over N copies of the video's first `--frames` frames with
`--server`, then locally. It reports frames/s (frames read / wall time), the capture-to-result
latency p50/p99, every frame accounted for (sent = answered + dropped, each drop with its reason)
and the server's resident memory (all its processes) after a warm-up at the most streams and after
each row of each setting. Bounded: `--frames` per stream, and each request times out after 60 s.
The server runs with the Python that has PyTriton (tests/triton_helpers.py: $SPOTRT_SERVE_PYTHON,
this one, or .venv-serve/bin/python); the client is this Python and needs tritonclient.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from triton_helpers import ServeProcess, group_rss_by_name, model_metrics, serve_python  # noqa: E402

from spotrt.api import load_spotter  # noqa: E402
from spotrt.runtime.stream import run_stream  # noqa: E402
from spotrt.runtime.triton_backend import TritonSpotter  # noqa: E402

SIGN = ROOT.parent / "shared" / "data" / "video" / "sign_bw_960x506.mp4"


def export_shipped(size: str, out: Path) -> Path:
    from spotrt.export.onnx_export import export_model
    from spotrt.options import parse_size

    return export_model(None, out, input_size=parse_size(size), batch=1, kinds=("plugin",))["plugin"]


def one_run(sources, spotter, frames: int, scale: float) -> dict:
    s = run_stream(sources, spotter=spotter, max_frames=frames, quiet=True, print_summary=False, scale=scale,
                   min_score=None)
    return {"frames_in": s["frames_in"], "processed": s["processed"], "dropped": s["dropped"],
            "fps": s["frames_in"] / s["wall_s"], "p50": s["latency_ms"]["p50"], "p99": s["latency_ms"]["p99"],
            "wall_s": s["wall_s"]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="exported .onnx (default: the shipped model exported at --input-size)")
    p.add_argument("--input-size", default="256x512", help="when exporting the shipped model (default 256x512)")
    p.add_argument("--video", default=str(SIGN))
    p.add_argument("--scale", type=float, default=0.4, help="as spotrt run --scale (default 0.4: the sign's letters)")
    p.add_argument("--streams", default="1,2,4", help="concurrent streams, a list (default 1,2,4)")
    p.add_argument("--settings", default="1:0,4:2000", help="max_batch:queue_delay_us, a list (default 1:0,4:2000)")
    p.add_argument("--instances", type=int, default=1, help="model instances on the server (default 1)")
    p.add_argument("--in-flight", type=int, default=4, help="requests on their way per stream (default 4)")
    p.add_argument("--frames", type=int, default=40, help="frames per stream (default 40)")
    p.add_argument("--warmup", type=int, default=8, help="frames per stream of the warm-up at the most streams (default 8)")
    p.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads, server and local (default 1)")
    p.add_argument("--soak-rounds", type=int, default=0, metavar="R",
                   help="then R rounds of the most streams on the last setting's server, its memory by process after "
                        "each (default 0)")
    p.add_argument("--json", default=None, help="write every number here")
    a = p.parse_args()
    py, why = serve_python()
    if py is None:
        print(f"serve_load: no Python with PyTriton ({why}); make serve-venv", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="serve_load_"))
    model = Path(a.model) if a.model else export_shipped(a.input_size, work / "export")
    streams = [int(n) for n in a.streams.split(",")]
    settings = [tuple(int(v) for v in s.split(":")) for s in a.settings.split(",")]
    local = load_spotter(model, "onnxruntime", threads=a.threads)
    rows, soak = [], []
    for max_batch, delay in settings:
        srv = ServeProcess(model, py, ["--max-batch", str(max_batch), "--queue-delay-us", str(delay),
                                       "--instances", str(a.instances), "--threads", str(a.threads)],
                           log_dir=work / f"server_{max_batch}_{delay}").start()
        try:
            # Warm-up at the most streams: the first requests load lazily, and the server's buffers
            # (Python backend shared memory, pinned pools) grow to the largest batches once.
            client = TritonSpotter(srv.url, timeout=60, in_flight=a.in_flight)
            one_run([a.video] * max(streams), client, a.warmup, a.scale)
            client.close()
            rss0 = srv.rss_kib()
            for n in streams:
                client = TritonSpotter(srv.url, timeout=60, in_flight=a.in_flight)
                m0 = model_metrics(srv.metrics)
                remote = one_run([a.video] * n, client, a.frames, a.scale)
                m1 = model_metrics(srv.metrics)
                ad = client.adapter
                runs = m1["nv_inference_exec_count"] - m0["nv_inference_exec_count"]
                remote.update(sent=ad.sent, answered=ad.answered, lost=dict(ad.lost), rss_kib=srv.rss_kib(),
                              mean_batch=(m1["nv_inference_count"] - m0["nv_inference_count"]) / max(runs, 1))
                client.close()
                here = one_run([a.video] * n, local, a.frames, a.scale)
                row = {"max_batch": max_batch, "queue_delay_us": delay, "streams": n, "server": remote, "local": here,
                       "rss_start_kib": rss0}
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
            if (max_batch, delay) == settings[-1]:
                for i in range(a.soak_rounds):  # memory over a longer run: same load again and again
                    client = TritonSpotter(srv.url, timeout=60, in_flight=a.in_flight)
                    r = one_run([a.video] * max(streams), client, a.frames, a.scale)
                    ad = client.adapter
                    client.close()
                    soak.append({"round": i, "frames_in": r["frames_in"], "processed": r["processed"],
                                 "sent": ad.sent, "answered": ad.answered,
                                 "rss_mib": {k: v // 1024 for k, v in group_rss_by_name(srv.proc.pid).items()}})
                    print(json.dumps(soak[-1]), file=sys.stderr, flush=True)
        finally:
            srv.stop()
    print(f"model {model} ({a.input_size if not a.model else 'given'}), video {Path(a.video).name} x streams, "
          f"{a.frames} frames each, --scale {a.scale}, {a.instances} instance(s), {a.in_flight} in flight per stream, "
          f"ONNX Runtime {a.threads} thread(s)\n")
    print("| max batch | queue delay us | streams | server frames/s | mean batch | p50 ms | p99 ms | sent | answered | "
          "lost | local frames/s | local p50 ms | local p99 ms | server RSS MiB start -> end |")
    print("| " + " | ".join(["---"] * 14) + " |")
    for r in rows:
        s, lo = r["server"], r["local"]
        lost = sum(s["dropped"].values())
        print(f"| {r['max_batch']} | {r['queue_delay_us']} | {r['streams']} | {s['fps']:.1f} | {s['mean_batch']:.2f} | "
              f"{s['p50']:.0f} | "
              f"{s['p99']:.0f} | {s['sent']} | {s['answered']} | {lost} | {lo['fps']:.1f} | {lo['p50']:.0f} | "
              f"{lo['p99']:.0f} | {r['rss_start_kib'] / 1024:.0f} -> {s['rss_kib'] / 1024:.0f} |")
    if soak:
        names = sorted(soak[0]["rss_mib"])
        print(f"\nmemory over {len(soak)} rounds of {max(streams)} streams x {a.frames} frames (max batch "
              f"{settings[-1][0]}, queue delay {settings[-1][1]} us), server processes' RSS in MiB after each round:\n")
        print("| round | frames sent | answered | " + " | ".join(names) + " | total |")
        print("| " + " | ".join(["---"] * (len(names) + 4)) + " |")
        for r in soak:
            print(f"| {r['round'] + 1} | {r['sent']} | {r['answered']} | "
                  + " | ".join(str(r["rss_mib"].get(n, 0)) for n in names) + f" | {sum(r['rss_mib'].values())} |")
    bad = [r for r in rows if r["server"]["sent"] != r["server"]["answered"] + sum(r["server"]["lost"].values())
           or r["server"]["frames_in"] != r["server"]["processed"] + sum(r["server"]["dropped"].values())]
    bad += [r for r in soak if r["sent"] != r["answered"] or r["frames_in"] != r["processed"]]
    if a.json:
        Path(a.json).write_text(json.dumps({"rows": rows, "soak": soak}, indent=2) + "\n")
    if bad:
        print(f"serve_load: {len(bad)} rows where frames are not all accounted for", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
