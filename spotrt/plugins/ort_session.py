"""An ONNX Runtime CPU session for a spotrt graph, the plugin graph included.

The plugin graph's `spotrt::VarRoIPool` and `spotrt::AttnDecoder` nodes run through the CPU custom
ops of spotrt/plugins/*/ort.py (onnxruntime-extensions Python ops): their domain is rewritten in
memory to `ai.onnx.contrib` (the file on disk keeps `spotrt`, as TensorRT needs), their attributes and
the decoder's weights are validated first (an exception inside a Python op aborts the process), and
the extensions library is registered with the session. Used by the ONNX Runtime backend, by
calibration and by `spotrt check`; imports no torch.
"""

from __future__ import annotations

from ..errors import SpotrtError

PLUGIN_DOMAIN = "spotrt"


def plugin_nodes_for_ort(proto, path) -> bool:
    """Validate the spotrt nodes and move them to the extensions' domain (in memory). -> any found."""
    from onnx import numpy_helper

    from .attn_decoder import ort as dec_ort
    from .attn_decoder.reference import WEIGHT_NAMES
    from .attn_decoder.spec import validate as validate_dec
    from .var_roi_pool import ort as roi_ort
    from .var_roi_pool.spec import validate as validate_roi

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


# ONNX Runtime's session config keys: whether idle pool threads busy-wait for the next run.
SPINNING_KEYS = ("session.intra_op.allow_spinning", "session.inter_op.allow_spinning")


def cpu_session(proto, path, threads: int | None = None, spinning: bool = True):
    """An onnxruntime.InferenceSession (CPU) of `proto` (changed in place for the custom ops);
    SpotrtError (one line) when ONNX Runtime cannot load it. `path` names the graph in messages.

    `spinning=False` lets the session's idle threads sleep at once instead of busy-waiting for the
    next run (ONNX Runtime's default): for timing several sessions in turn in one process, where a
    session's spinning threads take the cores from the next one's run."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = int(threads)
        so.inter_op_num_threads = 1
    if not spinning:
        for key in SPINNING_KEYS:
            so.add_session_config_entry(key, "0")
    so.log_severity_level = 3
    if plugin_nodes_for_ort(proto, path):
        import onnxruntime_extensions

        so.register_custom_ops_library(onnxruntime_extensions.get_library_path())
    try:
        return ort.InferenceSession(proto.SerializeToString(), so, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own exception types for graphs it cannot load
        line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SpotrtError(f"model {path}: ONNX Runtime cannot load it ({line[:300]})") from None
