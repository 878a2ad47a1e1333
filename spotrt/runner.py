"""The runner interface every backend implements (torch, ONNX Runtime, TensorRT; a remote server too).

Modelled on Polygraphy's runners (`BaseRunner`: activate / infer / deactivate, a context manager,
inputs checked against the model's metadata before every call). NumPy only: never imports torch.

    with load_spotter("export/model.onnx") as runner:      # any backend; constructors load
        out = runner.infer({"image": batch})               # checked names, dtypes and shapes
        words = runner.spot(frame)                         # preprocess -> batch -> run -> words

The three calls:

- `load()`: create what inference needs (session, engine and buffers, model weights). The
  constructor reads and checks the model file, then calls it, so a user's mistake surfaces when the
  runner is made. Calling it again on a loaded runner does nothing; after `close()` it loads again.
- `infer(feed)`: `feed` maps input names to NumPy arrays; each is checked against `input_specs()`
  (name, dtype, shape; a dimension of None takes any size) and a mismatch raises SpotrtError naming
  the input, what was found and what was expected. Returns the outputs by name as NumPy arrays:
  `OUTPUTS` = boxes (N,K,4) float32, scores (N,K), tokens (N,K,T) int, token_probs (N,K,T), count (N,).
- `close()`: free them (idempotent). `with runner:` loads on entry and closes on exit.

What a subclass provides: `name`, `cfg` (SpotterConfig), `batch` (N), `input_size` (H, W; the
largest for a backend whose input grows), `_load()`, `_infer(feed)`, `_close()`, and, when its
input is not a fixed float32 (batch, 3, H, W) image, `input_specs()` and `prepare()`. Everything else
is shared, and is the one path from frames to words of `spot`, `spot_many` and the stream pipeline:

    prepare(image) -> (x, letterbox)   normalized (3, H, W) float32 and how to map boxes back
    stack([x, ...]) -> (N, 3, H, W)    the padded batch (zeros in the unused slots)
    run(batch) -> outputs              infer({"image": batch})
    words(outputs_of_one_image, letterbox) -> [SpottedWord]

A backend that must drive the pipeline's stages itself (a remote server with requests in flight)
returns its own stage adapter from `pipeline_adapter()` (an object with `batch`, `prep(result)`,
`infer(results)` and `post(result) -> words`, see spotrt/runtime/pipeline.py); None (the default)
means the path above.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .errors import SpotrtError
from .imageops import Letterbox, preprocess
from .postprocess import SpottedWord, note_capped_scale_once, words_of

INPUT = "image"
OUTPUTS = ("boxes", "scores", "tokens", "token_probs", "count")


@dataclass(frozen=True)
class TensorSpec:
    """An input's expected dtype and shape (None: any size along that dimension)."""

    name: str
    dtype: np.dtype
    shape: tuple[int | None, ...]

    def shape_text(self) -> str:
        dims = ["any" if d is None else str(d) for d in self.shape]
        return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"

    def accepts_shape(self, shape: tuple[int, ...]) -> bool:
        return len(shape) == len(self.shape) and all(e is None or e == d for d, e in zip(shape, self.shape))


def check_feed(feed, specs: Mapping[str, TensorSpec], owner: str) -> None:
    """Raise SpotrtError (one line: `owner` input NAME: found ..., expected ...) unless `feed` has
    exactly the inputs of `specs`, each a NumPy array of the spec's dtype and shape."""
    if not isinstance(feed, Mapping):
        raise SpotrtError(f"{owner}: inputs: found {type(feed).__name__}, expected a dict of input name -> array")
    if set(feed) != set(specs):
        raise SpotrtError(f"{owner}: inputs: found {sorted(map(str, feed))}, expected {sorted(specs)}")
    for name, spec in specs.items():
        value = feed[name]
        if not isinstance(value, np.ndarray):
            raise SpotrtError(f"{owner}: input {name}: found {type(value).__name__}, expected a NumPy array")
        if value.dtype != spec.dtype:
            raise SpotrtError(f"{owner}: input {name}: found dtype {value.dtype}, expected {spec.dtype}")
        if not spec.accepts_shape(value.shape):
            raise SpotrtError(f"{owner}: input {name}: found shape {tuple(value.shape)}, expected {spec.shape_text()}")


