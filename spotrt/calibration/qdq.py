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

# the proposal heads stay float; `_N`: the same module's N-th call (the pyramid's coarse pass)
KEEP_FLOAT_CONV = re.compile(r"^/tpn/(cls|reg|level_cls\.\d+|level_reg\.\d+)(_\d+)?/")
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


def _base(name: str) -> str:
    return name.strip("/").replace("/", "_").replace(":", "_")


def insert_qdq(model, amax: dict[str, float], nodes: list[QuantNode] | None = None):
    """A copy of `model` with Q/DQ pairs for `nodes` (default: select_nodes) using the ranges `amax`.

    Graph surgery with onnx-graphsurgeon: each quantized tensor gets one QuantizeLinear ->
    DequantizeLinear pair that all its readers share; the model's IR version, opsets, producer and
    metadata are kept. Raises KeyError naming a tensor without a range.
    """
    import onnx
    import onnx_graphsurgeon as gs

    model = onnx.ModelProto.FromString(model.SerializeToString())
    nodes = select_nodes(model.graph) if nodes is None else nodes
    if not any(o.domain in ("", "ai.onnx") and o.version >= 13 for o in model.opset_import):
        raise ValueError("graph opset: found < 13, expected >= 13 (per-channel QuantizeLinear/DequantizeLinear)")
    graph = gs.import_onnx(model)
    by_name = {n.name: n for n in graph.nodes}
    graph_outputs = {t.name for t in graph.outputs}
    dequantized: dict[str, gs.Variable] = {}

    def const(name: str, value: np.ndarray) -> gs.Constant:
        return gs.Constant(name, np.asarray(value))

    def dequantize(name: str, q: np.ndarray, scale: np.ndarray, axis: int) -> gs.Variable:
        """A DequantizeLinear of constant int8 weights ({name}_int8, _wscale, _wzero) or int32 biases
        ({name}_int32, _bscale, _bzero), per channel along `axis` -> its output {name}_dequantized."""
        kind, s_, z_ = ("int8", "wscale", "wzero") if q.dtype == np.int8 else ("int32", "bscale", "bzero")
        inputs = [const(f"{name}_{kind}", q), const(f"{name}_{s_}", scale),
                  const(f"{name}_{z_}", np.zeros(scale.shape, q.dtype))]
        out = gs.Variable(f"{name}_dequantized")
        graph.nodes.append(gs.Node("DequantizeLinear", f"{name}_DequantizeLinear", {"axis": axis}, inputs, [out]))
        return out

    def qdq(tensor: gs.Variable) -> gs.Variable:
        """The dequantized copy of an activation tensor (one Q/DQ pair per tensor)."""
        if tensor.name not in dequantized:
            if tensor.name not in amax:
                raise KeyError(f"no calibrated range for tensor {tensor.name}")
            base = _base(tensor.name)
            scale = const(f"{base}_qscale", np.array(activation_scale(amax[tensor.name]), np.float32))
            zero = const(f"{base}_qzero", np.array(0, np.int8))
            q, dq = gs.Variable(f"{base}_quantized"), gs.Variable(f"{base}_dequantized")
            graph.nodes.append(gs.Node("QuantizeLinear", f"{base}_QuantizeLinear", inputs=[tensor, scale, zero],
                                       outputs=[q]))
            graph.nodes.append(gs.Node("DequantizeLinear", f"{base}_DequantizeLinear", inputs=[q, scale, zero],
                                       outputs=[dq]))
            dequantized[tensor.name] = dq
        return dequantized[tensor.name]

    weights: dict[str, tuple[gs.Variable, np.ndarray]] = {}
    for qn in nodes:
        node = by_name[qn.name]
        node.inputs[0] = qdq(node.inputs[0])
        if qn.weight not in weights:
            q, scale = quantize_weight(node.inputs[1].values, qn.axis)
            name = qn.weight.replace("/", "_").replace(":", "_").replace(".", "_")
            weights[qn.weight] = (dequantize(name, q, scale, qn.axis), scale)
        node.inputs[1], w_scale = weights[qn.weight]
        if qn.op_type == "Conv" and len(node.inputs) > 2 and isinstance(node.inputs[2], gs.Constant):
            bias = node.inputs[2]
            b_scale = (activation_scale(amax[qn.activation]) * w_scale.astype(np.float64)).astype(np.float32)
            b_q = np.clip(np.round(bias.values.astype(np.float64) / b_scale), -(2**31) + 1, 2**31 - 1).astype(np.int32)
            name = f"{bias.name.replace('/', '_').replace(':', '_').replace('.', '_')}_{_base(qn.name)}"
            node.inputs[2] = dequantize(name, b_q, b_scale, 0)
    for qn in nodes:
        if not qn.output or qn.output in graph_outputs:
            continue
        out = by_name[qn.name].outputs[0]
        dq = qdq(out)
        quantizer = dq.inputs[0].inputs[0].inputs[0]  # DQ <- q tensor <- Q node
        for reader in [n for n in out.outputs if n is not quantizer]:
            for i, t in enumerate(reader.inputs):
                if t is out:
                    reader.inputs[i] = dq
    graph.toposort()
    result = onnx.ModelProto()
    result.CopyFrom(model)  # IR version, opsets, producer and metadata as they were
    result.graph.CopyFrom(gs.export_onnx(graph, do_type_check=False).graph)
    return result


def fold_int32_dequantize(model):
    """Replace DequantizeLinear of int32 initializers (quantized biases) by float initializers, in place.

    TensorRT dequantizes int8/fp8/int4 only; the bias of a quantized Conv stays float there.
    """
    import onnx_graphsurgeon as gs

    graph = gs.import_onnx(model)
    folded = 0
    for node in [n for n in graph.nodes if n.op == "DequantizeLinear"]:
        x = node.inputs[0]
        if isinstance(x, gs.Constant) and x.values.dtype == np.int32:
            s = node.inputs[1].values.astype(np.float64)
            zero = node.inputs[2] if len(node.inputs) > 2 else None
            z = zero.values.astype(np.float64) if isinstance(zero, gs.Constant) else 0.0
            out = node.outputs[0]
            node.outputs.clear()  # the tensor leaves its producer and becomes a constant of the same name
            out.to_constant(((x.values.astype(np.float64) - z) * s).astype(np.float32))
            graph.nodes.remove(node)
            folded += 1
    if folded:
        model.graph.CopyFrom(gs.export_onnx(graph, do_type_check=False).graph)
    return folded
