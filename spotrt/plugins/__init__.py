"""Reference definitions (and, later, CUDA/TensorRT kernels) of the spotter's custom ops."""
