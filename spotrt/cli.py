"""`spotrt` command line: thin over the API; user errors end in one line and exit code 1."""

from __future__ import annotations

import argparse
import json
import sys

from . import __version__
from .errors import SpotrtError
from .fileio import write_bytes_atomic
from .train.config import TrainConfig


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None,
                   help="weights file (.safetensors), exported graph (.onnx) or TensorRT engine (.engine); "
                        "default: the shipped model")
    p.add_argument("--backend", default="auto", choices=["auto", "torch", "onnxruntime", "tensorrt"],
                   help="inference backend (default: auto = tensorrt for an .engine, onnxruntime for an .onnx "
                        "model, else torch)")
    p.add_argument("--device", default="cpu", help="torch device: cpu or cuda (default: cpu)")


def _scale_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scale", type=float, default=1.0, metavar="S",
                   help="resize images by S before the network; boxes stay in the image's pixels (default 1.0; "
                        "the anchors reach about 70 px of text height, and a model with coarse passes (the shipped one: "
                        "half and quarter size) reads text up to about 270 px itself; below 1 reads taller text; above 1 "
                        "reads smaller text: torch grows the frame, an exported graph or engine stops at its input "
                        "size and says so)")
    p.add_argument("--min-score", type=float, default=None, metavar="T",
                   help="report only words whose score (detection x character probability) is at least T, "
                        "0..1 (default: the model's threshold, stored in its config; 0 = every word read)")


def _write_json(path, data) -> None:
    write_bytes_atomic(path, (json.dumps(data, indent=2) + "\n").encode())


def _report_failed(failed: list[str], total: int) -> int:
    for line in failed[:5]:
        print(f"spotrt: error: {line}", file=sys.stderr)
    if failed:
        rest = "; the others were written" if len(failed) < total else "; nothing was written"
        print(f"spotrt: error: {len(failed)} of {total} inputs could not be read{rest}", file=sys.stderr)
        return 1
    return 0


def cmd_spot(a) -> int:
    from .api import collect_images, load_spotter, spot_images

    paths = collect_images(a.inputs)
    spotter = load_spotter(a.model, a.backend, a.device, scale=a.scale, min_score=a.min_score)
    report = spot_images(spotter, paths, jsonl=a.jsonl, rrc_out=a.rrc_out, draw=a.draw, progress=not a.quiet)
    if not (a.jsonl or a.rrc_out or a.draw):
        print(f"{report.images} images, {report.words} words (use --jsonl, --rrc-out or --draw to save them)")
    return _report_failed(report.failed, len(paths))


def cmd_read(a) -> int:
    from .api import collect_images, load_spotter, read_crops

    from .fileio import check_writable, write_bytes_atomic

    paths = collect_images(a.crops)
    if a.out:
        check_writable(a.out)
    spotter = load_spotter(a.model, a.backend, a.device)
    results, failed = read_crops(spotter, paths, progress=not a.quiet and bool(a.out))
    lines = "".join(f"{p}\t{t}\n" for p, t, _ in results)
    if a.out:
        write_bytes_atomic(a.out, lines.encode("utf-8"))
    else:
        sys.stdout.write(lines)
    return _report_failed(failed, len(paths))


def _print_table(results: dict) -> None:
    if any(isinstance(r, dict) and "hmean" in r for r in results.values()):
        print(f"| {'metric':<18} | precision | recall | hmean  |")
        print("|" + "-" * 20 + "|-----------|--------|--------|")
    for key, r in results.items():
        if isinstance(r, dict) and "hmean" in r:
            print(f"| {key:<18} | {r['precision']:.4f}    | {r['recall']:.4f} | {r['hmean']:.4f} |")
    if "recognition" in results:
        r = results["recognition"]
        print(f"recognition accuracy on {r['words']} ground-truth crops: {r['accuracy']:.4f}")
    if "crops" in results:
        r = results["crops"]
        print(f"word accuracy on {r['words']} crops ({results.get('dataset', '')}): {r['accuracy']:.4f}")
        for name in ("by_kind", "by_length"):
            cells = ", ".join(f"{k} {v['accuracy']:.3f} ({v['words']})" for k, v in r[name].items())
            print(f"  {name.replace('_', ' ')}: {cells}")


