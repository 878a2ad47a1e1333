"""Training: data batches, multi-task loss, curriculum, checkpoints and resume.

`TrainConfig` (settings, defaults, checks) imports without torch; `train` needs torch and is loaded
on first use.
"""

from .config import TrainConfig

__all__ = ["TrainConfig", "train"]


def __getattr__(name):
    if name == "train":
        from .loop import train

        return train
    raise AttributeError(f"module 'spotrt.train' has no attribute {name!r}")
