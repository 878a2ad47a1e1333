"""`spotrt export`: weights -> model.onnx (plugin graph), model.portable.onnx, model.read.onnx."""

from __future__ import annotations

import copy
import io
import json
import warnings
from pathlib import Path

from .. import __version__
from ..errors import SpotrtError
from ..fileio import ensure_dir, write_bytes_atomic
from ..imageops import READ_SIZE
from ..options import check_size
from ..formats.digest import sha256_file
from ..formats.onnx_graph import FORMAT, KIND_PLUGIN, KIND_PORTABLE, KIND_READ, ir_version_for_ort, sibling_paths

MIN_OPSET = 16  # GridSample
FLOAT, INT32 = 1, 6  # onnx.TensorProto


def _metadata(cfg, kind: str, input_size, batch: int, read_name: str | None,
              source: dict[str, str] | None = None) -> dict[str, str]:
    meta = {
        "spotrt_format": FORMAT,
        "spotrt_version": __version__,
        "spotrt_graph": kind,
        "spotrt_config": cfg.to_json(),
        "spotrt_charset": cfg.charset,
        "spotrt_input_size": f"{input_size[0]}x{input_size[1]}",
        "spotrt_batch": str(batch),
        "spotrt_mean": json.dumps(list(cfg.mean)),
        "spotrt_std": json.dumps(list(cfg.std)),
        "spotrt_color": "BGR",
    }
    if read_name:
        meta["spotrt_read_graph"] = read_name
    meta.update(source or {})
    return meta


def _source(weights) -> dict[str, str]:
    """The weights file a graph comes from, by name and sha256 (nothing for a model passed in):
    what tells a graph exported from other weights, e.g. the shipped graph after a retraining."""
    from ..formats.shipped import WEIGHTS

    if weights is not None and not isinstance(weights, (str, Path)):
        return {}
    path = Path(weights) if weights is not None else WEIGHTS
    return {"spotrt_weights": path.name, "spotrt_weights_sha256": sha256_file(path)}


def _to_onnx(module, args, input_names, output_names, opset: int, plugins: bool = False):
    import onnx
    import torch

    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, buf, input_names=input_names, output_names=output_names,
                          opset_version=opset, dynamo=False, do_constant_folding=True,
                          custom_opsets={"spotrt": 1} if plugins else None)
    model = onnx.load_from_string(buf.getvalue())
    model.ir_version = ir_version_for_ort()
    return model


def _static_outputs(model, shapes: dict[str, tuple[tuple[int, ...], int]]) -> None:
    """Write the outputs' static shapes and types (custom nodes leave them unknown to the exporter)."""
    for out in model.graph.output:
        if out.name in shapes:
            dims, elem = shapes[out.name]
            out.type.tensor_type.elem_type = elem
            shape = out.type.tensor_type.shape
            del shape.dim[:]
            for d in dims:
                shape.dim.add().dim_value = int(d)


def _fold_weight_identities(model) -> None:
    """Let every node read a shared weight from its initializer: the exporter gives the second use of
    a module's folded weights (the pyramid's coarse pass runs the backbone again) an Identity of the
    first use's initializer, which would hide it from Q/DQ (`calibration.qdq.select_nodes` quantizes
    nodes whose weight is an initializer) and from TensorRT's weight handling."""
    graph = model.graph
    inits = {t.name for t in graph.initializer}
    outputs = {o.name for o in graph.output}
    alias = {n.output[0]: n.input[0] for n in graph.node
             if n.op_type == "Identity" and n.input[0] in inits and n.output[0] not in outputs}
    if not alias:
        return
    keep = [n for n in graph.node if not (n.op_type == "Identity" and n.output[0] in alias)]
    for n in keep:
        for i, name in enumerate(n.input):
            if name in alias:
                n.input[i] = alias[name]
    del graph.node[:]
    graph.node.extend(keep)