def cmd_eval(a) -> int:
    from .eval import runner

    if a.json:  # a result that cannot be written fails now, not after the evaluation ran
        from .api import check_writable_file

        check_writable_file(a.json)
    if a.submission:
        if not a.gt:
            raise SpotrtError("--submission: found no --gt, expected the ground-truth folder to score against")
        results = runner.score_submission(a.gt, a.submission)
    else:
        from .api import load_spotter

        if a.synthetic < 0 or a.synthetic_crops < 0:
            raise SpotrtError(f"eval --synthetic/--synthetic-crops: found {min(a.synthetic, a.synthetic_crops)}, "
                              "expected a number of images >= 1")
        if a.crops:
            from .eval.crops import read_crop_set

            items = read_crop_set(a.crops)  # a bad folder fails before the model loads
        spotter = load_spotter(a.model, a.backend, a.device, scale=a.scale, min_score=a.min_score)
        if a.crops or a.synthetic_crops:
            from .eval import crops as C

            vocab = C.dictionary()
            if a.crops:
                results = {"dataset": str(a.crops), "crops": C.crop_accuracy(spotter, items, vocab, not a.quiet)}
            else:
                gen = C.synthetic_crops(a.synthetic_crops, a.level)
                items = [(img, label, kind) for _, img, label, kind in gen]
                results = {"dataset": f"held-out synthetic crops, level {a.level}, {a.synthetic_crops} words",
                           "crops": C.crop_accuracy(spotter, items, vocab, not a.quiet)}
        elif a.synthetic:
            results = runner.evaluate_synthetic(spotter, a.synthetic, a.level, a.seed, progress=not a.quiet)
        else:
            lexicons = runner.LEXICONS if a.lexicon == "all" else ("none",) if a.lexicon == "none" else ("none", a.lexicon)
            results = runner.evaluate_icdar(spotter, a.data, lexicons, rrc_out=a.rrc_out, progress=not a.quiet)
            if not a.no_recognition:
                results["recognition"] = runner.recognition_accuracy(spotter, a.data, progress=not a.quiet)
    _print_table(results)
    if a.json:
        _write_json(a.json, results)
    return 0


def cmd_train(a) -> int:
    from .options import parse_size
    from .train.config import TrainConfig, going_on, parse_arch, parse_levels, stored_settings

    model = {"backbone": a.backbone}
    if a.charset:
        model["charset"] = a.charset
    if a.max_word_len:
        model["max_word_len"] = a.max_word_len
    if a.encoder_convs is not None:
        model["encoder_convs"] = a.encoder_convs
    if a.encoder_bidirectional is not None:
        model["encoder_bidirectional"] = a.encoder_bidirectional
    if a.levels:
        model["level_anchor_heights"] = parse_levels(a.levels)
    if a.arch:
        model.update(parse_arch(a.arch))
    height, width = parse_size(a.size, "train --size")
    tc = TrainConfig(out=a.out, steps=a.steps, batch=a.batch, mosaics=a.mosaics, lr=a.lr, warmup=a.warmup,
                     curriculum=a.curriculum, mosaic_curriculum=a.mosaic_curriculum, seed=a.seed,
                     device=a.device, real_crops=a.real_crops, real_fraction=a.real_fraction, init=a.init,
                     augment=a.augment, small_text=a.small_text, rec_per_mosaic=a.rec_per_mosaic, workers=a.workers,
                     checkpoint_every=a.checkpoint_every, height=height, width=width, real_scenes=a.real_scenes,
                     scene_root=a.scene_root, open_text=a.open_text, backgrounds=a.backgrounds, bf16=a.bf16, qat=a.qat,
                     model=model, continue_from=a.continue_from, paste_share=a.paste_share, punctuation=a.punctuation,
                     label_smoothing=a.label_smoothing)
    stored = stored_settings(a.out, a.resume, a.continue_from)
    if stored:  # a run that goes on keeps its own settings; only the flags given here change them
        tc = going_on(stored[0], tc, getattr(a, "given", set()))
    tc.check(a.resume)  # before torch is imported: a bad flag is one line at once

    from .train.loop import train

    print(f"weights: {train(tc, resume=a.resume)}")
    return 0


def cmd_export(a) -> int:
    from .export.onnx_export import export_model
    from .options import parse_size

    size = parse_size(a.input_size) if a.input_size else None
    kinds = tuple(k.strip() for k in a.graphs.split(",") if k.strip())
    if a.triton_repo:  # a model repository for a stock Triton server: spotrt.serve.repository
        from .serve.repository import check_repo_settings, write_repository

        check_repo_settings(a.triton_repo, a.triton_model, a.max_batch, a.queue_delay_us, a.instances)
        if not a.triton_model and not {"plugin", "portable"} & set(kinds):
            raise SpotrtError(f"export --triton-repo: found --graphs {a.graphs}, expected plugin or portable among "
                              "them (the graph the repository serves), or --triton-model")
    if a.triton_model:
        if not a.triton_repo:
            raise SpotrtError("export --triton-model: found it without --triton-repo, expected both")
        if a.model:
            raise SpotrtError("export --triton-model: found --model as well, expected one of them (--triton-model "
                              "packs a file already exported or built, --model exports weights first)")
        paths = {}
    else:
        paths = export_model(a.model, a.out, input_size=size, batch=a.batch, opset=a.opset, kinds=kinds)
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    if a.triton_repo:
        repo = write_repository(a.triton_repo, a.triton_model or paths.get("plugin") or paths["portable"],
                                max_batch=a.max_batch,
                                queue_delay_us=a.queue_delay_us, instances=a.instances)
        print(f"triton model repository: {repo}")
    return 0


