"""What passes between the stages, read and written in one place: weights-file metadata, the
metadata of an exported ONNX graph, the stamp beside a TensorRT engine, and their sha256 digests.

Every room may import this package: it imports neither torch nor tensorrt (ONNX only inside the
functions that load a graph).
"""