def _finish(model, meta: dict[str, str], path: Path) -> None:
    import onnx

    _fold_weight_identities(model)
    del model.metadata_props[:]
    for k, v in meta.items():
        model.metadata_props.add(key=k, value=v)
    model.producer_name = "spotrt"
    model.producer_version = __version__
    onnx.checker.check_model(model)
    write_bytes_atomic(path, model.SerializeToString())


def _prepare_out(out) -> dict[str, Path]:
    out = Path(out)
    paths = sibling_paths(out if out.suffix == ".onnx" else out / "model.onnx")
    folder = paths[KIND_PLUGIN].parent
    ensure_dir(folder, "export folder")
    return paths


def export_model(weights=None, out="model.onnx", input_size=None, batch: int = 1, opset: int = 17,
                 kinds=(KIND_PLUGIN, KIND_PORTABLE, KIND_READ)) -> dict[str, Path]:
    """Export a spotter to ONNX; returns {kind: path}.

    `weights`: a weights file (None = the shipped default) or a loaded Spotter. `out`: a folder
    (model.onnx, model.portable.onnx, model.read.onnx inside) or a path X.onnx (X.portable.onnx and
    X.read.onnx beside it). `input_size` (H, W), default the config's; `batch` static N.
    """
    import torch

    from ..model.spotter import Spotter
    from ..model.weights import load_weights
    from .graph import ExportReader, ExportSpotter

    if int(batch) < 1:
        raise SpotrtError(f"batch {batch}: expected an integer >= 1")
    if int(opset) < MIN_OPSET:
        raise SpotrtError(f"opset {opset}: expected >= {MIN_OPSET} (GridSample in the portable graph)")
    unknown = set(kinds) - {KIND_PLUGIN, KIND_PORTABLE, KIND_READ}
    if unknown:
        raise SpotrtError(f"graph kinds {sorted(unknown)}: expected plugin, portable or read")
    # a model passed in is copied: exporting must not move it off its device or out of training mode
    model = copy.deepcopy(weights) if isinstance(weights, Spotter) else load_weights(weights, "cpu")
    model = model.cpu().eval()
    source = _source(weights)
    cfg = model.cfg
    size = check_size(input_size or (cfg.input_height, cfg.input_width))
    paths = _prepare_out(out)
    read_name = paths[KIND_READ].name if KIND_READ in kinds else None
    written: dict[str, Path] = {}
    with torch.no_grad():
        for kind in (KIND_PLUGIN, KIND_PORTABLE):
            if kind not in kinds:
                continue
            module = ExportSpotter(model, size, int(batch), plugins=kind == KIND_PLUGIN).eval()
            dummy = torch.zeros((int(batch), 3, *size))
            onx = _to_onnx(module, (dummy,), ["image"], ["boxes", "scores", "tokens", "token_probs", "count"], opset,
                           plugins=kind == KIND_PLUGIN)
            n, k, t = int(batch), cfg.output_slots, cfg.max_word_len
            _static_outputs(onx, {"boxes": ((n, k, 4), FLOAT), "scores": ((n, k), FLOAT),
                                  "tokens": ((n, k, t), INT32), "token_probs": ((n, k, t), FLOAT),
                                  "count": ((n,), INT32)})
            if kind == KIND_PLUGIN and not any(o.domain == "spotrt" for o in onx.opset_import):
                onx.opset_import.add(domain="spotrt", version=1)
            _finish(onx, _metadata(cfg, kind, size, int(batch), read_name, source), paths[kind])
            written[kind] = paths[kind]
        if KIND_READ in kinds:
            module = ExportReader(model).eval()
            dummy = torch.zeros((1, 3, *READ_SIZE))
            rois = torch.tensor([[0.0, 0.0, 64.0, 32.0]])
            onx = _to_onnx(module, (dummy, rois), ["image", "rois"], ["tokens", "token_probs"], opset)
            _static_outputs(onx, {"tokens": ((1, cfg.max_word_len), INT32),
                                  "token_probs": ((1, cfg.max_word_len), FLOAT)})
            _finish(onx, _metadata(cfg, KIND_READ, READ_SIZE, 1, None, source), paths[KIND_READ])
            written[KIND_READ] = paths[KIND_READ]
    return written
