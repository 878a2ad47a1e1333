"""The frame pipeline: capture -> preprocess -> infer -> postprocess -> sinks. Never imports torch.

Each stage is a thread joined to the next by a bounded queue, so reading and drawing overlap
inference while memory stays bounded. Capture runs one thread per source; the preprocess stage
gathers the frames that are ready (from any source) into one batch of the runner's size. The stages
are the runner's own path from frames to words (spotrt/runner.py: `prepare` -> `stack` -> `run` ->
`words`, the path `Runner.spot` takes), or the stage adapter a runner gives (`pipeline_adapter`,
for a remote server). Every frame a source yields leaves the pipeline as exactly one result,
processed or dropped with a reason, in each source's order. Each processed frame's latency, from
the moment its source had it decoded (`Frame.captured`) to its result reaching the sinks, is in its
result and, as p50/p99, in the summary.

    pipe = Pipeline([open_source("clip.mp4")], load_spotter(...), [JsonlSink("out.jsonl")])
    summary = pipe.run()          # Ctrl-C / SIGTERM stop it cleanly; sinks are closed either way
    print(format_summary(summary))
"""

from __future__ import annotations

import queue
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..draw import draw_words
from ..imageops import Letterbox
from ..runner import Runner
from .frame import Frame, VideoSource
from .tracking import Tracker

STAGES = ("capture", "preprocess", "infer", "postprocess", "sink")
DROP_EVERY = "every"
_END = object()


@dataclass
class FrameResult:
    """One frame leaving the pipeline: its tracked words, or `frame.dropped` says why there are none."""

    frame: Frame
    words: list = field(default_factory=list)   # TrackedWord
    x: np.ndarray | None = None                 # preprocessed input (until it is batched)
    letterbox: Letterbox | None = None
    raw: object = None                          # this frame's raw outputs, or its words (per-frame backends)
    done: bool = False                          # went through postprocessing
    latency_s: float | None = None              # capture -> result (processed frames), set at the sinks
    release: Callable[[], None] | None = None   # gives a live source's in-flight slot back (after inference)
    _annotated: np.ndarray | None = None

    def free(self) -> None:
        if self.release is not None:
            self.release, release = None, self.release
            release()

    def annotated(self) -> np.ndarray | None:
        """The frame with its words drawn (label: the stable reading once there is one), made once."""
        if self._annotated is None and self.frame.image is not None:
            self._annotated = draw_words(self.frame.image, [_Label(w) for w in self.words])
        return self._annotated


class _Label:
    def __init__(self, tw) -> None:
        self.quad = tw.quad
        self.text = f"{tw.stable or tw.text}" + ("" if tw.stable else "?")


class _RunnerStages:
    """A runner's shared path, split into the pipeline's stages (preprocess, infer, postprocess)."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.batch = int(runner.batch)

    def prep(self, r: FrameResult) -> None:
        r.x, r.letterbox = self.runner.prepare(r.frame.image)

    def infer(self, rs: list[FrameResult]) -> None:
        x = self.runner.stack([r.x for r in rs])
        for r in rs:
            r.x = None  # the batch holds it now; keep queued results small
        out = self.runner.run(x)
        for i, r in enumerate(rs):
            r.raw = {k: v[i] for k, v in out.items()}

    def post(self, r: FrameResult) -> list:
        return self.runner.words(r.raw, r.letterbox)  # reads runner.cfg now: set_min_score() takes effect


def stages_of(runner: Runner):
    """The runner's own stage adapter where it has one, else its shared path (see the module docstring)."""
    if not isinstance(runner, Runner):
        raise TypeError(f"spotter: found {type(runner).__name__}, expected a spotrt.runner.Runner "
                        "(load one with spotrt.api.load_spotter)")
    return runner.pipeline_adapter() or _RunnerStages(runner)


