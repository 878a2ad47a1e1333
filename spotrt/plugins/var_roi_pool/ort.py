"""VarRoIPool as an ONNX Runtime CPU custom op (onnxruntime-extensions), computed by reference.py.

Importing this module registers the op; run a graph with
`so.register_custom_ops_library(onnxruntime_extensions.get_library_path())`. Python ops of
onnxruntime-extensions live in the domain DOMAIN ("ai.onnx.contrib"), not in "spotrt".

An exception raised inside a Python op aborts the whole process (onnxruntime-extensions 0.15.2,
found in testing), so validate the graph's attributes (spec.validate) before creating the session.
"""

from __future__ import annotations

import numpy as np
from onnxruntime_extensions import PyCustomOpDef, default_opset_domain, onnx_op

from .reference import var_roi_pool_ref
from .spec import SPEC, validate

DOMAIN = default_opset_domain()


@onnx_op(
    op_type=SPEC.name,
    inputs=[PyCustomOpDef.dt_float, PyCustomOpDef.dt_float, PyCustomOpDef.dt_int32],
    outputs=[PyCustomOpDef.dt_float, PyCustomOpDef.dt_int64],
    attrs={a.name: PyCustomOpDef.dt_int64 for a in SPEC.attributes},
)
def var_roi_pool_ort(features, rois, batch_index, **attrs):
    """features (B,C,Hf,Wf), rois (N,4), batch_index (N,) int32 -> pooled (N,C,H,W_max), widths (N,) int64."""
    a = validate(attrs)
    pooled, widths = var_roi_pool_ref(features, rois, batch_index, a["stride"], a["pooled_height"], a["max_width"])
    return pooled, widths.astype(np.int64)
