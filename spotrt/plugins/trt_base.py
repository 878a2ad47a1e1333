"""IPluginV3 base of the spotrt TensorRT plugins (imports tensorrt: load lazily, through trt_register).

The TensorRT-facing classes stay thin: attributes, shapes, launch geometry and kernels come from the
plain-Python modules (trt_support.py, <plugin>/launch.py) that CPU tests cover. The pattern is that of
TensorRT's samples/python (non_zero_plugin, python_plugin/circ_pad_plugin_multi_tactic): one object
implements IPluginV3OneCore/OneBuild/OneRuntime and returns itself for every capability. Plugin
state lives on the instance. enqueue launches on the stream TensorRT gives, never synchronizes and
never allocates device memory (the decoder's scratch is TensorRT's workspace).
"""

from __future__ import annotations

import numpy as np
import tensorrt as trt

from .spec import PluginSpec
from .trt_support import attrs_from_fields, dims, fields_to_serialize


# pybind11 bases must each be initialized explicitly (as TensorRT's Python plugin samples do).
_PLUGIN_BASES = (trt.IPluginV3, trt.IPluginV3OneCore, trt.IPluginV3OneBuild, trt.IPluginV3OneRuntime)
_CREATOR_BASE = trt.IPluginCreatorV3One


class SpotrtPlugin(*_PLUGIN_BASES):
    """Common plumbing; subclasses set SPEC and NUM_OUTPUTS and implement the shape/type/launch methods."""

    SPEC: PluginSpec
    NUM_OUTPUTS: int

    def __init__(self, attrs: dict[str, int]):
        for base in _PLUGIN_BASES:
            base.__init__(self)
        self.num_outputs = self.NUM_OUTPUTS
        self.plugin_namespace = self.SPEC.namespace
        self.plugin_name = self.SPEC.name
        self.plugin_version = self.SPEC.version
        self.timing_cache_id = ""
        self.attrs = self.SPEC.validate(attrs)
        self.shapes = None    # input shapes of the last on_shape_change
        self.function = None  # CUfunction, loaded in on_shape_change (never compiled there)

    # core / build
    def get_capability_interface(self, type):
        return self

    def get_fields_to_serialize(self):
        return trt.PluginFieldCollection([
            trt.PluginField(name, value, trt.PluginFieldType.INT32)
            for name, value in fields_to_serialize(self.SPEC, self.attrs)])

    def configure_plugin(self, inp, out):
        pass

    def on_shape_change(self, inp, out):
        self.shapes = [dims(d.dims) for d in inp]
        self.prepare(self.shapes)

    def attach_to_context(self, context):
        return self.clone()

    def set_tactic(self, tactic):
        pass

    def clone(self):
        other = type(self)(dict(self.attrs))
        other.__dict__.update(self.__dict__)
        return other

    def destroy(self):
        pass

    # helpers for subclasses
    @staticmethod
    def linear(desc, *types) -> bool:
        return desc.format == trt.TensorFormat.LINEAR and desc.type in types

    def prepare(self, shapes):
        """Check the input shapes and load the kernel (subclasses)."""
        raise NotImplementedError


class SpotrtCreator(_CREATOR_BASE):
    """Creator of one plugin class from ONNX attributes or serialized fields."""

    PLUGIN: type

    def __init__(self):
        _CREATOR_BASE.__init__(self)
        spec = self.PLUGIN.SPEC
        self.name = spec.name
        self.plugin_namespace = spec.namespace
        self.plugin_version = spec.version
        self.field_names = trt.PluginFieldCollection([
            trt.PluginField(a.name, np.array([]), trt.PluginFieldType.INT32) for a in spec.attributes])

    def create_plugin(self, name, fc, phase):
        return self.PLUGIN(attrs_from_fields(self.PLUGIN.SPEC, fc))
