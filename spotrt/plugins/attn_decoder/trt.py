"""spotrt::AttnDecoder as a TensorRT IPluginV3 (float32, linear). Load through spotrt.plugins.trt_register."""

from __future__ import annotations

import numpy as np
import tensorrt as trt

from ..trt_base import SpotrtCreator, SpotrtPlugin
from ..trt_support import dims, kernel_function
from . import launch
from .spec import KERNEL_NAME, SPEC


class AttnDecoderPlugin(SpotrtPlugin):
    SPEC = SPEC
    NUM_OUTPUTS = launch.NUM_OUTPUTS

    def get_output_data_types(self, input_types):
        return [trt.DataType.INT32, trt.DataType.FLOAT]

    def get_output_shapes(self, inputs, shape_inputs, exprBuilder):
        memory = inputs[0]
        tokens = trt.DimsExprs(2)
        tokens[0] = memory[0]
        tokens[1] = exprBuilder.constant(self.attrs["max_len"])
        probs = trt.DimsExprs(2)
        probs[0] = memory[0]
        probs[1] = exprBuilder.constant(self.attrs["max_len"])
        return [tokens, probs]

    def supports_format_combination(self, pos, in_out, num_inputs):
        desc = in_out[pos].desc
        if pos == 1 or pos == num_inputs:  # widths, tokens
            return self.linear(desc, trt.DataType.INT32)
        return self.linear(desc, trt.DataType.FLOAT)  # memory, holistic, weights, probs

    def get_workspace_size(self, input_desc, output_desc):
        return launch.workspace([dims(d.max) for d in input_desc], self.attrs)

    def prepare(self, shapes):
        launch.sizes(shapes, self.attrs)
        self.function = kernel_function(SPEC, KERNEL_NAME)

    def enqueue(self, input_desc, output_desc, inputs, outputs, workspace, stream):
        from cuda.bindings import driver

        from .. import nvrtc

        shapes = [dims(d.dims) for d in input_desc]
        grid, block, shm, scalars = launch.launch(shapes, self.attrs)
        ptrs = [np.uint64(p) for p in list(inputs) + [outputs[0], outputs[1], workspace]]
        nvrtc.launch(self.function, grid, block, ptrs + scalars, shared_bytes=shm, stream=driver.CUstream(int(stream)))


class AttnDecoderCreator(SpotrtCreator):
    PLUGIN = AttnDecoderPlugin
