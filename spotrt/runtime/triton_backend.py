"""The Triton backend: frames read by a spotter on a Triton Inference Server, over gRPC. Never imports torch.

    spotter = TritonSpotter("grpc://127.0.0.1:8001")          # checks the server and the model now
    words = spotter.spot(frame)                                # one frame, waits for its words
    run_stream(["cam.mp4", "rtsp://cam2/live"], spotter=spotter)   # several requests on their way per stream

A Runner (spotrt/runner.py): constructing it connects and checks the served model; `infer(feed)`
sends one request of the served tensors (names, dtypes and shapes checked first); `close()`.

The server is `spotrt serve` or a stock Triton with a repository from `spotrt export --triton-repo`;
both answer the tensors of spotrt.formats.triton and read each frame exactly as the local backends
do (same letterbox, graph and thresholds), so the words are the same. The client sends each frame
as it is (uint8 BGR) with its scale and word-score threshold; Triton's dynamic batcher joins the
frames of all cameras into batches.

In the stream pipeline (`pipeline_adapter`) frames are sent with `async_infer`, at most `in_flight`
per stream on their way, and their results are taken in each stream's order. When the server goes
away the frames on their way are dropped records (`server: lost in flight (UNAVAILABLE)`), the
frames not yet sent wait, and the client reconnects with backoff, checking that the model is ready
and still has spotrt's tensors; after `timeout` seconds without the server it ends with one line.
An error response from the model drops its frame (`server: error response`, the message once on
stderr); several in a row end the run with that message.
"""

from __future__ import annotations

import sys
import threading
import time

import numpy as np

from ..errors import SpotrtError
from ..formats import triton as tensors
from ..runner import Runner, TensorSpec, check_feed

CONNECTION_CODES = ("UNAVAILABLE", "DEADLINE_EXCEEDED", "CANCELLED")
DROP_LOST = "server: lost in flight"
DROP_ERROR = "server: error response"
MAX_ERRORS_IN_A_ROW = 5
BACKOFF = (0.2, 2.0)  # seconds: first wait before trying the server again, and the longest
# Seconds past the client's own deadline (`timeout`) after which a request with no answer at all (no
# result, no error: a callback that never came) counts as lost in flight (TimeoutError).
ANSWER_GRACE_S = 10.0


def import_tritonclient():
    try:
        import tritonclient.grpc as grpcclient
        from tritonclient.utils import InferenceServerException
    except ImportError as exc:
        raise SpotrtError(f"run --server: {exc.name or 'tritonclient'} is not installed here, expected "
                          "pip install 'spotrt[triton-client]'") from None
    return grpcclient, InferenceServerException


def parse_server_url(url: str) -> str:
    """'grpc://host:port' (or 'host:port') -> 'host:port', or one clear error line."""
    text = str(url).strip()
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "grpc", text
    host, colon, port = rest.rstrip("/").rpartition(":")
    if scheme.lower() != "grpc" or not colon or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise SpotrtError(f"--server {text}: not a gRPC address, expected grpc://host:port (the gRPC port of "
                          "spotrt serve or Triton, 8001 by default)")
    return f"{host}:{int(port)}"


def status_code(exc) -> str:
    """'UNAVAILABLE' from a tritonclient exception's status 'StatusCode.UNAVAILABLE' ('' when none)."""
    status = exc.status() if callable(getattr(exc, "status", None)) else None
    return str(status or "").rpartition(".")[2]


def one_line(exc) -> str:
    """The line of an error response that says what went wrong (PyTriton sends the model's traceback)."""
    text = exc.message() if callable(getattr(exc, "message", None)) else str(exc)
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    named = [ln for ln in lines if "RequestError:" in ln or "SpotrtError:" in ln]
    line = named[-1].partition("Error: ")[2] if named else (lines[0] if lines else type(exc).__name__)
    return line[:300]


def _tensor_specs(meta: dict, key: str) -> dict:
    return {t["name"]: (t["datatype"], [int(d) for d in t["shape"]]) for t in meta.get(key, [])}


class _Pending:
    """One frame's request on its way: the callback fills it, the postprocess stage waits on it."""

    __slots__ = ("event", "result", "error", "on_done", "_lock")

    def __init__(self, on_done=None) -> None:
        self.event, self.result, self.error, self.on_done = threading.Event(), None, None, on_done
        self._lock = threading.Lock()

    def done(self, result, error) -> None:
        """The first answer counts (the callback's, or a timeout given up by this client); later ones don't."""
        with self._lock:
            if self.event.is_set():
                return
            self.result, self.error = result, error
            on_done, self.on_done = self.on_done, None
            self.event.set()
        if on_done is not None:
            on_done(self)


