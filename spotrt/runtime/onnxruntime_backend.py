"""The ONNX Runtime backend: an exported spotrt graph (plugin or portable) on CPU. Never imports torch.

The plugin graph's `spotrt::VarRoIPool` and `spotrt::AttnDecoder` nodes run through the CPU custom
ops of spotrt/plugins/*/ort.py (see spotrt.plugins.ort_session).

`read` runs the recognition graph exported beside the spotting graph (`X.read.onnx`, see
spotrt/export/README.md): the crop, scaled to height 32, sits at the top-left of its 64 x 512 input.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import SpotrtError
from ..formats.onnx_graph import KIND_PLUGIN, KIND_PORTABLE, KIND_READ, load_graph
from ..imageops import READ_HEIGHT, READ_SIZE, prepare_crop
from ..model.config import SpotterConfig
from ..plugins.ort_session import cpu_session
from ..postprocess import decode_tokens, text_confidence
from ..runner import INPUT, OUTPUTS, Runner


class OnnxRuntimeSpotter(Runner):
    """Reads words in BGR images with an exported graph on ONNX Runtime (CPU); a Runner (spotrt/runner.py)."""

    name = "onnxruntime"

    def __init__(self, model, threads: int | None = None, spinning: bool = True) -> None:
        """`threads`: intra-op threads (None: ONNX Runtime's default); `spinning=False`: idle
        threads sleep instead of busy-waiting (see plugins.ort_session.cpu_session)."""
        self.path = Path(model)
        proto, self.meta = load_graph(self.path)
        self.kind = self.meta.get("spotrt_graph")
        if self.kind == KIND_READ:
            raise SpotrtError(f"model {self.path}: is a recognition-only read graph, expected the spotting graph "
                              "(model.onnx or model.portable.onnx) beside it")
        if self.kind not in (KIND_PLUGIN, KIND_PORTABLE):
            raise SpotrtError(f"model {self.path}: found graph kind {self.kind!r}, expected 'plugin' or 'portable'")
        try:
            self.cfg = SpotterConfig.from_json(self.meta["spotrt_config"])
            h, w = (int(v) for v in self.meta["spotrt_input_size"].split("x"))
            self.batch = int(self.meta.get("spotrt_batch", "1"))
        except (ValueError, TypeError, KeyError) as exc:
            raise SpotrtError(f"model {self.path}: its spotrt metadata is invalid ({exc})") from None
        self.input_size = (h, w)
        self.threads, self.spinning = threads, spinning
        self.session = self._read_session = None
        self._proto = proto
        self.load()

    def _load(self) -> None:
        proto, self._proto = self._proto or load_graph(self.path)[0], None
        session = cpu_session(proto, self.path, self.threads, self.spinning)
        found = {i.name: (i.type, list(i.shape)) for i in session.get_inputs()}
        spec = self.input_specs()[INPUT]
        if found != {INPUT: ("tensor(float)", list(spec.shape))}:
            raise SpotrtError(f"model {self.path}: found inputs {found}, expected {{'image': ('tensor(float)', "
                              f"{list(spec.shape)})}} as its spotrt metadata says")
        missing = [o for o in OUTPUTS if o not in {o.name for o in session.get_outputs()}]
        if missing:
            raise SpotrtError(f"model {self.path}: outputs {missing} missing, expected {list(OUTPUTS)}")
        self.session = session

    def _infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(OUTPUTS, self.session.run(list(OUTPUTS), feed)))

    def _close(self) -> None:
        self.session = self._read_session = None

    def _reader(self):
        if self._read_session is None:
            name = self.meta.get("spotrt_read_graph")
            if not name:
                raise SpotrtError(f"model {self.path}: was exported without a read graph, expected it to name one "
                                  "(re-export with spotrt export)")
            path = self.path.with_name(name)
            proto, meta = load_graph(path)
            if meta.get("spotrt_graph") != KIND_READ or meta.get("spotrt_config") != self.meta["spotrt_config"]:
                raise SpotrtError(f"model {path}: found graph kind {meta.get('spotrt_graph')!r} of another config, "
                                  f"expected the read graph exported with {self.path.name}")
            if meta.get("spotrt_input_size") != f"{READ_SIZE[0]}x{READ_SIZE[1]}":
                raise SpotrtError(f"model {path}: found input size {meta.get('spotrt_input_size')}, expected the "
                                  f"read canvas {READ_SIZE[0]}x{READ_SIZE[1]}")
            self._read_session = cpu_session(proto, path, self.threads, self.spinning)
        return self._read_session

    def read(self, crop: np.ndarray) -> tuple[str, float]:
        """Recognize a whole crop as one word -> (text, mean character probability)."""
        self.require_loaded()
        session = self._reader()
        x, width = prepare_crop(crop, self.cfg.mean, self.cfg.std)
        rois = np.array([[0.0, 0.0, float(width), float(READ_HEIGHT)]], dtype=np.float32)
        tokens, probs = session.run(["tokens", "token_probs"], {"image": x[None], "rois": rois})
        text = decode_tokens(tokens[0], self.cfg.charset)
        return text, text_confidence(probs[0], text)


__all__ = ["OnnxRuntimeSpotter", "OUTPUTS"]
