"""Q/DQ insertion: which nodes are quantized, and the rewritten graph (explicit INT8 quantization).

Quantized (int8, symmetric, zero point 0, the only kind TensorRT accepts):
- every `Conv` with a constant weight, except the proposal heads `/tpn/cls/`, `/tpn/reg/` (and
  `/tpn/level_cls.N/`, `/tpn/level_reg.N/` of the coarser proposal levels):
  activation input per tensor, weight per output channel (axis 0), bias as int32 with scale
  s_x * s_w[c] (what ONNX Runtime's QLinearConv fusion needs; `tensorrt_build` folds it back to
  float for TensorRT), and the output per tensor (so ONNX Runtime fuses DQ -> Conv -> Q into one
  integer QLinearConv; TensorRT fuses the same pattern);
- `MatMul`/`Gemm` with a constant weight inside the region encoder (`/encoder/`): activation per
  tensor, weight per output column.

Kept in float (see calibration/README.md): the proposal heads (their logits rank proposals through
TopK and NMS, where a quantization step reorders near-ties; 1x1 convolutions of little compute), the
detector heads (`/detector/`: final score and box refinement), the whole attention decoder (every
other MatMul/Gemm, the unrolled greedy loop: errors compound over steps and flip argmax tokens), the
LSTM, and the plugin nodes of the plugin graph (`spotrt::VarRoIPool`, `spotrt::AttnDecoder` take
float32 only).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

KEEP_FLOAT_CONV = re.compile(r"^/tpn/(cls|reg|level_cls\.\d+|level_reg\.\d+)/")
QUANT_MATMUL = re.compile(r"^/encoder/")
INT8_MAX = 127


@dataclass(frozen=True)
class QuantNode:
    """A node to quantize: its name, op, the weight initializer and the per-channel axis of the weight."""

    name: str
    op_type: str
    activation: str
    weight: str
    axis: int
    output: str | None  # output tensor quantized too (Conv), else None


def _node_names(graph) -> None:
    """Give unnamed nodes a stable name (selection and messages refer to nodes by name)."""
    for i, n in enumerate(graph.node):
        if not n.name:
            n.name = f"{n.op_type}_{i}"


def select_nodes(graph) -> list[QuantNode]:
    """The nodes of `graph` that get Q/DQ, in graph order."""
    inits = {t.name: t for t in graph.initializer}
    _node_names(graph)
    out = []
    for n in graph.node:
        if n.domain not in ("", "ai.onnx") or len(n.input) < 2 or n.input[1] not in inits:
            continue
        dims = list(inits[n.input[1]].dims)
        if n.op_type == "Conv" and not KEEP_FLOAT_CONV.match(n.name) and len(dims) >= 3:
            out.append(QuantNode(n.name, "Conv", n.input[0], n.input[1], 0, n.output[0]))
        elif n.op_type == "MatMul" and QUANT_MATMUL.match(n.name) and len(dims) == 2:
            out.append(QuantNode(n.name, "MatMul", n.input[0], n.input[1], 1, None))
        elif n.op_type == "Gemm" and QUANT_MATMUL.match(n.name) and len(dims) == 2:
            trans_b = next((a.i for a in n.attribute if a.name == "transB"), 0)
            out.append(QuantNode(n.name, "Gemm", n.input[0], n.input[1], 0 if trans_b else 1, None))
    return out


def calibrated_tensors(nodes: list[QuantNode]) -> list[str]:
    """Activation tensors whose ranges the Q/DQ graph needs, in first-use order."""
    seen: dict[str, None] = {}
    for q in nodes:
        seen.setdefault(q.activation)
        if q.output:
            seen.setdefault(q.output)
    return list(seen)


def activation_scale(amax: float) -> float:
    """Symmetric int8 scale of a range |x| <= amax (a tiny positive scale for an all-zero tensor)."""
    return float(amax) / INT8_MAX if amax > 0 else 1e-8


def quantize_weight(w: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel symmetric int8: (q int8 of w's shape, scale float32 (w.shape[axis],))."""
    w = np.asarray(w, dtype=np.float32)
    other = tuple(i for i in range(w.ndim) if i != axis)
    amax = np.max(np.abs(w), axis=other) if other else np.abs(w)
    scale = np.where(amax > 0, amax / INT8_MAX, 1.0).astype(np.float32)
    shape = [1] * w.ndim
    shape[axis] = -1
    q = np.clip(np.round(w / scale.reshape(shape)), -INT8_MAX, INT8_MAX).astype(np.int8)
    return q, scale