def cmd_check(a) -> int:
    from .export.check import compare, format_report
    from .options import parse_size

    size = parse_size(a.input_size) if a.input_size else None
    res = compare(a.model, images=a.images, synthetic=a.synthetic, input_size=size, threads=a.threads)
    print(format_report(res))
    if a.json:
        _write_json(a.json, res)
    return 0


def cmd_run(a) -> int:
    from .api import run_stream

    if a.server:  # a Triton server reads the frames: spotrt.runtime.triton_backend
        from .runtime.triton_backend import run_on_server

        if a.model is not None or a.backend != "auto":
            raise SpotrtError("run --server: found --model/--backend as well, expected only --server (the server's "
                              "model reads the frames; choose it with spotrt serve --model)")
        run_on_server(a.sources, a.server, a.server_model, in_flight=a.in_flight, timeout=a.server_timeout,
                      scale=a.scale, min_score=a.min_score, output=a.output, jsonl=a.jsonl, every=a.every,
                      max_frames=a.max_frames, display=a.display, min_track=a.min_track, vote=a.vote,
                      reconnect_timeout=a.reconnect_timeout, quiet=a.quiet, source_backend=a.source_backend,
                      decoder=a.decoder)
        return 0
    run_stream(a.sources, model=a.model, backend=a.backend, device=a.device, output=a.output, jsonl=a.jsonl,
               every=a.every, max_frames=a.max_frames, display=a.display, min_track=a.min_track, vote=a.vote,
               reconnect_timeout=a.reconnect_timeout, quiet=a.quiet, scale=a.scale,
               min_score=a.min_score, source_backend=a.source_backend, decoder=a.decoder)
    return 0


def cmd_serve(a) -> int:
    from .serve.pytriton_server import serve

    serve(a.model, a.backend, a.device, threads=a.threads, host=a.host, grpc_port=a.grpc_port, http_port=a.http_port,
          metrics_port=a.metrics_port, max_batch=a.max_batch, queue_delay_us=a.queue_delay_us, instances=a.instances,
          name=a.name, log_file=a.log_file, workspace=a.workspace)
    return 0


def cmd_calibrate(a) -> int:
    from .calibration.calibrate import calibrate

    r = calibrate(a.onnx, a.out, images=a.images, video=a.video, frames=a.frames, method=a.method, cache=a.cache,
                  percentile=a.percentile, threads=a.threads)
    source = f"cache {r.cache} (reused)" if r.reused_cache else f"{r.frames} frames (ranges cached in {r.cache})"
    print(f"{r.out}: {len(r.quantized)} nodes quantized ({r.method}) from {source}")
    if r.read_out is not None:
        print(f"{r.read_out}: the read graph, quantized with the same ranges")
    return 0


def cmd_build(a) -> int:
    from .export.tensorrt_build import build_engine

    engine = build_engine(a.onnx, precision=a.precision, save_engine=a.save_engine, workspace_mb=a.workspace,
                          calib_method=a.calib_method, calib_cache=a.calib_cache, images=a.images, video=a.video,
                          frames=a.frames, verbose=a.verbose)
    print(f"engine: {engine} (metadata {engine}.json)")
    return 0


def cmd_bench(a) -> int:
    from . import bench

    opts = bench.make_options(model=a.model, backend=a.backend, precision=a.precision, input_size=a.input_size,
                              batch=a.batch, prep_threads=a.prep_threads, warmup=a.warmup, iterations=a.iterations,
                              duration=a.duration, frames=a.frames, images=a.images, device=a.device,
                              threads=a.threads, compare=not a.no_compare)
    json_path = bench.check_output(a.json, "--json", ".json") if a.json else None
    plot_path = bench.check_output(a.plot, "--plot", ".png") if a.plot else None
    result = bench.run_bench(opts, log=None if a.quiet else lambda line: print(line, file=sys.stderr))
    print(bench.format_markdown(result))
    bench.write_outputs(result, json_path, plot_path)
    return 0


def cmd_demo(a) -> int:
    from .demo import run_demo

    run_demo(a.model, a.output, a.jsonl, frames=a.frames)
    return 0


