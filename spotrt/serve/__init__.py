"""Serving the spotter from NVIDIA Triton Inference Server. Never imports torch (unless the model
served is a weights file) and imports PyTriton only in `spotrt serve` (spotrt.serve.pytriton_server).

    protocol.py         the model's tensors (names, types, shapes) and the code that answers a request:
                        shared by `spotrt serve`, the stock repository's model.py and the client
    pytriton_server.py  `spotrt serve`: the spotter bound as a Triton model through PyTriton
    repository.py       `spotrt export --triton-repo DIR`: a model repository for a stock Triton server
    triton_model.py     the Python-backend model.py written into that repository

The client side (`spotrt run --server grpc://host:port`) is spotrt.runtime.triton_backend.
"""