def insert_qdq(model, amax: dict[str, float], nodes: list[QuantNode] | None = None):
    """A copy of `model` with Q/DQ pairs for `nodes` (default: select_nodes) using the ranges `amax`.

    Raises KeyError naming a tensor without a range.
    """
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.ModelProto.FromString(model.SerializeToString())
    g = model.graph
    nodes = select_nodes(g) if nodes is None else nodes
    by_name = {n.name: n for n in g.node}
    inits = {t.name: t for t in g.initializer}
    graph_outputs = {o.name for o in g.output}
    new_inits = []
    before: dict[str, list] = {}  # node name -> nodes to insert before it
    dq_of: dict[str, str] = {}   # activation tensor -> its dequantized name

    def scalar(name, value, dtype):
        new_inits.append(numpy_helper.from_array(np.array(value, dtype=dtype), name))
        return name

    def act_qdq(tensor: str, anchor: str) -> str:
        if tensor in dq_of:
            return dq_of[tensor]
        if tensor not in amax:
            raise KeyError(f"no calibrated range for tensor {tensor}")
        base = tensor.strip("/").replace("/", "_").replace(":", "_")
        s = scalar(f"{base}_qscale", activation_scale(amax[tensor]), np.float32)
        z = scalar(f"{base}_qzero", 0, np.int8)
        q, dq = f"{base}_quantized", f"{base}_dequantized"
        before.setdefault(anchor, []).extend([
            helper.make_node("QuantizeLinear", [tensor, s, z], [q], name=f"{base}_QuantizeLinear"),
            helper.make_node("DequantizeLinear", [q, s, z], [dq], name=f"{base}_DequantizeLinear"),
        ])
        dq_of[tensor] = dq
        return dq

    weight_dq: dict[str, tuple[str, np.ndarray]] = {}
    for qn in nodes:
        node = by_name[qn.name]
        node.input[0] = act_qdq(qn.activation, qn.name)
        if qn.weight not in weight_dq:
            w = numpy_helper.to_array(inits[qn.weight])
            q, scale = quantize_weight(w, qn.axis)
            base = qn.weight.replace("/", "_").replace(":", "_").replace(".", "_")
            new_inits.append(numpy_helper.from_array(q, f"{base}_int8"))
            new_inits.append(numpy_helper.from_array(scale, f"{base}_wscale"))
            new_inits.append(numpy_helper.from_array(np.zeros_like(scale, dtype=np.int8), f"{base}_wzero"))
            before.setdefault(qn.name, []).append(helper.make_node(
                "DequantizeLinear", [f"{base}_int8", f"{base}_wscale", f"{base}_wzero"], [f"{base}_dequantized"],
                name=f"{base}_DequantizeLinear", axis=qn.axis))
            weight_dq[qn.weight] = (f"{base}_dequantized", scale)
        node.input[1], w_scale = weight_dq[qn.weight]
        if qn.op_type == "Conv" and len(node.input) > 2 and node.input[2] in inits:
            b = numpy_helper.to_array(inits[node.input[2]]).astype(np.float64)
            b_scale = (activation_scale(amax[qn.activation]) * w_scale.astype(np.float64)).astype(np.float32)
            b_q = np.clip(np.round(b / b_scale), -(2**31) + 1, 2**31 - 1).astype(np.int32)
            base = f"{node.input[2].replace('/', '_').replace(':', '_').replace('.', '_')}_{qn.name.strip('/').replace('/', '_')}"
            new_inits += [numpy_helper.from_array(b_q, f"{base}_int32"), numpy_helper.from_array(b_scale, f"{base}_bscale"),
                          numpy_helper.from_array(np.zeros_like(b_q), f"{base}_bzero")]
            before.setdefault(qn.name, []).append(helper.make_node(
                "DequantizeLinear", [f"{base}_int32", f"{base}_bscale", f"{base}_bzero"], [f"{base}_dequantized"],
                name=f"{base}_DequantizeLinear", axis=0))
            node.input[2] = f"{base}_dequantized"

    after: dict[str, list] = {}
    renamed: dict[str, str] = {}
    for qn in nodes:
        if not qn.output or qn.output in graph_outputs:
            continue
        if qn.output not in amax:
            raise KeyError(f"no calibrated range for tensor {qn.output}")
        base = qn.output.strip("/").replace("/", "_").replace(":", "_")
        s = scalar(f"{base}_qscale", activation_scale(amax[qn.output]), np.float32)
        z = scalar(f"{base}_qzero", 0, np.int8)
        after[qn.name] = [
            helper.make_node("QuantizeLinear", [qn.output, s, z], [f"{base}_quantized"], name=f"{base}_QuantizeLinear"),
            helper.make_node("DequantizeLinear", [f"{base}_quantized", s, z], [f"{base}_dequantized"],
                             name=f"{base}_DequantizeLinear"),
        ]
        renamed[qn.output] = f"{base}_dequantized"

    out_nodes = []
    for n in g.node:
        out_nodes.extend(before.get(n.name, []))
        out_nodes.append(n)
        out_nodes.extend(after.get(n.name, []))
    own_q = {f"{o.strip('/').replace('/', '_').replace(':', '_')}_QuantizeLinear" for o in renamed}
    for n in out_nodes:
        if n.name in own_q:
            continue
        for i, name in enumerate(n.input):
            if name in renamed:
                n.input[i] = renamed[name]
    _replace_nodes(g, out_nodes, new_inits)
    if not any(o.domain in ("", "ai.onnx") and o.version >= 13 for o in model.opset_import):
        raise ValueError("graph opset: found < 13, expected >= 13 (per-channel QuantizeLinear/DequantizeLinear)")
    return model


