"""Timing loops, latency statistics and peak memory for `spotrt bench`.

Wall-clock time (`time.perf_counter`) around work that ends in a synchronization: the caller's
step returns only when its results are on the host (or calls the device's sync), so each sample is
the latency a user sees. Interleaved loops run every contestant once per round, so all of them see
the same machine load; their ratio is the number to trust on a busy machine, not their absolute values.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import numpy as np


def summarize(seconds) -> dict:
    """Latency samples (s) -> {n, mean_ms, median_ms, p90_ms, p99_ms, min_ms, max_ms}."""
    a = np.asarray(list(seconds), dtype=np.float64) * 1e3
    if a.size == 0:
        return {"n": 0, "mean_ms": None, "median_ms": None, "p90_ms": None, "p99_ms": None, "min_ms": None,
                "max_ms": None}
    q = np.percentile(a, [50, 90, 99])
    return {"n": int(a.size), "mean_ms": float(a.mean()), "median_ms": float(q[0]), "p90_ms": float(q[1]),
            "p99_ms": float(q[2]), "min_ms": float(a.min()), "max_ms": float(a.max())}


class Budget:
    """How long one measurement runs: a number of iterations, or seconds (at least one iteration)."""

    def __init__(self, iterations: int | None = None, duration: float | None = None, warmup: int = 0) -> None:
        self.iterations, self.duration, self.warmup = iterations, duration, warmup

    def rounds(self, contestants: int = 1) -> Iterator[int]:
        """Round indices; with a duration, each contestant gets about `duration` seconds in all."""
        if self.duration is None:
            yield from range(self.iterations or 1)
            return
        end = time.perf_counter() + self.duration * contestants
        i = 0
        while i == 0 or time.perf_counter() < end:
            yield i
            i += 1


class Laps:
    """Stage timer: `lap(name)` closes the stage running since the previous lap (after `sync`)."""

    def __init__(self, sync: Callable[[], None] | None = None) -> None:
        self.sync = sync
        self.times: dict[str, float] = {}
        self.t = time.perf_counter()

    def __call__(self, name: str) -> None:
        if self.sync is not None:
            self.sync()
        now = time.perf_counter()
        self.times[name] = self.times.get(name, 0.0) + now - self.t
        self.t = now


def no_lap(name: str) -> None:
    """The lap function of end-to-end runs: no stage boundaries, no syncs."""


def staged(step: Callable[[int, Callable], None], budget: Budget, sync=None) -> dict[str, list[float]]:
    """Per-stage samples of `step(i, lap)` (stages synced at every lap)."""
    for i in range(budget.warmup):
        step(i, no_lap)
    samples: dict[str, list[float]] = {}
    for i in budget.rounds():
        laps = Laps(sync)
        step(i, laps)
        for name, t in laps.times.items():
            samples.setdefault(name, []).append(t)
    return samples


def interleaved(steps: dict[str, Callable[[int], object]], budget: Budget) -> dict[str, list[float]]:
    """Latency samples of each step, run in turn in every round (a..z, a..z, ...); `steps[k](i)` must
    return only when its results are on the host."""
    for i in range(budget.warmup):
        for step in steps.values():
            step(i)
    samples: dict[str, list[float]] = {k: [] for k in steps}
    for i in budget.rounds(len(steps)):
        for name, step in steps.items():
            t = time.perf_counter()
            step(i)
            samples[name].append(time.perf_counter() - t)
    return samples


def reset_peak_rss() -> bool:
    """Reset the kernel's high-water mark of this process's RSS (Linux); False where it cannot."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_bytes() -> int:
    """Peak resident set size: VmHWM (since the last reset) on Linux, else the process's ru_maxrss."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


class PeakMemory:
    """Peak host RSS (and torch's peak device memory on a CUDA device) over a `with` block."""

    def __init__(self, device: str = "cpu") -> None:
        self.device = device
        self.host_mib: float | None = None
        self.device_mib: float | None = None
        self.scope = "measurement"

    def __enter__(self) -> "PeakMemory":
        self.scope = "measurement" if reset_peak_rss() else "process"
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.reset_peak_memory_stats(self.device)
        return self

    def __exit__(self, *exc) -> None:
        self.host_mib = peak_rss_bytes() / 2**20
        if self.device.startswith("cuda"):
            import torch

            self.device_mib = torch.cuda.max_memory_allocated(self.device) / 2**20