def _triton_batching_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-batch", type=int, default=8, metavar="N",
                   help="Triton model: most frames its dynamic batcher joins into one call (default 8)")
    p.add_argument("--queue-delay-us", type=int, default=2000, metavar="US",
                   help="Triton model: longest a request waits for others to batch with, in microseconds (default 2000)")
    p.add_argument("--instances", type=int, default=1, metavar="N",
                   help="Triton model: instances, each its own runner, that take batches in parallel (default 1)")


def _add_spot(sub) -> None:
    s = sub.add_parser("spot", help="detect and read words in images or folders of images")
    s.add_argument("inputs", nargs="+", metavar="INPUT")
    _model_args(s)
    _scale_arg(s)
    s.add_argument("--rrc-out", metavar="DIR", help="write ICDAR 2015 result files res_<image>.txt here")
    s.add_argument("--jsonl", metavar="FILE", help="write one JSON object per image")
    s.add_argument("--draw", metavar="DIR", help="write annotated images here")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_spot)


def _add_read(sub) -> None:
    r = sub.add_parser("read", help="recognize word crops (each crop is one word)")
    r.add_argument("crops", nargs="+", metavar="CROP")
    _model_args(r)
    r.add_argument("--out", metavar="FILE.tsv", help="write path<TAB>text lines here instead of stdout")
    r.add_argument("--quiet", action="store_true")
    r.set_defaults(func=cmd_read)


def _add_eval(sub) -> None:
    e = sub.add_parser("eval", help="score a model (ICDAR 2015 protocol or held-out synthetic scenes)")
    e.add_argument("--data", default=None, help="ICDAR 2015 folder with images/, gt/, lexicons/")
    e.add_argument("--synthetic", type=int, default=0, metavar="N", help="score on N held-out synthetic scenes instead")
    e.add_argument("--level", type=int, default=1, choices=[0, 1, 2], help="curriculum level of --synthetic")
    e.add_argument("--seed", type=int, default=1, help="seed of --synthetic")
    e.add_argument("--crops", default=None, metavar="DIR",
                   help="word accuracy on a folder of word crops with a gt.txt ('word_1.png, \"Text\"' lines)")
    e.add_argument("--synthetic-crops", type=int, default=0, metavar="N",
                   help="word accuracy on N held-out synthetic crops (held-out fonts, open vocabulary, fixed seed)")
    e.add_argument("--lexicon", default="all", choices=["none", "generic", "weak", "strong", "all"])
    e.add_argument("--no-recognition", action="store_true", help="skip recognition accuracy on GT crops")
    e.add_argument("--submission", metavar="DIR", help="score existing res_*.txt files (needs --gt)")
    e.add_argument("--gt", metavar="DIR", help="ground-truth folder of gt_*.txt for --submission")
    e.add_argument("--rrc-out", metavar="DIR", help="also write the result files, one folder per lexicon")
    e.add_argument("--json", metavar="FILE", help="write the scores as JSON")
    e.add_argument("--quiet", action="store_true")
    _model_args(e)
    _scale_arg(e)
    e.set_defaults(func=cmd_eval)


