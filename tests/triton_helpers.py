"""Real Triton servers on 127.0.0.1 for the serving tests: `spotrt serve` (PyTriton) in a subprocess,
and PyTriton's bundled `tritonserver` on a model repository written by `spotrt export --triton-repo`.

PyTriton pins numpy < 2, so it usually lives in its own environment (`make serve-venv` -> .venv-serve):
the servers run with the first Python that imports pytriton of $SPOTRT_SERVE_PYTHON, this
interpreter and .venv-serve/bin/python. Without one the tests skip, except where
SPOTRT_REQUIRE_TRITON=1 (CI), where they fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from functools import lru_cache
from pathlib import Path

from runtime_helpers import free_ports

ROOT = Path(__file__).resolve().parent.parent
READY = "spotrt: serving model"


@lru_cache(maxsize=1)
def serve_python() -> tuple[str | None, str]:
    """(a Python that imports pytriton and spotrt, or None; why not)."""
    candidates = [os.environ.get("SPOTRT_SERVE_PYTHON"), sys.executable, str(ROOT / ".venv-serve" / "bin" / "python")]
    tried = []
    for py in [c for c in candidates if c]:
        if not Path(py).exists():
            tried.append(f"{py}: absent")
            continue
        r = subprocess.run([py, "-c", "import pytriton.triton, spotrt.serve.answer, onnxruntime"], cwd=ROOT,
                           capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        if r.returncode == 0:
            return py, ""
        tried.append(f"{py}: {(r.stderr.strip().splitlines() or ['fails'])[-1]}")
    return None, "; ".join(tried)


def require_triton() -> str:
    """The serving Python, or skip (fail where SPOTRT_REQUIRE_TRITON=1) saying why."""
    import pytest

    py, why = serve_python()
    if py is None:
        (pytest.fail if os.environ.get("SPOTRT_REQUIRE_TRITON") == "1" else pytest.skip)(
            f"no Python with PyTriton (make serve-venv): {why}")
    try:
        import tritonclient.grpc  # noqa: F401
    except ImportError:
        (pytest.fail if os.environ.get("SPOTRT_REQUIRE_TRITON") == "1" else pytest.skip)(
            "tritonclient is not installed in the test environment (pip install 'spotrt[triton-client]')")
    return py


def _env(python: str) -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


class _Reader(threading.Thread):
    """Keeps a subprocess's output (so its pipe never fills) and signals a line that starts with `ready`."""

    def __init__(self, stream, ready: str | None) -> None:
        super().__init__(daemon=True)
        self.stream, self.ready_text, self.lines = stream, ready, []
        self.ready = threading.Event()

    def run(self) -> None:
        for line in self.stream:
            self.lines.append(line.rstrip("\n"))
            if self.ready_text and line.startswith(self.ready_text):
                self.ready.set()


class ServeProcess:
    """`spotrt serve MODEL --...` on 127.0.0.1 with free ports. `kill()` stops it the hard way (SIGKILL:
    the server process and the tritonserver it started), `start()` brings it back on the same ports."""

    def __init__(self, model, python: str, args=(), ports=None, log_dir=None) -> None:
        self.model, self.python, self.args = str(model), python, list(args)
        self.grpc, self.http, self.metrics = ports or free_ports(3)
        self.log_dir = Path(log_dir or tempfile.mkdtemp(prefix="spotrt-serve-"))
        self.proc, self.reader, self.starts = None, None, 0

    @property
    def url(self) -> str:
        return f"grpc://127.0.0.1:{self.grpc}"

    def start(self, timeout: float = 90.0) -> "ServeProcess":
        self.starts += 1
        cmd = [self.python, "-m", "spotrt.cli", "serve", "--model", self.model, "--grpc-port", str(self.grpc),
               "--http-port", str(self.http), "--metrics-port", str(self.metrics),
               "--log-file", str(self.log_dir / f"triton.{self.starts}.log"),
               "--workspace", str(self.log_dir / f"workspace.{self.starts}"), *self.args]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(self.python), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True)
        self.reader = _Reader(self.proc.stderr, READY)
        self.reader.start()
        t0 = time.monotonic()
        while not self.reader.ready.wait(0.2):
            if self.proc.poll() is not None or time.monotonic() - t0 > timeout:
                self.kill()
                raise RuntimeError(f"spotrt serve did not start: {self.reader.lines[-15:]}")
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            shm = group_shm(self.proc.pid)
            os.killpg(self.proc.pid, 9)  # its own session: the server and the tritonserver it started
            self.proc.wait(timeout=30)
            # what a killed server cannot clean: its workspace and the shared memory its processes mapped
            shutil.rmtree(self.log_dir / f"workspace.{self.starts}", ignore_errors=True)
            time.sleep(0.2)
            for path in shm:
                Path(path).unlink(missing_ok=True)

    def stop(self) -> int | None:
        """SIGTERM, as a service manager stops it -> exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def rss_kib(self) -> int:
        """Resident memory of the server's whole process group (spotrt serve, tritonserver, its stub)."""
        return group_rss_kib(self.proc.pid)


