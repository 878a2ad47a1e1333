"""An ONNX graph cast to float16 for a strongly typed TensorRT network (no TensorRT here).

A strongly typed network takes every tensor's type from the graph, so FP16 means a float16 graph:
float32 initializers, Constant values and value types become float16, Cast(to=float) becomes
Cast(to=float16). Kept in float32, with Casts around them: the graph's inputs and outputs (callers
keep feeding and reading float32), the spotrt plugin nodes (their kernels are float32 only) and
NonMaxSuppression (float32 boxes and scores in the ONNX schema). Inputs that the ONNX schema
requires as float32 whatever the data type (Resize scales) stay float32.
"""

from __future__ import annotations

import numpy as np

KEEP_FLOAT32_OPS = {"NonMaxSuppression"}


def _half(a: np.ndarray) -> np.ndarray:
    """float32 -> float16; values past float16's range become +-inf (the -3e38 'invalid proposal' score
    stays below NMS's -1e38 threshold, which is what it is for)."""
    with np.errstate(over="ignore"):
        return a.astype(np.float16)
FLOAT32_ONLY_INPUTS = {("Resize", 2)}


def _keep_float32(node) -> bool:
    return node.domain not in ("", "ai.onnx") or node.op_type in KEEP_FLOAT32_OPS


def to_float16(model):
    """A float16 copy of `model` (see the module docstring)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    m = onnx.ModelProto.FromString(model.SerializeToString())
    try:
        inferred = onnx.shape_inference.infer_shapes(m)
    except Exception:  # custom domains can stop inference; types then come from the graph as written
        inferred = m
    g = m.graph
    types = {}
    for v in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        types[v.name] = v.type.tensor_type.elem_type
    for t in g.initializer:
        types[t.name] = t.data_type
    float32_only = {n.input[i] for n in g.node for (op, i) in FLOAT32_ONLY_INPUTS
                    if n.op_type == op and len(n.input) > i and n.input[i]}
    float32_only |= {i for n in g.node if _keep_float32(n) for i in n.input}

    for t in g.initializer:
        if t.data_type == TensorProto.FLOAT and t.name not in float32_only:
            arr = _half(numpy_helper.to_array(t))
            t.CopyFrom(numpy_helper.from_array(arr, t.name))
    new_nodes = []
    cast_in = {}
    for inp in g.input:
        if inp.type.tensor_type.elem_type == TensorProto.FLOAT:
            cast_in[inp.name] = inp.name + "_fp16"
            new_nodes.append(helper.make_node("Cast", [inp.name], [cast_in[inp.name]], to=TensorProto.FLOAT16,
                                              name=inp.name + "_CastToFp16"))
    out_names = {o.name for o in g.output if o.type.tensor_type.elem_type == TensorProto.FLOAT}
    for n in g.node:
        for i, name in enumerate(n.input):
            if name in cast_in:
                n.input[i] = cast_in[name]
        if _keep_float32(n):
            for i, name in enumerate(n.input):
                if name and types.get(name) == TensorProto.FLOAT and name not in {t.name for t in g.initializer}:
                    up = f"{name}_fp32_for_{n.name or n.op_type}"
                    new_nodes.append(helper.make_node("Cast", [name], [up], to=TensorProto.FLOAT, name=up + "_Cast"))
                    n.input[i] = up
            new_nodes.append(n)
            for i, name in enumerate(n.output):
                if types.get(name, TensorProto.FLOAT) == TensorProto.FLOAT and name not in out_names \
                        and _float_output(n, i):
                    raw = f"{name}_fp32"
                    n.output[i] = raw
                    new_nodes.append(helper.make_node("Cast", [raw], [name], to=TensorProto.FLOAT16, name=name + "_Cast"))
            continue
        if n.op_type == "Cast":
            for a in n.attribute:
                if a.name == "to" and a.i == TensorProto.FLOAT and n.output[0] not in float32_only:
                    a.i = TensorProto.FLOAT16
        elif n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value" and a.t.data_type == TensorProto.FLOAT and n.output[0] not in float32_only:
                    a.t.CopyFrom(numpy_helper.from_array(_half(numpy_helper.to_array(a.t)), a.t.name))
        elif n.op_type == "ConstantOfShape":
            for a in n.attribute:
                if a.name == "value" and a.t.data_type == TensorProto.FLOAT:
                    a.t.CopyFrom(numpy_helper.from_array(_half(numpy_helper.to_array(a.t)), a.t.name))
        new_nodes.append(n)
        for i, name in enumerate(n.output):
            if name in out_names:
                raw = f"{name}_fp16"
                n.output[i] = raw
                new_nodes.append(helper.make_node("Cast", [raw], [name], to=TensorProto.FLOAT, name=name + "_CastToFp32"))
    del g.node[:]
    g.node.extend(new_nodes)
    del g.value_info[:]
    return m


def _float_output(node, index: int) -> bool:
    """Whether output `index` of a float32-kept node is a float tensor (NMS and the plugins' int outputs are not)."""
    if node.op_type == "NonMaxSuppression":
        return False
    if node.op_type == "VarRoIPool":
        return index == 0
    if node.op_type == "AttnDecoder":
        return index == 1
    return True