def _add_train(sub) -> None:
    D = TrainConfig(out="")  # the one source of the defaults
    t = sub.add_parser("train", help="train a spotter on synthetic scenes (resumable)")
    t.add_argument("--out", required=True, help="run folder: checkpoints, log.jsonl, state.json")
    t.add_argument("--steps", type=int, default=D.steps)
    t.add_argument("--batch", type=int, default=D.batch, help="synthetic scenes per step")
    t.add_argument("--mosaics", type=int, default=D.mosaics, help="word-crop mosaics per step (recognition only)")
    t.add_argument("--rec-per-mosaic", type=int, default=D.rec_per_mosaic, help="recognition samples per mosaic")
    t.add_argument("--lr", type=float, default=D.lr)
    t.add_argument("--warmup", type=int, default=D.warmup, help="steps of linear learning-rate warm-up")
    t.add_argument("--curriculum", default=D.curriculum, help="step:level,... (levels 0 easy .. 2 hard)")
    t.add_argument("--mosaic-curriculum", default=None, help="levels of the mosaics' words (default: --curriculum)")
    t.add_argument("--backbone", default="light", choices=["light", "vgg16"])
    t.add_argument("--charset", default=None, help="characters the recognizer reads (default: 0-9a-z)")
    t.add_argument("--max-word-len", type=int, default=None)
    t.add_argument("--real-crops", default=None, metavar="DIR", help="word crops (gt.txt) to mix into training")
    t.add_argument("--real-fraction", type=float, default=D.real_fraction, help="share of mosaic words taken from --real-crops")
    t.add_argument("--augment", default=D.augment, action=argparse.BooleanOptionalAction,
                   help="letter-spaced words, larger text and more pasted real crops than the evaluation "
                        "levels; low-resolution, blurred and noisy copies of the real crops (default: on)")
    t.add_argument("--small-text", type=float, default=D.small_text, metavar="P",
                   help="with --augment: share of level-2 scene words drawn 8-24 px tall, the size of most "
                        "words in 1280x720 street photos (default 0)")
    t.add_argument("--real-scenes", type=int, default=D.real_scenes, metavar="N",
                   help="of the --batch scenes per step, N are augmented crops of real training scenes (--scene-root)")
    t.add_argument("--scene-root", default=None, metavar="DIR",
                   help="ICDAR 2015 training scenes (images/, gt/); every 10th image is held out for validation")
    t.add_argument("--open-text", default=D.open_text, action=argparse.BooleanOptionalAction,
                   help="synthetic text from an open vocabulary (wordfreq) and random strings (default: off)")
    t.add_argument("--backgrounds", default=None, metavar="DIR", help="photographs behind synthetic words")
    t.add_argument("--paste-share", type=float, default=D.paste_share, metavar="P",
                   help="share of the real scenes that also get 1-4 synthetic words where no text is labelled")
    t.add_argument("--punctuation", type=float, default=D.punctuation, metavar="P",
                   help="with --open-text: share of synthetic words shown with symbols the label leaves out "
                        "(\"#black\", \"SALE!\"), so the reader skips what is not in its charset (default 0)")
    t.add_argument("--label-smoothing", type=float, default=D.label_smoothing, metavar="E",
                   help="label smoothing of the decoder's cross-entropy (default 0)")
    t.add_argument("--size", default=f"{D.height}x{D.width}", metavar="HxW",
                   help=f"training image size (default {D.height}x{D.width})")
    t.add_argument("--bf16", default=D.bf16, action=argparse.BooleanOptionalAction,
                   help="bfloat16 autocast (about 2x faster on CPUs with AVX-512 BF16; default: off)")
    t.add_argument("--qat", default=D.qat, action=argparse.BooleanOptionalAction,
                   help="quantization-aware fine-tuning from --init: the layers spotrt calibrate quantizes train "
                        "with their INT8 rounding (BatchNorms frozen), meant to make the INT8 graph read as the "
                        "float one does (200 steps on stage 12 did not move read parity: calibration README; "
                        "default: off)")
    t.add_argument("--levels", default=None, metavar="H,H/H,H",
                   help="anchor heights of extra proposal levels at strides 16, 32, ... (new or --init models), "
                        "e.g. '110,176/280,448'")
    t.add_argument("--encoder-convs", type=int, default=None, help="conv blocks of the region encoder (0: plain)")
    t.add_argument("--arch", default=None, metavar="NAME=N,...",
                   help="network sizes of a new or --init model, e.g. 'encoder_channels=128,decoder_hidden=192' "
                        "(tensors whose shape changes start fresh; see spotrt.train.config.ARCH_FIELDS)")
    t.add_argument("--encoder-bidirectional", default=None, action=argparse.BooleanOptionalAction,
                   help="bidirectional region encoder LSTM (default: on for new models)")
    t.add_argument("--init", default=None, metavar="WEIGHTS", help="start from these weights (fine-tune)")
    t.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last checkpoint, with the settings in its state.json "
                        "(flags given here change them, and each change is printed)")
    t.add_argument("--continue-from", default=None, metavar="WEIGHTS",
                   help="continue a run on another machine from its weights-only checkpoint (last.safetensors): "
                        "the step and settings stored in the file (flags given here change them; a checkpoint "
                        "without settings takes the flags), with a fresh optimizer")
    t.add_argument("--seed", type=int, default=D.seed)
    t.add_argument("--device", default=D.device, help="auto, cpu or cuda")
    t.add_argument("--workers", type=int, default=D.workers, help="data generation processes")
    t.add_argument("--checkpoint-every", type=int, default=D.checkpoint_every)
    t.set_defaults(func=cmd_train)