def _group_pids(pgid: int) -> list[Path]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if int((d / "stat").read_text().rsplit(")", 1)[1].split()[2]) == pgid:
                    out.append(d)
            except (OSError, IndexError, ValueError):
                continue
    return out


def group_shm(pgid: int) -> set[str]:
    """The /dev/shm files that the processes of a group have mapped (Python backend and PyTriton regions)."""
    found = set()
    for d in _group_pids(pgid):
        try:
            found.update(ln.split()[-1] for ln in (d / "maps").read_text().splitlines() if " /dev/shm/" in ln)
        except OSError:
            continue
    return found


def group_rss_by_name(pgid: int) -> dict[str, int]:
    """Resident memory (KiB) of a process group's processes, summed by command name."""
    out: dict[str, int] = {}
    for d in _group_pids(pgid):
        try:
            name = (d / "comm").read_text().strip()
            out[name] = out.get(name, 0) + next(int(ln.split()[1]) for ln in (d / "status").read_text().splitlines()
                                                 if ln.startswith("VmRSS:"))
        except (OSError, StopIteration, ValueError):
            continue
    return out


def group_rss_kib(pgid: int) -> int:
    total = 0
    for d in _group_pids(pgid):
        try:
            total += next(int(ln.split()[1]) for ln in (d / "status").read_text().splitlines()
                          if ln.startswith("VmRSS:"))
        except (OSError, StopIteration, ValueError):
            continue
    return total


def model_metrics(metrics_port: int, model: str = "spotrt") -> dict[str, float]:
    """Triton's Prometheus counters of one model, summed over its versions: {name: value}
    (nv_inference_count: frames inferred, nv_inference_exec_count: batches run, ...)."""
    import urllib.request

    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or f'model="{model}"' not in line:
            continue
        name, _, value = line.rpartition(" ")
        key = name.split("{", 1)[0]
        out[key] = out.get(key, 0.0) + float(value)
    return out


class BundledTritonServer:
    """PyTriton's own `tritonserver` binary (with its Python backend) on a model repository, 127.0.0.1."""

    def __init__(self, repo, python: str) -> None:
        self.repo, self.python = Path(repo), python
        self.grpc, self.http, self.metrics = free_ports(3)
        self.proc, self.reader, self.dist = None, None, None

    @property
    def url(self) -> str:
        return f"grpc://127.0.0.1:{self.grpc}"

    def start(self, timeout: float = 90.0, expect_ready: bool = True) -> "BundledTritonServer":
        info = subprocess.run([self.python, "-c", "import pytriton, sys, sysconfig; from pytriton.utils.distribution "
                               "import get_libs_path; print(pytriton.__file__); print(get_libs_path()); "
                               "print(sysconfig.get_config_var('LIBDIR')); print(f'{sys.version_info[0]}.{sys.version_info[1]}')"],
                              capture_output=True, text=True, check=True, cwd=ROOT).stdout.split("\n")
        pkg, libs, libdir, version = Path(info[0]).parent, info[1], info[2], info[3]
        self.dist = Path(tempfile.mkdtemp(prefix="spotrt-tritonserver-"))
        shutil.copytree(pkg / "tritonserver", self.dist / "tritonserver",
                        ignore=shutil.ignore_patterns("python_backend_stubs"))
        shutil.copy(pkg / "tritonserver" / "python_backend_stubs" / version / "triton_python_backend_stub",
                    self.dist / "tritonserver" / "backends" / "python" / "triton_python_backend_stub")
        env = _env(self.python)
        env["LD_LIBRARY_PATH"] = ":".join(p for p in (libdir, libs, os.environ.get("LD_LIBRARY_PATH")) if p)
        env["PATH"] = f"{Path(self.python).parent}:{env['PATH']}"  # the stub's Python is the one on PATH
        cmd = [str(self.dist / "tritonserver" / "bin" / "tritonserver"), f"--model-repository={self.repo}",
               f"--backend-directory={self.dist / 'tritonserver' / 'backends'}",
               "--backend-config=python,shm-default-byte-size=4194304",
               "--http-address=127.0.0.1", f"--http-port={self.http}", "--grpc-address=127.0.0.1",
               f"--grpc-port={self.grpc}", "--metrics-address=127.0.0.1", f"--metrics-port={self.metrics}",
               "--exit-on-error=false", "--strict-readiness=false"]
        self.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.reader = _Reader(self.proc.stdout, None)
        self.reader.start()
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"tritonserver exited: {self.reader.lines[-15:]}")
            if any("Started GRPCInferenceService" in ln for ln in self.reader.lines):
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"tritonserver did not start: {self.reader.lines[-15:]}")

    def log(self) -> str:
        return "\n".join(self.reader.lines if self.reader else [])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(timeout=30)
        if self.dist is not None:
            shutil.rmtree(self.dist, ignore_errors=True)
