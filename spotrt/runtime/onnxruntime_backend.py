"""The ONNX Runtime backend: an exported spotrt graph (plugin or portable) on CPU. Never imports torch.

The plugin graph's `spotrt::VarRoIPool` and `spotrt::AttnDecoder` nodes run through the CPU custom
ops of spotrt/plugins/*/ort.py (onnxruntime-extensions Python ops): when loading, their domain is
rewritten in memory to `ai.onnx.contrib` (the file on disk keeps `spotrt`, as TensorRT needs), their
attributes and the decoder's weights are validated first (an exception inside a Python op aborts the
process), and the extensions library is registered with the session.

`read` runs the recognition graph exported beside the spotting graph (`X.read.onnx`, see
spotrt/export/README.md): the crop, scaled to height 32, sits at the top-left of its 64 x 512 input.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import SpotrtError
from ..export.meta import FORMAT, KIND_PLUGIN, KIND_PORTABLE, KIND_READ
from ..imageops import READ_HEIGHT, READ_SIZE, prepare_crop
from ..model.config import SpotterConfig
from ..postprocess import SpottedWord, decode_tokens, spot_fixed_graph, text_confidence

PLUGIN_DOMAIN = "spotrt"
OUTPUTS = ("boxes", "scores", "tokens", "token_probs", "count")


def _load_proto(path: Path):
    import onnx

    if not path.is_file():
        raise SpotrtError(f"model {path}: file not found, expected an .onnx graph written by spotrt export")
    try:
        return onnx.load(str(path))
    except Exception as exc:  # protobuf raises DecodeError and others for a file that is not ONNX
        raise SpotrtError(f"model {path}: not an ONNX file ({type(exc).__name__}), expected an .onnx graph "
                          "written by spotrt export") from None


def read_metadata(proto, path) -> dict[str, str]:
    meta = {p.key: p.value for p in proto.metadata_props}
    if meta.get("spotrt_format") != FORMAT or "spotrt_config" not in meta:
        raise SpotrtError(f"model {path}: found an ONNX graph without spotrt metadata (format "
                          f"{meta.get('spotrt_format')!r}), expected a graph written by spotrt export ({FORMAT!r})")
    return meta


def _plugin_nodes_for_ort(proto, path) -> bool:
    """Validate the spotrt nodes and move them to the extensions' domain (in memory). -> any found."""
    from onnx import numpy_helper

    from ..plugins.attn_decoder import ort as dec_ort
    from ..plugins.attn_decoder.reference import WEIGHT_NAMES
    from ..plugins.attn_decoder.spec import validate as validate_dec
    from ..plugins.var_roi_pool import ort as roi_ort
    from ..plugins.var_roi_pool.spec import validate as validate_roi

    inits = {t.name: t for t in proto.graph.initializer}
    found = False
    for node in proto.graph.node:
        if node.domain != PLUGIN_DOMAIN:
            continue
        found = True
        attrs = {a.name: a.i for a in node.attribute if a.type == a.INT}
        keep = [a for a in node.attribute if a.type == a.INT]
        try:
            if node.op_type == "VarRoIPool":
                validate_roi(attrs)
            elif node.op_type == "AttnDecoder":
                names = list(node.input)[3:]
                if len(names) != len(WEIGHT_NAMES) or any(n not in inits for n in names):
                    raise ValueError(f"expected {len(WEIGHT_NAMES)} weight initializers after memory, widths, holistic")
                validate_dec(attrs, {k: numpy_helper.to_array(inits[n]) for k, n in zip(WEIGHT_NAMES, names)})
            else:
                raise ValueError(f"unknown op {node.op_type}, expected VarRoIPool or AttnDecoder")
        except ValueError as exc:
            raise SpotrtError(f"model {path}: node {node.name or node.op_type}: {exc}") from None
        # The Python ops declare only the int attributes; the TensorRT plugin_* strings stay on disk.
        del node.attribute[:]
        node.attribute.extend(keep)
        node.domain = roi_ort.DOMAIN
    if found:
        assert roi_ort.DOMAIN == dec_ort.DOMAIN
        for op in proto.opset_import:
            if op.domain == PLUGIN_DOMAIN:
                op.domain = roi_ort.DOMAIN
    return found


def _session(proto, path, threads: int | None):
    import onnxruntime as ort

    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = int(threads)
        so.inter_op_num_threads = 1
    so.log_severity_level = 3
    if _plugin_nodes_for_ort(proto, path):
        import onnxruntime_extensions

        so.register_custom_ops_library(onnxruntime_extensions.get_library_path())
    try:
        return ort.InferenceSession(proto.SerializeToString(), so, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own exception types for graphs it cannot load
        line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SpotrtError(f"model {path}: ONNX Runtime cannot load it ({line[:300]})") from None


class OnnxRuntimeSpotter:
    """Reads words in BGR images with an exported graph on ONNX Runtime (CPU)."""

    name = "onnxruntime"
    scale = 1.0  # frames are resized by this before the graph (load_spotter's `scale`)

    def __init__(self, model, threads: int | None = None) -> None:
        self.path = Path(model)
        proto = _load_proto(self.path)
        self.meta = read_metadata(proto, self.path)
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
        self.threads = threads
        self.session = _session(proto, self.path, threads)
        self._read_session = None

    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Raw outputs for a normalized (N,3,H,W) float32 batch of exactly the graph's size."""
        out = self.session.run(list(OUTPUTS), {"image": np.ascontiguousarray(batch, dtype=np.float32)})
        return dict(zip(OUTPUTS, out))

    def spot(self, image: np.ndarray) -> list[SpottedWord]:
        return spot_fixed_graph(image, self.cfg, self.input_size, self.batch, self.run, self.scale, owner=self)

    def _reader(self):
        if self._read_session is None:
            name = self.meta.get("spotrt_read_graph")
            if not name:
                raise SpotrtError(f"model {self.path}: was exported without a read graph, expected it to name one "
                                  "(re-export with spotrt export)")
            path = self.path.with_name(name)
            proto = _load_proto(path)
            meta = read_metadata(proto, path)
            if meta.get("spotrt_graph") != KIND_READ or meta.get("spotrt_config") != self.meta["spotrt_config"]:
                raise SpotrtError(f"model {path}: found graph kind {meta.get('spotrt_graph')!r} of another config, "
                                  f"expected the read graph exported with {self.path.name}")
            if meta.get("spotrt_input_size") != f"{READ_SIZE[0]}x{READ_SIZE[1]}":
                raise SpotrtError(f"model {path}: found input size {meta.get('spotrt_input_size')}, expected the "
                                  f"read canvas {READ_SIZE[0]}x{READ_SIZE[1]}")
            self._read_session = _session(proto, path, self.threads)
        return self._read_session

    def read(self, crop: np.ndarray) -> tuple[str, float]:
        """Recognize a whole crop as one word -> (text, mean character probability)."""
        session = self._reader()
        x, width = prepare_crop(crop, self.cfg.mean, self.cfg.std)
        rois = np.array([[0.0, 0.0, float(width), float(READ_HEIGHT)]], dtype=np.float32)
        tokens, probs = session.run(["tokens", "token_probs"], {"image": x[None], "rois": rois})
        text = decode_tokens(tokens[0], self.cfg.charset)
        return text, text_confidence(probs[0], text)


__all__ = ["OnnxRuntimeSpotter", "read_metadata", "OUTPUTS"]