def _add_export(sub) -> None:
    x = sub.add_parser("export", help="export weights to ONNX: plugin graph, portable graph and read graph")
    x.add_argument("--model", default=None, help="weights file (.safetensors); default: the shipped model")
    x.add_argument("--out", default="export", help="folder (model.onnx, model.portable.onnx, model.read.onnx) "
                   "or a path X.onnx (X.portable.onnx and X.read.onnx beside it); default: export/")
    x.add_argument("--input-size", default=None, metavar="HxW", help="fixed input size (default: the config's, 736x1280)")
    x.add_argument("--batch", type=int, default=1, help="static batch size N (default: 1)")
    x.add_argument("--opset", type=int, default=17, help="ONNX opset (>= 16; default: 17)")
    x.add_argument("--graphs", default="plugin,portable,read",
                   help="which graphs to write, comma-separated (default: plugin,portable,read)")
    x.add_argument("--triton-repo", default=None, metavar="DIR",
                   help="also write a model repository for a stock Triton server here (config.pbtxt, a Python-backend "
                        "model.py and the model; see README, serving)")
    x.add_argument("--triton-model", default=None, metavar="FILE",
                   help="with --triton-repo: put this .onnx or TensorRT .engine (with its .engine.json) in the repository "
                        "instead of exporting (default: the plugin graph exported now)")
    _triton_batching_args(x)
    x.set_defaults(func=cmd_export)


def _add_check(sub) -> None:
    c = sub.add_parser("check", help="compare torch, the plugin graph and the portable graph on the same inputs")
    c.add_argument("--model", default=None, help="weights file (.safetensors); default: the shipped model")
    c.add_argument("--images", default=None, metavar="DIR", help="images to compare on")
    c.add_argument("--synthetic", type=int, default=0, metavar="N", help="N synthetic scenes (default 0; 8 without --images)")
    c.add_argument("--input-size", default=None, metavar="HxW", help="graph input size (default: the config's)")
    c.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads")
    c.add_argument("--json", metavar="FILE", help="write the comparison as JSON")
    c.set_defaults(func=cmd_check)


def _add_calibrate(sub) -> None:
    cb = sub.add_parser("calibrate", help="INT8: activation ranges on representative frames -> Q/DQ graph")
    cb.add_argument("--onnx", required=True, help="exported float graph (model.portable.onnx or model.onnx)")
    src = cb.add_mutually_exclusive_group()
    src.add_argument("--images", metavar="DIR", help="folder of representative images")
    src.add_argument("--video", metavar="FILE", help="representative video")
    cb.add_argument("--frames", type=int, default=64, help="frames sampled evenly (default 64)")
    cb.add_argument("--method", default="percentile", choices=["entropy", "percentile", "minmax"],
                    help="range method (default percentile: it keeps the shipped model's reading, entropy does not)")
    cb.add_argument("--percentile", type=float, default=None,
                    help="for --method percentile (default 99.999: see spotrt/calibration/README.md)")
    cb.add_argument("--out", required=True, metavar="FILE.onnx", help="the Q/DQ graph (e.g. model.int8.onnx)")
    cb.add_argument("--cache", default=None, metavar="FILE.json",
                    help="range cache, reused when it exists (default: <out>.calib.json)")
    cb.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads")
    cb.set_defaults(func=cmd_calibrate)


def _add_build(sub) -> None:
    bd = sub.add_parser("build", help="build a TensorRT engine (fp32, fp16, int8) and its .json metadata")
    bd.add_argument("--onnx", required=True, help="exported graph; a Q/DQ graph from calibrate for int8")
    bd.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "int8"])
    bd.add_argument("--calib-method", default="qdq", choices=["qdq", "implicit"],
                    help="int8 from the graph's Q/DQ nodes (default), or TensorRT's implicit entropy calibrator "
                         "where the installed TensorRT still has it (10.x)")
    bd.add_argument("--calib-cache", default=None, metavar="FILE", help="TensorRT calibration cache (implicit)")
    bsrc = bd.add_mutually_exclusive_group()
    bsrc.add_argument("--images", metavar="DIR", help="calibration images (implicit)")
    bsrc.add_argument("--video", metavar="FILE", help="calibration video (implicit)")
    bd.add_argument("--frames", type=int, default=64, help="calibration frames (implicit; default 64)")
    bd.add_argument("--workspace", type=int, default=None, metavar="MB", help="builder workspace limit")
    bd.add_argument("--save-engine", default=None, metavar="E", help="engine path (default: <onnx stem>.engine)")
    bd.add_argument("--verbose", action="store_true", help="TensorRT's INFO log")
    bd.set_defaults(func=cmd_build)


