"""AttnDecoder as an ONNX Runtime CPU custom op (onnxruntime-extensions), computed by reference.py.

Inputs in SPEC.inputs order: memory, widths (int32), holistic, then the weights in WEIGHT_NAMES
order. Importing this module registers the op; it lives in the domain DOMAIN ("ai.onnx.contrib").

An exception raised inside a Python op aborts the whole process (onnxruntime-extensions 0.15.2,
found in testing), so validate the graph's attributes (spec.validate) before creating the session.
"""

from __future__ import annotations

import numpy as np
from onnxruntime_extensions import PyCustomOpDef, default_opset_domain, onnx_op

from .reference import WEIGHT_NAMES, attn_decoder_ref
from .spec import SPEC, validate

DOMAIN = default_opset_domain()


@onnx_op(
    op_type=SPEC.name,
    inputs=[PyCustomOpDef.dt_float, PyCustomOpDef.dt_int32, PyCustomOpDef.dt_float]
    + [PyCustomOpDef.dt_float] * len(WEIGHT_NAMES),
    outputs=[PyCustomOpDef.dt_int32, PyCustomOpDef.dt_float],
    attrs={a.name: PyCustomOpDef.dt_int64 for a in SPEC.attributes},
)
def attn_decoder_ort(memory, widths, holistic, *weights, **attrs):
    """memory (N,W,D), widths (N,), holistic (N,D), weights... -> tokens (N,T) int32, probs (N,T) float32."""
    named = dict(zip(WEIGHT_NAMES, weights))
    a = validate(attrs, named)
    tokens, probs = attn_decoder_ref(memory, widths, holistic, named, a["max_len"], a["start_token"], a["num_classes"])
    return tokens.astype(np.int32), probs.astype(np.float32)