def lost_connection(error) -> bool:
    """Whether a failed request means the server (or the model) is gone, rather than an error answer."""
    return (status_code(error) in CONNECTION_CODES or isinstance(error, TimeoutError)
            or "not found" in one_line(error) or "not ready" in one_line(error))


class TritonSpotter(Runner):
    """A spotter on a Triton server: a Runner (spotrt/runner.py) whose `infer` sends the served model's
    tensors (spotrt.formats.triton) and whose pipeline stages keep several requests in flight."""

    name = "triton"

    def __init__(self, server: str, model: str = tensors.MODEL_NAME, timeout: float = 30.0, in_flight: int = 4,
                 scale: float = 1.0, min_score: float | None = None, log=None) -> None:
        if in_flight < 1:
            raise SpotrtError(f"--in-flight: found {in_flight}, expected a number of requests >= 1")
        if not timeout > 0:
            raise SpotrtError(f"--server-timeout: found {timeout}, expected seconds > 0")
        self.grpc, self.Error = import_tritonclient()
        self.url, self.address, self.model = str(server), parse_server_url(server), model
        self.timeout, self.in_flight = float(timeout), int(in_flight)
        self.scale, self.min_score = scale, min_score
        self.log = log or (lambda line: print(f"spotrt: {line}", file=sys.stderr, flush=True))
        self.client = None
        self.adapter: RemoteBackend | None = None
        self.reconnects = 0
        self.load()

    def describe(self) -> str:
        return f"server {self.url} model {self.model}"

    # -- connection ---------------------------------------------------------------------------------
    def _load(self) -> None:
        self.batch = self._connect()  # the server's max batch: frames one request may hold

    def _close(self) -> None:
        self._drop_client()

    def _drop_client(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            try:
                client.close()
            except Exception:  # closing a channel to a server that is gone: nothing left to free
                pass

    def _connect(self) -> int:
        """A new client; SpotrtError (one line) unless the server is up and the model is spotrt's and ready."""
        self._drop_client()
        where = f"server {self.url}"
        self.client = self.grpc.InferenceServerClient(self.address)
        wait = min(self.timeout, 5.0)
        try:
            self.client.is_server_live(client_timeout=wait)
        except self.Error as exc:
            raise SpotrtError(f"{where}: not reachable ({status_code(exc) or one_line(exc)}), expected a running "
                              "Triton server (spotrt serve) at that address") from None
        try:
            ready = self.client.is_model_ready(self.model, client_timeout=wait)
        except self.Error as exc:
            raise SpotrtError(f"{where}: cannot ask for model {self.model} ({one_line(exc)}), expected it served") from None
        if not ready:
            raise SpotrtError(f"{where}: model {self.model} is not ready (not loaded, still loading or failed to load), "
                              "expected a ready model (see the server's log)")
        try:
            meta = self.client.get_model_metadata(self.model, as_json=True, client_timeout=wait)
            config = self.client.get_model_config(self.model, as_json=True, client_timeout=wait)["config"]
        except self.Error as exc:
            raise SpotrtError(f"{where}: model {self.model}: no metadata ({one_line(exc)}), expected a ready model") from None
        max_batch = int(config.get("max_batch_size", 0) or 0)
        want_in = {t.name: (t.datatype, [-1, *t.dims]) for t in tensors.INPUTS}
        want_out = {t.name: (t.datatype, [-1, *t.dims]) for t in tensors.OUTPUTS}
        found_in, found_out = _tensor_specs(meta, "inputs"), _tensor_specs(meta, "outputs")
        if max_batch < 1 or found_in != want_in or any(found_out.get(k) != v for k, v in want_out.items()):
            raise SpotrtError(f"{where}: model {self.model}: found inputs {found_in} and max batch {max_batch}, "
                              f"expected spotrt's model (inputs {want_in}, outputs {sorted(want_out)}, batching on)")
        return max_batch

    def reconnect(self, why: str) -> None:
        """Wait for the server to be back (new client, model ready and spotrt's), with backoff; one line when
        it is not back within `timeout` seconds."""
        self.log(f"server {self.url}: lost ({why}); reconnecting")
        t0, wait, last = time.monotonic(), BACKOFF[0], why
        while True:
            try:
                self._connect()
            except SpotrtError as exc:
                last = str(exc).partition(": ")[2]
            else:
                self.reconnects += 1
                self.log(f"server {self.url}: reconnected after {time.monotonic() - t0:.1f} s")
                return
            if time.monotonic() - t0 + wait > self.timeout:
                raise SpotrtError(f"server {self.url}: not back after {time.monotonic() - t0:.0f} s ({last}), expected "
                                  f"the server to come back within --server-timeout {self.timeout:g} s")
            time.sleep(wait)
            wait = min(BACKOFF[1], wait * 2)

    # -- requests ---------------------------------------------------------------------------------
    def input_specs(self) -> dict[str, TensorSpec]:
        """The served model's inputs: n frames of any one size, a scale and a threshold for each."""
        return {t.name: TensorSpec(t.name, np.dtype(t.numpy), (None, *(None if d < 0 else d for d in t.dims)))
                for t in tensors.INPUTS}

    def feed(self, images) -> dict[str, np.ndarray]:
        """BGR frames of one size -> the request's inputs (this runner's scale and threshold for each)."""
        frames = np.stack([np.ascontiguousarray(im) for im in images])
        n = len(frames)
        score = tensors.MODEL_DEFAULT_SCORE if self.min_score is None else self.min_score
        return {"frames": frames, "scale": np.full((n, 1), self.scale, np.float32),
                "min_score": np.full((n, 1), score, np.float32)}

    def _request(self, feed: dict[str, np.ndarray]) -> list:
        inputs = []
        for spec in tensors.INPUTS:
            t = self.grpc.InferInput(spec.name, list(feed[spec.name].shape), spec.datatype)
            t.set_data_from_numpy(feed[spec.name])
            inputs.append(t)
        return inputs

    def _infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            result = self.client.infer(self.model, self._request(feed), client_timeout=self.timeout)
        except self.Error as exc:
            raise SpotrtError(f"{self.describe()}: {status_code(exc)} {one_line(exc)}") from None
        return {t.name: result.as_numpy(t.name) for t in tensors.OUTPUTS}

    def submit(self, image: np.ndarray, pending: _Pending) -> None:
        feed = self.feed([image])
        check_feed(feed, self.input_specs(), self.describe())
        self.client.async_infer(self.model, self._request(feed), callback=pending.done, client_timeout=self.timeout)

    def words_of_result(self, result) -> list:
        return tensors.unpack_words({t.name: result.as_numpy(t.name) for t in tensors.OUTPUTS})[0]

    def spot_many(self, images) -> list:
        """Words of each BGR frame, one request per frame (frames may differ in size)."""
        return [tensors.unpack_words(self.infer(self.feed([im])))[0] for im in images]

    def pipeline_adapter(self) -> "RemoteBackend":
        """What spotrt.runtime.pipeline drives instead of a local model (kept as `.adapter`: its counts)."""
        self.adapter = RemoteBackend(self)
        return self.adapter


class RemoteBackend:
    """The pipeline's backend for a TritonSpotter (prep / infer / post, like pipeline._BatchedBackend).

    `infer` sends each frame and returns at once (waiting only while its stream already has
    `in_flight` frames on their way); `post` waits for that frame's answer, in order. A frame whose
    request failed leaves `post` with `frame.dropped` set: the pipeline writes it as a dropped record.
    A request with no answer at all `ANSWER_GRACE_S` after its deadline is lost in flight (TimeoutError),
    so neither stage waits for ever.
    """

    def __init__(self, spotter: TritonSpotter) -> None:
        self.spotter = spotter
        self.batch = spotter.in_flight
        self._slots: dict[int, threading.Semaphore] = {}
        self._on_their_way: dict[int, list[_Pending]] = {}  # each stream's requests without an answer, oldest first
        self._lock = threading.Lock()
        self._down: str | None = None      # why the connection was lost, until reconnected
        self._generation = 0               # of the client: a late failure from before a reconnect is no news
        self._errors_in_a_row = 0
        self._error_said = False
        self.sent = self.answered = 0
        self.lost: dict[str, int] = {}

    def _slot(self, stream: int) -> threading.Semaphore:
        with self._lock:
            return self._slots.setdefault(stream, threading.Semaphore(self.batch))

    def prep(self, r) -> None:
        pass  # the server letterboxes and normalizes: the frame goes as it is

    def _wait_for_answer_s(self) -> float:
        return self.spotter.timeout + ANSWER_GRACE_S

    def infer(self, rs) -> None:
        for r in rs:
            stream = r.frame.stream
            slot = self._slot(stream)
            since = time.monotonic()
            while True:  # a free slot of this stream, on a server that was up when it freed
                if self._down is not None:
                    self.spotter.reconnect(self._down)
                    with self._lock:
                        self._down = None
                        self._generation += 1
                if slot.acquire(timeout=0.5):
                    if self._down is None:
                        break
                    slot.release()
                elif time.monotonic() - since > self._wait_for_answer_s():
                    # The oldest request of this stream never got an answer: lost in flight, its slot freed.
                    with self._lock:
                        oldest = next(iter(self._on_their_way.get(stream, ())), None)
                    if oldest is not None:
                        oldest.done(None, TimeoutError("no answer"))
                    since = time.monotonic()
            generation = self._generation

            def on_done(p: _Pending, slot=slot, generation=generation, stream=stream) -> None:
                with self._lock:
                    self._on_their_way[stream].remove(p)
                    if p.error is not None and lost_connection(p.error):
                        if self._down is None and generation == self._generation:
                            self._down = f"{status_code(p.error) or type(p.error).__name__}: {one_line(p.error)}"
                slot.release()

            pending = _Pending(on_done)
            r.raw = pending
            with self._lock:
                self.sent += 1
                self._on_their_way.setdefault(stream, []).append(pending)
            try:
                self.spotter.submit(r.frame.image, pending)
            except self.spotter.Error as exc:  # refused before it left (a closed channel)
                pending.done(None, exc)

    def post(self, r) -> list:
        pending: _Pending = r.raw
        if not pending.event.wait(self._wait_for_answer_s()):  # the client's own deadline should have come first
            pending.done(None, TimeoutError("no answer"))
        if pending.error is None:
            self._errors_in_a_row = 0
            with self._lock:
                self.answered += 1
            return self.spotter.words_of_result(pending.result)
        code = status_code(pending.error) or type(pending.error).__name__
        if lost_connection(pending.error):
            reason = f"{DROP_LOST} ({code})"
        else:
            reason = DROP_ERROR
            self._errors_in_a_row += 1
            line = f"server {self.spotter.url}: model {self.spotter.model} answered {code} {one_line(pending.error)}"
            if self._errors_in_a_row >= MAX_ERRORS_IN_A_ROW:
                raise SpotrtError(f"{line}; {self._errors_in_a_row} frames in a row, expected answers")
            if not self._error_said:
                self._error_said = True
                self.spotter.log(f"{line} (frame {r.frame.index} of stream {r.frame.stream} dropped)")
        with self._lock:
            self.lost[reason] = self.lost.get(reason, 0) + 1
        r.frame.dropped = reason
        return []


def run_on_server(sources, server: str, model: str = tensors.MODEL_NAME, in_flight: int = 4, timeout: float = 30.0,
                  scale: float = 1.0, min_score: float | None = None, print_summary: bool = True, **options) -> dict:
    """`spotrt run SOURCE... --server URL`: run_stream with the frames read on a Triton server -> the summary
    (with "server": frames sent, answered, lost by reason, reconnects). The connection is made after the
    sources and outputs are checked, as a local model is loaded; `options` are run_stream's."""
    from ..options import check_min_score, check_scale
    from .stream import run_stream

    scale, min_score = check_scale(scale), check_min_score(min_score)
    made: list[TritonSpotter] = []

    def connect() -> TritonSpotter:
        made.append(TritonSpotter(server, model, timeout=timeout, in_flight=in_flight, scale=scale, min_score=min_score))
        return made[-1]

    try:  # min_score travels with each request: run_stream must not set it on a local config
        summary = run_stream(sources, load=connect, scale=scale, min_score=None, print_summary=print_summary, **options)
    finally:
        for spotter in made:
            spotter.close()
    spotter, ad = made[-1], made[-1].adapter
    summary["server"] = {"url": spotter.url, "model": spotter.model, "sent": ad.sent if ad else 0,
                         "answered": ad.answered if ad else 0, "lost": dict(ad.lost) if ad else {},
                         "reconnects": spotter.reconnects}
    if print_summary:
        sv = summary["server"]
        lost = ", ".join(f"{k}: {v}" for k, v in sorted(sv["lost"].items())) or "none"
        print(f"server {sv['url']}: model {sv['model']}, {sv['sent']} frames sent, {sv['answered']} answered, "
              f"{sum(sv['lost'].values())} lost ({lost}); {sv['reconnects']} reconnects")
    return summary


__all__ = ["TritonSpotter", "RemoteBackend", "parse_server_url", "run_on_server", "DROP_LOST", "DROP_ERROR"]