class Runner:
    """Base class of the backends; see the module docstring."""

    name = "runner"
    scale = 1.0        # frames are resized by this before the network (load_spotter's `scale`)
    cfg = None         # SpotterConfig
    batch = 1          # N of the network's input
    input_size: tuple[int, int] = (0, 0)
    loaded = False

    # -- what a backend implements ----------------------------------------------------------------
    def _load(self) -> None:
        raise NotImplementedError

    def _infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError

    def describe(self) -> str:
        """How errors name this runner (its model file, where it has one)."""
        path = getattr(self, "path", None)
        return f"model {path}" if path is not None else f"backend {self.name}"

    def input_specs(self) -> dict[str, TensorSpec]:
        """The inputs `infer` takes: a fixed float32 (batch, 3, H, W) image for exported graphs."""
        return {INPUT: TensorSpec(INPUT, np.dtype(np.float32), (int(self.batch), 3, *map(int, self.input_size)))}

    def pipeline_adapter(self):
        """The backend's own stage adapter for the stream pipeline, or None for the shared path."""
        return None

    # -- the three calls --------------------------------------------------------------------------
    def load(self) -> "Runner":
        if not self.loaded:
            self._load()
            self.loaded = True
        return self

    def require_loaded(self) -> None:
        """SpotrtError unless loaded (a closed runner says so instead of failing somewhere inside)."""
        if not self.loaded:
            raise SpotrtError(f"{self.describe()}: found the {self.name} runner closed, expected it loaded "
                              "(use it inside `with` or call load())")

    def infer(self, feed: Mapping[str, np.ndarray], check_inputs: bool = True) -> dict[str, np.ndarray]:
        self.require_loaded()
        if check_inputs:
            check_feed(feed, self.input_specs(), self.describe())
        return self._infer(dict(feed))

    def close(self) -> None:
        if self.loaded:
            self.loaded = False
            self._close()

    def __enter__(self) -> "Runner":
        return self.load()

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the shared path from frames to words -----------------------------------------------------
    def prepare(self, image: np.ndarray) -> tuple[np.ndarray, Letterbox]:
        """One BGR frame -> the network's (3, H, W) input (letterboxed to the fixed input size, at
        `scale` where it fits; where it does not, said once on stderr) and its letterbox."""
        x, lb = preprocess(image, self.cfg.mean, self.cfg.std, self.input_size, multiple=32, fixed=True,
                           scale=self.scale)
        note_capped_scale_once(self, self.scale, lb, self.input_size)
        return x, lb

    def stack(self, xs: list[np.ndarray]) -> np.ndarray:
        """Prepared inputs (at most `batch`, one shape) -> the padded (batch, 3, H, W) batch."""
        if not 1 <= len(xs) <= self.batch:
            raise ValueError(f"stack: found {len(xs)} inputs, expected 1 to {self.batch}")
        batch = np.zeros((self.batch, *xs[0].shape), dtype=np.float32)
        for i, x in enumerate(xs):
            batch[i] = x
        return batch

    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Raw outputs of a prepared (N, 3, H, W) float32 batch (`infer` on the image input)."""
        return self.infer({INPUT: batch})

    def words(self, out: Mapping[str, np.ndarray], lb: Letterbox) -> list[SpottedWord]:
        """One image's outputs (no batch axis) -> its words in the image's own pixels."""
        return words_of(self.cfg, out["boxes"], out["scores"], out["tokens"], out["token_probs"], int(out["count"]), lb)

    def spot_many(self, images: list[np.ndarray]) -> list[list[SpottedWord]]:
        """Words of each image, `batch` images to a network call."""
        result: list[list[SpottedWord]] = []
        for start in range(0, len(images), self.batch):
            prepared = [self.prepare(im) for im in images[start:start + self.batch]]
            out = self.run(self.stack([x for x, _ in prepared]))
            result += [self.words({k: v[i] for k, v in out.items()}, lb) for i, (_, lb) in enumerate(prepared)]
        return result

    def spot(self, image: np.ndarray) -> list[SpottedWord]:
        """Words in one BGR image, best first."""
        return self.spot_many([image])[0]

    def read(self, crop: np.ndarray) -> tuple[str, float]:
        """Recognize a whole crop as one word -> (text, score); backends with a read graph override it."""
        raise SpotrtError(f"backend {self.name}: read is not available, expected --backend torch or onnxruntime "
                          "for read")


class AnySizeRunner(Runner):
    """A fully convolutional network (the torch model, and test fakes like it): one image per call of
    any size up to `input_size` (grown by a `scale` above 1, so small text is read at that size; a
    fixed-size exported graph cannot, see Runner.prepare), padded to a multiple of 32."""

    def input_specs(self) -> dict[str, TensorSpec]:
        return {INPUT: TensorSpec(INPUT, np.dtype(np.float32), (1, 3, None, None))}

    def prepare(self, image: np.ndarray) -> tuple[np.ndarray, Letterbox]:
        grow = max(1.0, float(self.scale))
        cap = (round(self.input_size[0] * grow), round(self.input_size[1] * grow))
        return preprocess(image, self.cfg.mean, self.cfg.std, cap, multiple=32, scale=self.scale)


__all__ = ["INPUT", "OUTPUTS", "AnySizeRunner", "Runner", "TensorSpec", "check_feed"]
