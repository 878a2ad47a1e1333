"""Serving the spotter from NVIDIA Triton Inference Server. Never imports torch (unless the model
served is a weights file) and imports PyTriton only in `spotrt serve` (spotrt.serve.pytriton_server).

    answer.py           how the model answers a request (its tensors: spotrt.formats.triton, which
                        the client shares): `spotrt serve` and the stock repository's model.py
    pytriton_server.py  `spotrt serve`: the spotter bound as a Triton model through PyTriton
    repository.py       `spotrt export --triton-repo DIR`: a model repository for a stock Triton server
    triton_model.py     the Python-backend model.py written into that repository

The client side (`spotrt run --server grpc://host:port`) is spotrt.runtime.triton_backend.
"""
