"""Training: data batches, multi-task loss, curriculum, checkpoints and resume."""

from .loop import TrainConfig, train

__all__ = ["TrainConfig", "train"]
