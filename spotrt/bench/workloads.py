"""What `spotrt bench` runs: frames, the spotter split into timed stages, the two-stage alternative,
exported graphs, the pipelined loop, and the FLOPs and bytes of each stage.

Every workload turns BGR frames into words the way the backends do (`imageops.preprocess` at a
fixed input size, `postprocess.words_of`; an exported graph through its runner's own path,
spotrt/runner.py) and exposes the same steps: `prepare_one`
(NumPy, one frame), `to_input` (a batch for the backend), `network` (raw outputs as NumPy, calling
`lap(stage)` at each stage boundary) and `postprocess`. The torch workload is written against the
Spotter's own methods (features, tpn, anchors, propose, regions, detector, decoder.greedy), so it
runs the same computation as `Spotter.forward` (tests/test_bench.py checks the outputs are equal).
"""

from __future__ import annotations

import importlib.util
import queue
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..imageops import READ_HEIGHT, prepare_crop, preprocess
from ..postprocess import SpottedWord, box_to_quad, decode_tokens, nms_np, text_confidence, words_of
from ..runner import OUTPUTS
from .timing import no_lap, summarize

TORCH_STAGES = ("preprocess", "backbone+proposals", "roi_pooling", "encoder+detection", "decoder", "postprocess")
GRAPH_STAGES = ("preprocess", "network", "postprocess")
HOST_STAGES = ("preprocess", "postprocess", "crop")  # NumPy / OpenCV on the CPU, outside the network


def bench_frames(input_size: tuple[int, int], count: int, charset: str, images=None, seed: int = 0,
                 with_source: bool = False):
    """`count` BGR frames: synthetic scenes (level 1) of exactly `input_size`, or images of a folder.

    Without Pillow (a runtime install) the synthetic scenes are words drawn with OpenCV instead.
    `with_source`: (frames, one line saying where they came from)."""
    if images is not None:
        from ..imageops import collect_images, read_image

        frames, source = [read_image(p) for p in collect_images([images])[:count]], str(images)
    elif importlib.util.find_spec("PIL") is not None:
        from ..data.synth import SynthGenerator

        gen = SynthGenerator(charset=charset)
        frames = [gen.scene(seed + i, 1, *input_size).image for i in range(count)]
        source = "synthetic scenes (spotrt.data.synth, level 1)"
    else:
        rng = np.random.default_rng(seed)
        frames = [_drawn_scene(input_size, charset, rng) for _ in range(count)]
        source = "words drawn with OpenCV (Pillow is not installed for spotrt.data.synth)"
    return (frames, source) if with_source else frames


def _drawn_scene(size, charset: str, rng) -> np.ndarray:
    """A frame of random words in OpenCV's Hershey font on a plain background."""
    import cv2

    h, w = size
    img = np.full((h, w, 3), rng.integers(0, 256, 3), np.uint8)
    for _ in range(int(rng.integers(3, 9))):
        word = "".join(rng.choice(list(charset), int(rng.integers(2, 8))))
        org = (int(rng.integers(0, max(1, w - 100))), int(rng.integers(20, max(21, h - 5))))
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        cv2.putText(img, word, org, cv2.FONT_HERSHEY_SIMPLEX, float(rng.uniform(0.5, 1.6)), color, 2, cv2.LINE_AA)
    return img


class StagedWorkload:
    """Frames -> words in timed stages; subclasses provide `to_input` and `network`."""

    stages: tuple[str, ...] = ()
    sync = None     # called at each lap of a staged run (a device synchronize), or None
    device = "cpu"  # where the network runs

    def __init__(self, cfg, input_size: tuple[int, int]) -> None:
        self.cfg, self.input_size = cfg, tuple(input_size)

    def prepare_one(self, image: np.ndarray):
        return preprocess(image, self.cfg.mean, self.cfg.std, self.input_size, multiple=32, fixed=True)

    def postprocess(self, raw: dict, letterboxes) -> list[list[SpottedWord]]:
        return [words_of(self.cfg, raw["boxes"][i], raw["scores"][i], raw["tokens"][i], raw["token_probs"][i],
                         int(raw["count"][i]), lb)
                for i, lb in enumerate(letterboxes)]

    def run(self, images, lap=no_lap) -> list[list[SpottedWord]]:
        xs, lbs = zip(*(self.prepare_one(im) for im in images))
        inp = self.to_input(list(xs))
        lap("preprocess")
        raw = self.network(inp, lap)
        words = self.postprocess(raw, lbs)
        lap("postprocess")
        return words


@contextmanager
def _lap_on_entry(module, lap, name: str):
    """Call lap(name) when `module` starts its forward (None: nothing to hook, no lap)."""

    def hook(*_):  # returns None: the module's inputs stay as they are
        lap(name)

    handle = None if module is None else module.register_forward_pre_hook(hook)
    try:
        yield
    finally:
        if handle is not None:
            handle.remove()


