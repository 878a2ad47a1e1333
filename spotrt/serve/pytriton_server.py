"""`spotrt serve`: the spotter as a Triton model, served by the real `tritonserver` that PyTriton ships.

    serve("export/model.onnx", max_batch=8, queue_delay_us=2000, instances=2)   # blocks; Ctrl-C stops it

Each model instance is its own spotter (its own ONNX Runtime session or TensorRT context), loaded
by spotrt.api.load_spotter exactly as `spotrt run` loads one; Triton's dynamic batcher joins
requests of the same frame size up to `max_batch` frames, waiting at most `queue_delay_us`, and
hands each batch to a free instance. The model answers through spotrt.serve.answer (tensors:
spotrt.formats.triton). Triton
itself refuses requests whose tensors do not match the declared names, types and shapes, and a
batch over `max_batch`, with an error response; a request the model cannot answer gets an error
response too; neither stops the server. It listens on 127.0.0.1 unless `host` says otherwise.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import sys
import sysconfig
import threading
from pathlib import Path
from typing import Callable

from ..errors import SpotrtError
from ..formats import triton as tensors
from .answer import answer_requests
from .repository import check_batching, instances_spin

SERVE_EXTRA = "pip install 'spotrt[serve]' (in its own environment: PyTriton pins numpy < 2; see README, serving)"


def import_pytriton():
    """(Triton, TritonConfig, ModelConfig, DynamicBatcher, Tensor) or one clear error line."""
    try:
        from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
        from pytriton.triton import Triton, TritonConfig
    except ImportError as exc:
        raise SpotrtError(f"serve: {exc.name or 'pytriton'} is not installed here, expected {SERVE_EXTRA}") from None
    return Triton, TritonConfig, ModelConfig, DynamicBatcher, Tensor


def check_settings(host: str, ports: dict[str, int], max_batch: int, queue_delay_us: int, instances: int,
                   name: str) -> None:
    """One clear line for a flag out of range, before anything is loaded."""
    for flag, port in ports.items():
        if not 1 <= int(port) <= 65535:
            raise SpotrtError(f"serve {flag}: found {port}, expected a port from 1 to 65535")
    if len(set(ports.values())) != len(ports):
        raise SpotrtError(f"serve ports: found {sorted(ports.values())}, expected three different ports")
    check_batching(max_batch, queue_delay_us, instances, "serve")
    if not re.fullmatch(r"[A-Za-z0-9._-]+", name):
        raise SpotrtError(f"serve --name: found {name!r}, expected letters, digits, '.', '_' or '-'")
    for flag, port in ports.items():
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Triton does: a closed connection's
            try:                                                     # TIME_WAIT does not hold the port
                s.bind((host, int(port)))
            except OSError as exc:
                raise SpotrtError(f"serve {flag} {port} on {host}: cannot listen there ({exc.strerror}), expected a "
                                  "free port on an address of this machine") from None


def python_library_path() -> None:
    """Let the Python backend's stub load this interpreter's libpython, not another of the same version.

    Triton's Python backend starts `triton_python_backend_stub`, linked against libpython3.X.so; the
    dynamic linker takes the first it finds (often the system's), whose C modules may not match this
    interpreter's standard library (a pyenv 3.11.7 with Debian's 3.11.2 library fails in
    multiprocessing). The stub inherits the server's environment, so the interpreter's own
    library folder goes first on LD_LIBRARY_PATH.
    """
    libdir = sysconfig.get_config_var("LIBDIR")
    soname = sysconfig.get_config_var("INSTSONAME") or ""
    if not libdir or ".so" not in soname or not (Path(libdir) / soname).exists():
        return  # a static interpreter: the stub finds what it finds
    current = os.environ.get("LD_LIBRARY_PATH", "")
    if libdir not in current.split(":"):
        os.environ["LD_LIBRARY_PATH"] = f"{libdir}:{current}" if current else libdir


def make_infer(spotter) -> Callable:
    """The inference callable of one model instance: a list of requests -> a list of responses."""

    def infer(requests):
        # PyTriton answers a whole batch or fails it: a request it cannot answer fails the requests
        # Triton batched with it (the stock repository's model.py answers each request apart).
        results = answer_requests(spotter, [(r["frames"], r["scale"], r["min_score"]) for r in requests])
        for r in results:
            if isinstance(r, Exception):
                raise r
        return results

    return infer


def serve(model=None, backend: str = "auto", device: str = "cpu", threads: int | None = None,
          host: str = "127.0.0.1", grpc_port: int = 8001, http_port: int = 8000, metrics_port: int = 8002,
          max_batch: int = 8, queue_delay_us: int = 2000, instances: int = 1, name: str = tensors.MODEL_NAME,
          log_file=None, workspace=None, ready: Callable[[str], None] | None = None,
          stop: threading.Event | None = None) -> None:
    """Serve the spotter until Ctrl-C, SIGTERM or `stop` is set; `ready` gets the line that says where.

    `workspace`: the folder where PyTriton keeps its model store and sockets (default: a new one under
    ~/.cache/pytriton); it is removed when the server stops.
    """
    ports = {"--grpc-port": grpc_port, "--http-port": http_port, "--metrics-port": metrics_port}
    check_settings(host, ports, max_batch, queue_delay_us, instances, name)
    Triton, TritonConfig, ModelConfig, DynamicBatcher, Tensor = import_pytriton()
    from ..api import load_spotter

    spotters = [load_spotter(model, backend, device, threads=threads, spinning=instances_spin(instances))
                for _ in range(instances)]
    kind = spotters[0].name if hasattr(spotters[0], "name") else backend
    python_library_path()
    config = TritonConfig(http_address=host, http_port=http_port, grpc_address=host, grpc_port=grpc_port,
                          metrics_address=host, metrics_port=metrics_port, log_verbose=0,
                          log_file=Path(log_file).resolve() if log_file else None)
    stop = stop or threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda *_a: stop.set())
    triton = Triton(config=config, workspace=Path(workspace).resolve() if workspace else None)
    try:
        triton.bind(model_name=name, infer_func=[make_infer(s) for s in spotters],
                    inputs=[Tensor(name=t.name, dtype=t.numpy, shape=t.dims) for t in tensors.INPUTS],
                    outputs=[Tensor(name=t.name, dtype=t.numpy, shape=t.dims) for t in tensors.OUTPUTS],
                    config=ModelConfig(batching=True, max_batch_size=max_batch,
                                       batcher=DynamicBatcher(max_queue_delay_microseconds=queue_delay_us)))
        try:
            triton.run()
        except Exception as exc:  # the server or the model did not come up: PyTriton's own exception types
            line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise SpotrtError(f"serve: Triton did not start ({line[:300]}), expected a running server") from None
        where = (f"spotrt: serving model {name} ({model or 'the shipped model'}, {kind}, {instances} instance"
                 f"{'s' if instances > 1 else ''}, max batch {max_batch}, queue delay {queue_delay_us} us) on "
                 f"grpc://{host}:{grpc_port}, http://{host}:{http_port}, metrics http://{host}:{metrics_port}/metrics")
        (ready or (lambda line: print(line, file=sys.stderr, flush=True)))(where)
        while not stop.wait(0.5):
            if not triton.is_alive():
                raise SpotrtError("serve: the Triton server stopped by itself (see its log above), expected it to run "
                                  "until stopped")
    finally:
        triton.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for s in spotters:
            close = getattr(s, "close", None)
            if callable(close):
                close()


__all__ = ["serve", "import_pytriton", "check_settings", "make_infer", "python_library_path"]