def _add_bench(sub) -> None:
    bn = sub.add_parser("bench", help="latency per stage, throughput, memory, FLOPs; side-by-side comparisons; "
                                      "Jetson estimates")
    bn.add_argument("--model", default=None, help="weights file (.safetensors), exported from and calibrated by bench "
                    "itself, or an exported .onnx graph measured as it is on onnxruntime; default: the shipped model")
    bn.add_argument("--backend", default="auto", help="torch (per-stage latency), onnxruntime or tensorrt "
                    "(where installed); default auto: torch for weights where torch is installed, else onnxruntime "
                    "(the shipped model's exported graph without --model)")
    bn.add_argument("--precision", default="fp32", help="fp32; int8 (onnxruntime, tensorrt: Q/DQ graph); fp16 "
                    "(tensorrt); a comma-separated list sweeps (default: fp32)")
    bn.add_argument("--input-size", default=None, metavar="HxW",
                    help="network input, multiples of 32; a comma-separated list sweeps (default: 384x640; an "
                         ".onnx graph's own)")
    bn.add_argument("--batch", default=None, help="frames per network call; a list sweeps (default: 1; an .onnx "
                    "graph's own)")
    bn.add_argument("--prep-threads", default="1", help="preprocessing threads feeding the pipelined loop (default: 1)")
    bn.add_argument("--warmup", default="1", metavar="N", help="untimed runs before each measurement (default: 1)")
    bn.add_argument("--iterations", default=None, metavar="N", help="timed runs per measurement")
    bn.add_argument("--duration", default=None, metavar="S",
                    help="seconds per measurement, at least one run (default without --iterations: 3)")
    bn.add_argument("--frames", default="4", metavar="N", help="distinct frames, also INT8 calibration (default: 4)")
    bn.add_argument("--images", default=None, metavar="DIR", help="frames from this folder (default: synthetic scenes)")
    bn.add_argument("--device", default="cpu", help="torch device: cpu or cuda (default: cpu)")
    bn.add_argument("--threads", default=None, metavar="N", help="torch and ONNX Runtime threads (default: theirs)")
    bn.add_argument("--no-compare", action="store_true", help="skip the side-by-side comparisons")
    bn.add_argument("--json", default=None, metavar="FILE.json", help="write every number here")
    bn.add_argument("--plot", default=None, metavar="FILE.png", help="draw latency by stage and the comparisons")
    bn.add_argument("--quiet", action="store_true", help="no progress lines")
    bn.set_defaults(func=cmd_bench)


def _add_demo(sub) -> None:
    d = sub.add_parser("demo", help="read text in the project's own sample stream and write an annotated video")
    d.add_argument("--model", default=None)
    d.add_argument("--output", default="demo_out/demo.mp4")
    d.add_argument("--jsonl", default="demo_out/demo.jsonl")
    d.add_argument("--frames", type=int, default=90)
    d.set_defaults(func=cmd_demo)


def _add_run(sub) -> None:
    rn = sub.add_parser("run", help="read text in video files, cameras and streams (JSONL, annotated video, window)")
    rn.add_argument("sources", nargs="+", metavar="SOURCE",
                    help="video file (or file://), folder of images, camera index or /dev/videoN, rtsp:// or "
                         "http:// URL, csi://N, or a GStreamer pipeline; several are batched together")
    _model_args(rn)
    _scale_arg(rn)
    rn.add_argument("--output", metavar="FILE.mp4", help="annotated video (one per source: X.0.mp4, X.1.mp4, ...)")
    rn.add_argument("--jsonl", metavar="FILE", help="one JSON object per frame (words, or why it was dropped)")
    rn.add_argument("--every", type=int, default=1, metavar="N", help="process every Nth frame (default 1)")
    rn.add_argument("--max-frames", type=int, default=None, metavar="N", help="stop each source after N frames")
    rn.add_argument("--display", action="store_true", help="show the annotated frames in a window")
    rn.add_argument("--min-track", type=int, default=3, metavar="N",
                    help="frames a word must be tracked before its stable reading is reported (default 3)")
    rn.add_argument("--vote", type=int, default=15, metavar="N", help="readings a track votes over (default 15)")
    rn.add_argument("--reconnect-timeout", type=float, default=None, metavar="S",
                    help="end a live source after S seconds without a frame (default: keep reconnecting); "
                         "a camera or stream that is not up yet is tried that long before giving up")
    rn.add_argument("--source-backend", default="auto", choices=["auto", "gst", "opencv"],
                    help="open cameras, streams, files and pipelines with GStreamer through PyGObject (gst), "
                         "cv2.VideoCapture (opencv), or auto: gst where PyGObject's GStreamer imports (default); "
                         "http(s)/rtmp streams always open with opencv; stderr says which opened each source")
    rn.add_argument("--decoder", default="auto", choices=["auto", "nv", "sw"],
                    help="GStreamer decoder: nv = nvv4l2decoder (Jetson hardware), sw = software (avdec_*), "
                         "auto = nv where nvv4l2decoder exists, else sw (default)")
    rn.add_argument("--quiet", action="store_true", help="no status lines while running")
    rn.add_argument("--server", default=None, metavar="URL",
                    help="read the frames on a Triton server (spotrt serve, or a repository from export --triton-repo): "
                         "grpc://host:port; --model/--backend are the server's then")
    rn.add_argument("--server-model", default="spotrt", metavar="NAME", help="the model's name on the server (default spotrt)")
    rn.add_argument("--in-flight", type=int, default=4, metavar="N",
                    help="requests on their way per stream with --server (default 4)")
    rn.add_argument("--server-timeout", type=float, default=30.0, metavar="S",
                    help="with --server: seconds a request may take, and how long to wait for a server that went down "
                         "to come back before giving up (default 30)")
    rn.set_defaults(func=cmd_run)