class TorchWorkload(StagedWorkload):
    """The PyTorch spotter in the stages of TORCH_STAGES (RoI pooling ends where the region encoder starts)."""

    stages = TORCH_STAGES

    def __init__(self, model, input_size, device: str = "cpu") -> None:
        import torch

        super().__init__(model.cfg, input_size)
        self.model, self.device = model.to(device).eval(), device
        self.sync = torch.cuda.synchronize if str(device).startswith("cuda") else None

    def to_input(self, xs):
        import torch

        return torch.from_numpy(np.stack(xs)).to(self.device)

    def _detect(self, x, lap, pool=None):
        """Spotter.forward's first two stages (every pass: the pyramid's coarse one too), with a lap
        between proposals and RoI pooling -> (passes, Detections)."""
        m = self.model
        passes = m.passes_of(x)
        lap("backbone+proposals")
        with _lap_on_entry(getattr(m, "encoder", None), lap, "roi_pooling"):
            return passes, m.detect(passes, x.shape[2], x.shape[3], pool=pool)

    def network(self, x, lap=no_lap) -> dict:
        import torch

        with torch.no_grad():
            passes, d = self._detect(x, lap)
            lap("encoder+detection")
            tokens, probs = self.model.decoder.greedy(d.memory, d.mask, d.holistic)
            lap("decoder")
            return self.outputs(passes, d, tokens, probs)

    def outputs(self, passes, d, tokens, probs) -> dict:
        """Spotter.outputs (the padded outputs of Spotter.forward, a pyramid's passes merged) as NumPy."""
        out = self.model.outputs(passes, d, tokens, probs)
        return {name: getattr(out, name).cpu().numpy() for name in OUTPUTS}

    def run_two_stage(self, images, lap=no_lap) -> list[list[SpottedWord]]:
        """The two-stage way: detect, crop each detected box from the frame, recompute features on
        every crop and recognize it (same weights, same frames).

        Detection is the single pass without the decoder, thresholded and NMS'd as `postprocess`
        does; the crops are read as `spotrt read` reads one (height 32), all of a batch in one
        `Spotter.recognize` call on a canvas trimmed to the widest crop (the cheapest fair form).
        Words scoring below the model's `word_score_thresh` are dropped, as in the single pass.
        """
        import torch

        c = self.cfg
        xs, lbs = zip(*(self.prepare_one(im) for im in images))
        x = self.to_input(list(xs))
        lap("preprocess")
        with torch.no_grad():
            _, (valid, boxes, det_logit, *_) = self._detect(x, no_lap)
            owner = torch.nonzero(valid)[:, 0].cpu().numpy()
            boxes, scores = boxes.cpu().numpy(), torch.sigmoid(det_logit).cpu().numpy()
        lap("detect")
        crops, widths, dets = [], [], []
        for i, (image, lb) in enumerate(zip(images, lbs)):
            sel = (owner == i) & (scores >= c.score_thresh)
            bx, sc = boxes[sel], scores[sel]
            for j in (nms_np(bx, sc, c.det_nms_iou) if len(bx) else []):
                box = bx[j] / lb.scale
                x1, y1 = (int(np.floor(max(v, 0.0))) for v in box[:2])
                x2, y2 = int(np.ceil(min(box[2], lb.width))), int(np.ceil(min(box[3], lb.height)))
                if x2 - x1 < 2 or y2 - y1 < 2:
                    continue
                canvas, width = prepare_crop(image[y1:y2, x1:x2], c.mean, c.std)
                crops.append(canvas)
                widths.append(width)
                dets.append((i, np.array([x1, y1, x2, y2], np.float32), float(sc[j])))
        lap("crop")
        tokens = probs = None
        if crops:
            cut = min(crops[0].shape[2], -(-max(widths) // 32) * 32)
            batch = torch.from_numpy(np.stack([cr[:, :, :cut] for cr in crops])).to(self.device)
            rois = torch.tensor([[0.0, 0.0, float(w), float(READ_HEIGHT)] for w in widths], device=self.device)
            index = torch.arange(len(crops), device=self.device)
            tokens, probs = (t.cpu().numpy() for t in self.model.recognize(batch, rois, index))
        lap("recognize")
        words: list[list[SpottedWord]] = [[] for _ in images]
        for n, (i, box, det) in enumerate(dets):
            text = decode_tokens(tokens[n], c.charset)
            if text:
                rec = text_confidence(probs[n], text)
                if det * rec >= c.word_score_thresh:  # the model's word threshold, as the single pass
                    words[i].append(SpottedWord(text, det * rec, box_to_quad(box), det, rec))
        lap("postprocess")
        return words


class GraphWorkload(StagedWorkload):
    """An exported graph's runner (ONNX Runtime, TensorRT): its network is one stage; its own path
    (prepare -> stack -> run -> words, spotrt/runner.py) in the stages."""

    stages = GRAPH_STAGES

    def __init__(self, spotter) -> None:
        super().__init__(spotter.cfg, spotter.input_size)
        self.spotter, self.batch = spotter, spotter.batch
        self.device = "cuda" if spotter.name == "tensorrt" else "cpu"

    def prepare_one(self, image: np.ndarray):
        return self.spotter.prepare(image)

    def to_input(self, xs):
        return self.spotter.stack(list(xs))

    def network(self, x, lap=no_lap) -> dict:
        out = self.spotter.run(x)
        lap("network")
        return out

    def postprocess(self, raw: dict, letterboxes) -> list[list[SpottedWord]]:
        return [self.spotter.words({k: v[i] for k, v in raw.items()}, lb) for i, lb in enumerate(letterboxes)]


class Graphs:
    """The graphs a bench run needs, exported (and calibrated, built) once each into `workdir`."""

    def __init__(self, model, frames_at, workdir, threads: int | None = None) -> None:
        self.model, self.frames_at, self.workdir, self.threads = model, frames_at, Path(workdir), threads
        self._paths: dict[tuple, Path] = {}

    def _once(self, key, make) -> Path:
        if key not in self._paths:
            self._paths[key] = make()
        return self._paths[key]

    def onnx(self, size, batch: int, kind: str) -> Path:
        """The float graph: 'portable' for ONNX Runtime (standard ops), 'plugin' for TensorRT."""
        from ..export.onnx_export import export_model

        def make():
            out = self.workdir / f"{size[0]}x{size[1]}_b{batch}" / "model.onnx"
            return export_model(self.model, out, input_size=size, batch=batch, kinds=(kind,))[kind]

        return self._once(("onnx", tuple(size), batch, kind), make)

    def int8(self, size, batch: int, kind: str) -> Path:
        """Its Q/DQ copy, calibrated (entropy) on the bench frames."""
        from ..calibration.calibrate import calibrate
        from ..calibration.frames import calibration_batches

        def make():
            src = self.onnx(size, batch, kind)
            c = self.model.cfg
            data = calibration_batches(((str(i), f) for i, f in enumerate(self.frames_at(size))), c.mean, c.std,
                                       tuple(size), batch)
            return calibrate(src, src.with_name(src.stem + ".int8.onnx"), batches=data, threads=self.threads).out

        return self._once(("int8", tuple(size), batch, kind), make)

    def engine(self, size, batch: int, precision: str) -> Path:
        from ..export.tensorrt_build import build_engine

        def make():
            src = self.int8(size, batch, "plugin") if precision == "int8" else self.onnx(size, batch, "plugin")
            return build_engine(src, precision=precision, save_engine=src.with_name(f"model.{precision}.engine"))

        return self._once(("engine", tuple(size), batch, precision), make)

    def spotter(self, backend: str, precision: str, size, batch: int, spinning: bool = True):
        """`spinning` (ONNX Runtime): False for sessions timed in turn with others (see cpu_session)."""
        if backend == "onnxruntime":
            from ..runtime.onnxruntime_backend import OnnxRuntimeSpotter

            path = self.int8(size, batch, "portable") if precision == "int8" else self.onnx(size, batch, "portable")
            return OnnxRuntimeSpotter(path, threads=self.threads, spinning=spinning)
        from ..runtime.tensorrt_backend import TensorRTSpotter

        return TensorRTSpotter(self.engine(size, batch, precision))


def pipelined(pipe: StagedWorkload, frames, batch: int, prep_threads: int, budget) -> dict:
    """Frames/s with the stages overlapped: `prep_threads` threads preprocess (each its own source of
    frames), the caller's thread runs the network on batches gathered from any of them, and one
    thread postprocesses, so frame i+1 is prepared while frame i is in the network. `latency`: each
    frame's capture-to-words time, from the start of its preprocessing to the end of its
    postprocessing (with the sources always ready, it includes the wait in the queue)."""
    ready: queue.Queue = queue.Queue(maxsize=2 * batch * prep_threads)
    done: queue.Queue = queue.Queue(maxsize=4)
    stop = threading.Event()
    counted, latencies = [0], []

    def produce(k: int) -> None:
        i = k
        while not stop.is_set():
            t = time.perf_counter()
            item = (pipe.prepare_one(frames[i % len(frames)]), t)
            while not stop.is_set():
                try:
                    ready.put(item, timeout=0.05)
                    break
                except queue.Full:
                    continue
            i += prep_threads

    def finish() -> None:
        while (item := done.get()) is not None:
            raw, lbs, started = item
            counted[0] += len(pipe.postprocess(raw, lbs))
            now = time.perf_counter()
            latencies.extend(now - t for t in started)

    producers = [threading.Thread(target=produce, args=(k,), daemon=True) for k in range(prep_threads)]
    post = threading.Thread(target=finish, daemon=True)
    t0 = time.perf_counter()
    for t in producers + [post]:
        t.start()
    try:
        for _ in budget.rounds():
            items, started = zip(*(ready.get() for _ in range(batch)))
            xs, lbs = zip(*items)
            done.put((pipe.network(pipe.to_input(list(xs))), lbs, started))
    finally:
        done.put(None)
        post.join()
        seconds = time.perf_counter() - t0
        stop.set()
        for t in producers:
            t.join()
    return {"frames": counted[0], "seconds": seconds, "frames_per_s": counted[0] / seconds,
            "latency": summarize(latencies)}


# --- FLOPs and bytes -----------------------------------------------------------------------------


def _rnn_flops(module, inputs) -> int:
    """Multiply-adds x 2 of an nn.LSTM/GRU/RNN call (FlopCounterMode does not see their fused CPU kernels)."""
    from torch import nn

    x = inputs[0] if inputs else None
    if not hasattr(x, "shape"):
        return 0
    if x.dim() == 2:
        n, steps = 1, x.shape[0]
    else:
        n, steps = (x.shape[0], x.shape[1]) if module.batch_first else (x.shape[1], x.shape[0])
    gates = 4 if isinstance(module, nn.LSTM) else 3 if isinstance(module, nn.GRU) else 1
    dirs = 2 if module.bidirectional else 1
    h, total = module.hidden_size, 0
    for layer in range(module.num_layers):
        cin = module.input_size if layer == 0 else h * dirs
        total += dirs * 2 * n * steps * gates * h * (cin + h)
    return total


class CostCounter:
    """FLOPs (torch.utils.flop_counter, plus RNN modules it cannot see) and tensor bytes per stage.

    `bytes`: every non-view op's input and output tensor sizes, as eager PyTorch moves them.
    `bytes_fused`: the same without pointwise and batch-norm ops, which an inference compiler
    (TensorRT) folds into the producing convolution or GEMM: closer to a deployed engine's traffic.
    Use: `with CostCounter(model) as cc: pipeline.run(frames, cc.lap)`; then `cc.stages`.
    """

    def __init__(self, model) -> None:
        self.model = model
        self.stages: dict[str, dict[str, int]] = {}
        self._mark = (0, 0, 0)
        self._rnn = 0

    def totals(self) -> tuple[int, int, int]:
        return int(self._flops.get_total_flops()) + self._rnn, self._bytes.total, self._bytes.fused

    def lap(self, name: str) -> None:
        now = self.totals()
        s = self.stages.setdefault(name, {"flops": 0, "bytes": 0, "bytes_fused": 0})
        for key, v, m in zip(("flops", "bytes", "bytes_fused"), now, self._mark):
            s[key] += v - m
        self._mark = now

    def __enter__(self) -> "CostCounter":
        from torch import nn
        from torch.utils.flop_counter import FlopCounterMode

        self._flops, self._bytes = FlopCounterMode(display=False), _byte_counter()
        self._hooks, before = [], {}

        def pre(mod, inputs):
            before[id(mod)] = self._flops.get_total_flops()

        def post(mod, inputs, output):
            if self._flops.get_total_flops() == before.pop(id(mod), 0):
                self._rnn += _rnn_flops(mod, inputs)

        for mod in self.model.modules():
            if isinstance(mod, nn.RNNBase):
                self._hooks += [mod.register_forward_pre_hook(pre), mod.register_forward_hook(post)]
        self._flops.__enter__()
        self._bytes.__enter__()
        self._mark = self.totals()
        return self

    def __exit__(self, *exc) -> None:
        self._bytes.__exit__(*exc)
        self._flops.__exit__(*exc)
        for h in self._hooks:
            h.remove()


def _byte_counter():
    """A TorchDispatchMode that adds up the tensor bytes of every op (torch imported only here)."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten

    class ByteCounter(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.total = self.fused = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if not getattr(func, "is_view", False):
                leaves, _ = tree_flatten((args, kwargs, out))
                n = sum(t.numel() * t.element_size() for t in leaves if isinstance(t, torch.Tensor))
                self.total += n
                if torch.Tag.pointwise not in func.tags and "batch_norm" not in func.name():
                    self.fused += n
            return out

    return ByteCounter()


def stage_costs(model, run) -> dict[str, dict[str, int]]:
    """{stage: {flops, bytes, bytes_fused}} of one `run(lap)` (torch pipelines only)."""
    with CostCounter(model) as cc:
        run(cc.lap)
    return cc.stages
