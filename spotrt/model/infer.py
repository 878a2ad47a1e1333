"""The torch backend: a loaded Spotter behind the same interface as the other backends."""

from __future__ import annotations

import numpy as np
import torch

from ..imageops import READ_HEIGHT, prepare_crop, preprocess
from ..postprocess import SpottedWord, decode_tokens, text_confidence, words_of
from .config import SpotterConfig
from .weights import load_weights


class TorchSpotter:
    """Reads words in BGR images with the PyTorch model (the reference backend)."""

    name = "torch"
    scale = 1.0  # frames are resized by this before the network (load_spotter's `scale`)

    def __init__(self, weights=None, device: str = "cpu", max_size: tuple[int, int] | None = None) -> None:
        self.model = load_weights(weights, device)
        self.cfg: SpotterConfig = self.model.cfg
        self.device = device
        self.max_size = max_size or (self.cfg.input_height, self.cfg.input_width)

    def _prep(self, image: np.ndarray):
        # The network is fully convolutional: a scale above 1 grows the size cap with it, so small
        # text is read at that size (a fixed-size exported graph cannot, see spot_fixed_graph).
        grow = max(1.0, float(self.scale))
        cap = (round(self.max_size[0] * grow), round(self.max_size[1] * grow))
        x, lb = preprocess(image, self.cfg.mean, self.cfg.std, cap, multiple=32, scale=self.scale)
        return torch.from_numpy(x)[None].to(self.device), lb

    def spot(self, image: np.ndarray) -> list[SpottedWord]:
        x, lb = self._prep(image)
        out = self.model(x)
        return words_of(self.cfg, out.boxes[0].cpu().numpy(), out.scores[0].cpu().numpy(),
                        out.tokens[0].cpu().numpy(), out.token_probs[0].cpu().numpy(), int(out.count[0]), lb)

    def read(self, crop: np.ndarray) -> tuple[str, float]:
        """Recognize a whole crop as one word -> (text, mean character probability)."""
        x, width = prepare_crop(crop, self.cfg.mean, self.cfg.std)
        rois = torch.tensor([[0.0, 0.0, float(width), float(READ_HEIGHT)]])
        tokens, probs = self.model.recognize(torch.from_numpy(x)[None].to(self.device), rois.to(self.device),
                                             torch.zeros(1, dtype=torch.long, device=self.device))
        text = decode_tokens(tokens[0].cpu().numpy(), self.cfg.charset)
        return text, text_confidence(probs[0].cpu().numpy(), text)