def _replace_nodes(g, nodes, new_inits) -> None:
    """Set the graph's nodes, drop the initializers no node reads any more, and add `new_inits`."""
    del g.node[:]
    g.node.extend(nodes)
    used = {i for n in g.node for i in n.input}
    keep = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(keep + new_inits)


def fold_int32_dequantize(model):
    """Replace DequantizeLinear of int32 initializers (quantized biases) by float initializers, in place.

    TensorRT dequantizes int8/fp8/int4 only; the bias of a quantized Conv stays float there.
    """
    from onnx import TensorProto, numpy_helper

    g = model.graph
    inits = {t.name: t for t in g.initializer}
    keep_nodes, folded = [], []
    for n in g.node:
        if (n.op_type == "DequantizeLinear" and n.input[0] in inits
                and inits[n.input[0]].data_type == TensorProto.INT32):
            x = numpy_helper.to_array(inits[n.input[0]]).astype(np.float64)
            s = numpy_helper.to_array(inits[n.input[1]]).astype(np.float64)
            z = numpy_helper.to_array(inits[n.input[2]]).astype(np.float64) if len(n.input) > 2 and n.input[2] else 0.0
            folded.append(numpy_helper.from_array(((x - z) * s).astype(np.float32), n.output[0]))
        else:
            keep_nodes.append(n)
    if folded:
        _replace_nodes(g, keep_nodes, folded)
    return len(folded)