class StageStats:
    """Busy time and items per stage, updated live by the stage threads (read with `snapshot`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.busy = {s: 0.0 for s in STAGES}
        self.items = {s: 0 for s in STAGES}
        self.frames_in = Counter()       # per stream: records yielded by the source
        self.processed = Counter()       # per stream
        self.dropped = Counter()         # by reason
        self.words = 0
        self.batches = 0
        self.latency: list[float] = []   # seconds, capture -> result, per processed frame
        self.started = time.perf_counter()

    def add(self, stage: str, seconds: float, items: int) -> None:
        with self._lock:
            self.busy[stage] += seconds
            self.items[stage] += items

    def snapshot(self) -> dict:
        with self._lock:
            wall = time.perf_counter() - self.started
            processed = sum(self.processed.values())
            busy = dict(self.busy)
            latency = latency_summary(self.latency)
            return {
                "wall_s": wall,
                "frames_in": sum(self.frames_in.values()),
                "frames_in_per_stream": dict(self.frames_in),
                "processed": processed,
                "dropped": dict(self.dropped),
                "words": self.words,
                "batches": self.batches,
                "fps": processed / wall if wall > 0 else 0.0,
                "stage_ms": {s: 1000 * busy[s] / self.items[s] if self.items[s] else 0.0 for s in STAGES},
                "stage_fps": {s: self.items[s] / busy[s] if busy[s] > 0 else 0.0 for s in STAGES},
                "stage_busy_s": busy,
                # Stages at work at once on average: 1.0 = as if run one after another.
                "overlap": sum(busy.values()) / wall if wall > 0 else 0.0,
                "latency_ms": latency,
            }


def latency_summary(seconds: list[float]) -> dict:
    """{frames, p50, p99, max} in ms of capture-to-result latencies (nearest-rank percentiles)."""
    if not seconds:
        return {"frames": 0, "p50": None, "p99": None, "max": None}
    xs = np.sort(np.asarray(seconds, np.float64)) * 1000.0
    rank = lambda q: float(xs[min(len(xs) - 1, max(0, int(np.ceil(q * len(xs))) - 1))])  # noqa: E731
    return {"frames": len(xs), "p50": rank(0.50), "p99": rank(0.99), "max": float(xs[-1])}


class Pipeline:
    """Runs sources through a runner (spotrt/runner.py) into sinks; see the module docstring.

    every: process every Nth frame of each source (the others are results dropped with "every").
    max_frames: stop each source after this many frames. queue_size: results each queue holds.
    tracker: makes one Tracker per stream. status: called with a snapshot every `status_every` s.
    """

    def __init__(self, sources: list[VideoSource], spotter, sinks: list, every: int = 1,
                 max_frames: int | None = None, queue_size: int = 4, tracker: Callable[[], Tracker] = Tracker,
                 status: Callable[[dict], None] | None = None, status_every: float = 5.0) -> None:
        if every < 1:
            raise ValueError("every: expected >= 1")
        self.sources, self.sinks, self.every, self.max_frames = sources, sinks, every, max_frames
        self.backend = stages_of(spotter)
        self.trackers = {s.stream: tracker() for s in sources}
        for t in self.trackers.values():
            t.max_gap *= every  # a track may miss as many *processed* frames as without --every
        self.status, self.status_every = status, status_every
        self.stats = StageStats()
        self.stop_event = threading.Event()
        self.stop_reason: str | None = None
        self.error: BaseException | None = None
        n = max(1, self.backend.batch)
        self._q_frames = queue.Queue(maxsize=max(queue_size, n) * max(1, len(sources)))
        self._q_prepped = queue.Queue(maxsize=queue_size)
        self._q_inferred = queue.Queue(maxsize=queue_size)
        self._q_done = queue.Queue(maxsize=queue_size)

    def stop(self, reason: str = "stopped") -> None:
        """Stop reading; frames already read still go through, then the sinks are closed."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self.stop_event.set()

    def _fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
        self.stop("error")

    # -- stages -----------------------------------------------------------------------------------
    def _capture(self, source: VideoSource) -> None:
        # A live source's frames are taken only when the network can take them (at most one batch
        # of them between its capture and the end of inference): the others wait in the source,
        # where a newer frame replaces them, instead of in this pipeline's queues (latency).
        slots = threading.Semaphore(self.backend.batch) if source.live else None
        try:
            it = source.frames(self.stop_event)
            count = 0
            while self.max_frames is None or count < self.max_frames:
                while slots is not None and not slots.acquire(timeout=0.1):
                    if self.stop_event.is_set():
                        break
                try:
                    frame = next(it)
                except StopIteration:
                    break
                count += 1
                if frame.dropped is None and frame.index % self.every:
                    frame.dropped = DROP_EVERY
                result = FrameResult(frame)
                if slots is not None:
                    if frame.dropped is None:
                        result.release = slots.release
                    else:
                        slots.release()
                self.stats.add("capture", frame.read_s, 1)
                with self.stats._lock:
                    self.stats.frames_in[frame.stream] += 1
                self._q_frames.put(result)
        except BaseException as exc:  # a source's bug must not hang the other stages
            self._fail(exc)
        finally:
            self._q_frames.put(_END)

    def _preprocess(self) -> None:
        ended, n = 0, self.backend.batch
        while ended < len(self.sources):
            item = self._q_frames.get()
            if item is _END:
                ended += 1
                continue
            bundle = [item]
            todo = 1 if item.frame.dropped is None else 0
            # Take what is ready now (from any source) up to one full batch; never wait for more.
            while todo < n and len(bundle) < 4 * n + 16:
                try:
                    more = self._q_frames.get_nowait()
                except queue.Empty:
                    break
                if more is _END:
                    ended += 1
                    continue
                bundle.append(more)
                todo += more.frame.dropped is None
            self._timed("preprocess", self.backend.prep, bundle)
            self._q_prepped.put(bundle)
        self._q_prepped.put(_END)

    def _timed(self, stage: str, fn, bundle: list[FrameResult]) -> None:
        live = [r for r in bundle if r.frame.dropped is None]
        if not live or self.error is not None:
            return
        t0 = time.perf_counter()
        try:
            if stage == "infer":
                fn(live)
            else:
                for r in live:
                    fn(r)
        except BaseException as exc:
            self._fail(exc)
        self.stats.add(stage, time.perf_counter() - t0, len(live))

    def _infer(self) -> None:
        while (bundle := self._q_prepped.get()) is not _END:
            live = [r for r in bundle if r.frame.dropped is None]
            for i in range(0, len(live), self.backend.batch):
                self._timed("infer", self.backend.infer, live[i:i + self.backend.batch])
                with self.stats._lock:
                    self.stats.batches += 1
            for r in live:
                r.free()
            self._q_inferred.put(bundle)
        self._q_inferred.put(_END)

    def _post_one(self, r: FrameResult) -> None:
        words = self.backend.post(r)
        r.raw = None
        if r.frame.dropped is not None:  # the backend lost it (a remote server went away): a dropped record
            return
        r.words = self.trackers[r.frame.stream].update(words, r.frame.index)
        r.done = True

    def _postprocess(self) -> None:
        while (bundle := self._q_inferred.get()) is not _END:
            self._timed("postprocess", self._post_one, bundle)
            self._q_done.put(bundle)
        self._q_done.put(_END)

    def _sink(self) -> None:
        while (bundle := self._q_done.get()) is not _END:
            t0 = time.perf_counter()
            for r in bundle:
                r.free()
                if r.frame.dropped is None and not r.done:  # a stage failed before this frame was read
                    r.frame.dropped = f"error: {type(self.error).__name__}"
                if r.frame.dropped is None:
                    r.latency_s = time.perf_counter() - r.frame.captured
                for s in self.sinks:
                    try:
                        s.write(r)
                    except BaseException as exc:
                        self._fail(exc)
                f = r.frame
                with self.stats._lock:
                    if f.dropped is None:
                        self.stats.processed[f.stream] += 1
                        self.stats.words += len(r.words)
                        self.stats.latency.append(r.latency_s)
                    else:
                        self.stats.dropped[f.dropped] += 1
                r.frame.image = None
            self.stats.add("sink", time.perf_counter() - t0, sum(r.frame.dropped is None for r in bundle))

    # -- running ----------------------------------------------------------------------------------
    def run(self, handle_signals: bool = True) -> dict:
        """Run to the end of every source or until stopped -> the summary (see `format_summary`)."""
        previous = {}
        if handle_signals and threading.current_thread() is threading.main_thread():
            for sig, name in ((signal.SIGINT, "Ctrl-C"), (signal.SIGTERM, "SIGTERM")):
                previous[sig] = signal.signal(sig, lambda *_a, _n=name: self.stop(_n))
        self.stats = StageStats()
        threads = [threading.Thread(target=self._capture, args=(s,), name=f"capture-{s.stream}", daemon=True)
                   for s in self.sources]
        threads += [threading.Thread(target=fn, name=fn.__name__.strip("_"), daemon=True)
                    for fn in (self._preprocess, self._infer, self._postprocess, self._sink)]
        try:
            for t in threads:
                t.start()
            last = time.perf_counter()
            for t in threads:
                while t.is_alive():
                    t.join(0.1)  # short joins: signal handlers run on the main thread between them
                    if self.status and time.perf_counter() - last >= self.status_every:
                        last = time.perf_counter()
                        self.status(self.stats.snapshot())
        finally:
            for s in self.sources:
                try:
                    s.close()
                except Exception:
                    pass
            for s in self.sinks:
                try:
                    s.close()
                except BaseException as exc:
                    if self.error is None:
                        self.error = exc
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if self.error is not None:
            raise self.error
        summary = self.stats.snapshot()
        summary["stopped"] = self.stop_reason
        summary["reconnects"] = {s.uri: s.reconnects for s in self.sources if s.reconnects}
        summary["batch"] = self.backend.batch
        return summary


