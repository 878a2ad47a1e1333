"""The torch backend: a loaded Spotter as a Runner (spotrt/runner.py). Imports torch lazily.

The network is fully convolutional, so its input is not fixed: one image at a time (batch 1), of
any height and width (multiples of 32, see `prepare`).
"""

from __future__ import annotations

import numpy as np

from ..imageops import READ_HEIGHT, prepare_crop
from ..postprocess import decode_tokens, text_confidence
from ..runner import INPUT, OUTPUTS, AnySizeRunner
from .config import SpotterConfig


class TorchSpotter(AnySizeRunner):
    """Reads words in BGR images with the PyTorch model (the reference backend)."""

    name = "torch"

    def __init__(self, weights=None, device: str = "cpu", max_size: tuple[int, int] | None = None) -> None:
        self.weights, self.device = weights, device
        self.model = None
        self.load()
        self.cfg: SpotterConfig = self.model.cfg
        self.max_size = max_size or (self.cfg.input_height, self.cfg.input_width)
        self.input_size = self.max_size

    def describe(self) -> str:
        return f"model {self.weights}" if self.weights is not None else "backend torch"

    def _load(self) -> None:
        from .weights import load_weights

        self.model = load_weights(self.weights, self.device)

    def _close(self) -> None:
        self.model = None

    def _prep(self, image: np.ndarray):
        """(the network's input as a torch tensor on the device, letterbox) of one image."""
        import torch

        x, lb = self.prepare(image)
        return torch.from_numpy(x)[None].to(self.device), lb

    def _infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        with torch.no_grad():
            out = self.model(torch.from_numpy(feed[INPUT]).to(self.device))
        return {name: getattr(out, name).cpu().numpy() for name in OUTPUTS}

    def read(self, crop: np.ndarray) -> tuple[str, float]:
        """Recognize a whole crop as one word -> (text, mean character probability)."""
        import torch

        self.require_loaded()
        x, width = prepare_crop(crop, self.cfg.mean, self.cfg.std)
        rois = torch.tensor([[0.0, 0.0, float(width), float(READ_HEIGHT)]])
        with torch.no_grad():
            tokens, probs = self.model.recognize(torch.from_numpy(x)[None].to(self.device), rois.to(self.device),
                                                 torch.zeros(1, dtype=torch.long, device=self.device))
        text = decode_tokens(tokens[0].cpu().numpy(), self.cfg.charset)
        return text, text_confidence(probs[0].cpu().numpy(), text)
