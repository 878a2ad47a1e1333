"""The Python-backend model of a spotrt model repository (copied there as `<name>/1/model.py`).

A stock Triton server runs it with its own Python, where spotrt must be installed
(`pip install 'spotrt[onnx]'` for an .onnx; TensorRT's Python bindings for an .engine). It loads the
model file named by the config's `spotrt_model` parameter from its version folder through
spotrt.api.load_spotter, as `spotrt run` does: an engine's .engine.json stamp is checked (same
TensorRT, same GPU, same file) and spotrt's plugins are registered before it is deserialized. A
model that cannot load fails its load with the one-line reason; the server goes on. Each request
is answered apart (an error response for one that cannot be), the frames of all valid requests of
a batch going through the spotter together (spotrt.serve.answer, spotrt.formats.triton).
"""

import json
import os

import triton_python_backend_utils as pb_utils  # provided by Triton's Python backend


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = {k: v.get("string_value", "") for k, v in config.get("parameters", {}).items()}
        name = params.get("spotrt_model", "")
        path = os.path.join(args["model_repository"], args["model_version"], name)
        try:
            from spotrt.api import load_spotter
            from spotrt.errors import SpotrtError
            from spotrt.formats import triton as tensors
            from spotrt.serve.answer import answer_requests
        except ImportError as exc:
            raise pb_utils.TritonModelException(
                f"spotrt: {exc.name or exc} is not installed in Triton's Python, expected pip install 'spotrt[onnx]' "
                "there (TensorRT's bindings too for an engine)") from None
        self.tensors, self.answer_requests = tensors, answer_requests
        threads = int(params.get("spotrt_threads") or 0) or None
        spinning = params.get("spotrt_spinning", "true") != "false"  # "false": several CPU instances share the cores
        try:
            self.spotter = load_spotter(path, "auto", threads=threads, spinning=spinning)
        except SpotrtError as exc:
            raise pb_utils.TritonModelException(f"spotrt: {exc}") from None

    def execute(self, requests):
        inputs = []
        for request in requests:
            inputs.append(tuple(pb_utils.get_input_tensor_by_name(request, t.name).as_numpy()
                                for t in self.tensors.INPUTS))
        responses = []
        for result in self.answer_requests(self.spotter, inputs):
            if isinstance(result, Exception):
                responses.append(pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(
                    f"RequestError: {result}")))
                continue
            tensors = [pb_utils.Tensor(t.name, result[t.name].astype(t.numpy) if t.datatype != "BYTES"
                                       else result[t.name]) for t in self.tensors.OUTPUTS]
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
        return responses

    def finalize(self):
        close = getattr(getattr(self, "spotter", None), "close", None)
        if callable(close):
            close()