def format_summary(s: dict) -> str:
    dropped = ", ".join(f"{k}: {v}" for k, v in sorted(s["dropped"].items())) or "none"
    lines = [
        f"frames in: {s['frames_in']}, processed: {s['processed']}, dropped: {sum(s['dropped'].values())} ({dropped}), "
        f"words: {s['words']}" + (f"; stopped by {s['stopped']}" if s.get("stopped") else ""),
        f"throughput: {s['fps']:.1f} frames/s over {s['wall_s']:.1f} s (batch {s.get('batch', 1)}, "
        f"{s['batches']} inference calls)",
        "stage       ms/frame   frames/s",
    ]
    for st in STAGES:
        lines.append(f"{st:<11} {s['stage_ms'][st]:8.2f}   {s['stage_fps'][st]:8.1f}")
    serial = sum(s["stage_busy_s"].values())
    lines.append(f"overlap: {s['overlap']:.2f}x (stage time {serial:.1f} s in {s['wall_s']:.1f} s of wall time; "
                 "1.00 = stages one after another)")
    lat = s.get("latency_ms") or {}
    if lat.get("frames"):
        lines.append(f"latency capture -> result: p50 {lat['p50']:.0f} ms, p99 {lat['p99']:.0f} ms, "
                     f"max {lat['max']:.0f} ms ({lat['frames']} frames)")
    for uri, n in (s.get("reconnects") or {}).items():
        lines.append(f"reconnects: {uri}: {n}")
    return "\n".join(lines)


def format_status(s: dict) -> str:
    ms = " ".join(f"{st} {s['stage_ms'][st]:.0f}" for st in STAGES)
    return (f"{s['frames_in']} in, {s['processed']} processed, {sum(s['dropped'].values())} dropped, "
            f"{s['fps']:.1f} fps, ms/frame: {ms}, overlap {s['overlap']:.2f}")


__all__ = ["Pipeline", "FrameResult", "StageStats", "stages_of", "format_summary", "format_status",
           "latency_summary", "DROP_EVERY", "STAGES"]
