"""spotrt::VarRoIPool as a TensorRT IPluginV3 (float32, linear). Load through spotrt.plugins.trt_register."""

from __future__ import annotations

import numpy as np
import tensorrt as trt

from ..trt_base import SpotrtCreator, SpotrtPlugin
from ..trt_support import dims, kernel_function
from . import launch
from .spec import KERNEL_NAME, SPEC


class VarRoIPoolPlugin(SpotrtPlugin):
    SPEC = SPEC
    NUM_OUTPUTS = launch.NUM_OUTPUTS

    def get_output_data_types(self, input_types):
        return [trt.DataType.FLOAT, trt.DataType.INT32]

    def get_output_shapes(self, inputs, shape_inputs, exprBuilder):
        features, rois = inputs[0], inputs[1]
        pooled = trt.DimsExprs(4)
        pooled[0] = rois[0]
        pooled[1] = features[1]
        pooled[2] = exprBuilder.constant(self.attrs["pooled_height"])
        pooled[3] = exprBuilder.constant(self.attrs["max_width"])
        widths = trt.DimsExprs(1)
        widths[0] = rois[0]
        return [pooled, widths]

    def supports_format_combination(self, pos, in_out, num_inputs):
        desc = in_out[pos].desc
        if pos in (0, 1, 3):  # features, rois, pooled
            return self.linear(desc, trt.DataType.FLOAT)
        return self.linear(desc, trt.DataType.INT32)  # batch_index, widths

    def prepare(self, shapes):
        launch.check_input_shapes(shapes)
        self.function = kernel_function(SPEC, KERNEL_NAME)

    def enqueue(self, input_desc, output_desc, inputs, outputs, workspace, stream):
        from cuda.bindings import driver

        from .. import nvrtc

        shapes = [dims(d.dims) for d in input_desc]
        grid, block, scalars = launch.launch(shapes, self.attrs)
        ptrs = [np.uint64(p) for p in (inputs[0], inputs[1], inputs[2], outputs[0], outputs[1])]
        nvrtc.launch(self.function, grid, block, ptrs + scalars, stream=driver.CUstream(int(stream)))


class VarRoIPoolCreator(SpotrtCreator):
    PLUGIN = VarRoIPoolPlugin
