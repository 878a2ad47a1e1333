"""The PyTorch spotter (never imports tensorrt)."""

from .config import DEFAULT_CHARSET, SpotterConfig

__all__ = ["DEFAULT_CHARSET", "SpotterConfig"]