def _add_serve(sub) -> None:
    sv = sub.add_parser("serve", help="serve the spotter from Triton Inference Server (PyTriton): dynamic batching, "
                                      "model instances, gRPC/HTTP, Prometheus metrics")
    _model_args(sv)
    sv.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads per instance (default: its own)")
    sv.add_argument("--host", default="127.0.0.1",
                    help="address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)")
    sv.add_argument("--grpc-port", type=int, default=8001)
    sv.add_argument("--http-port", type=int, default=8000)
    sv.add_argument("--metrics-port", type=int, default=8002, help="Prometheus metrics at /metrics (default 8002)")
    sv.add_argument("--name", default="spotrt", help="the model's name on the server (default spotrt)")
    sv.add_argument("--log-file", default=None, metavar="FILE", help="Triton's log here instead of the terminal")
    sv.add_argument("--workspace", default=None, metavar="DIR",
                    help="PyTriton's model store and sockets (default: a new folder under ~/.cache/pytriton; removed "
                         "when the server stops)")
    _triton_batching_args(sv)
    sv.set_defaults(func=cmd_serve)


class _Parser(argparse.ArgumentParser):
    """argparse whose usage mistakes are one SpotrtError line (exit 1 through main), not usage text and exit 2."""

    def error(self, message):
        raise SpotrtError(f"{self.prog}: {message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="spotrt", description="End-to-end scene text spotting for Jetson.")
    p.add_argument("--version", action="version", version=f"spotrt {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    for add in (_add_spot, _add_read, _add_eval, _add_train, _add_export, _add_check, _add_calibrate, _add_build,
                _add_bench, _add_demo, _add_run, _add_serve):  # one function per subcommand, in --help order
        add(sub)
    return p


# The extra that brings each optional package: a runtime install (no torch) runs spot, run, read, eval,
# bench and calibrate; train, export, check and demo need the train extra.
EXTRA_OF = {"torch": "train", "PIL": "train", "wordfreq": "train", "onnx": "runtime", "onnxruntime": "runtime",
            "onnxruntime_extensions": "runtime", "cuda": "runtime", "onnx_graphsurgeon": "onnx",
            "polygraphy": "onnx"}


_UNSET = object()


def _given_flags(argv: list[str], command: str, add) -> set[str]:
    """The dests of the flags written on the command line after `command` (not those left at their
    defaults): the arguments parsed again by that command's parser into a namespace whose every dest is
    _UNSET, which argparse only replaces for the flags it meets."""
    sub = _Parser(prog="spotrt").add_subparsers()
    add(sub)
    p = sub.choices[command]
    dests = [act.dest for act in p._actions if act.dest != argparse.SUPPRESS]
    ns = argparse.Namespace(**dict.fromkeys(dests, _UNSET))
    p.parse_args(argv[argv.index(command) + 1:], ns)
    return {d for d in dests if getattr(ns, d) is not _UNSET}


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
        if args.command == "train":  # a run that goes on keeps its settings unless a flag is written
            args.given = _given_flags(argv, "train", _add_train)
    except SpotrtError as exc:
        print(f"spotrt: error: {exc}", file=sys.stderr)
        return 1
    if args.command == "eval" and not (args.submission or args.synthetic or args.data or args.crops
                                       or args.synthetic_crops):
        print("spotrt: error: eval: found no --data, --synthetic, --crops, --synthetic-crops or --submission, "
              "expected one of them", file=sys.stderr)
        return 1
    if args.command == "check" and not args.images and not args.synthetic:
        args.synthetic = 8
    try:
        return args.func(args)
    except SpotrtError as exc:
        print(f"spotrt: error: {exc}", file=sys.stderr)
        return 1
    except ModuleNotFoundError as exc:  # a command that needs what this install left out
        extra = EXTRA_OF.get((exc.name or "").split(".")[0])
        if extra is None:
            raise
        print(f"spotrt: error: {args.command}: found no {exc.name} installed, expected pip install 'spotrt[{extra}]' "
              "for it", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("spotrt: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
