"""Weights files: a safetensors file whose metadata holds the model's config."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save

from .. import __version__
from ..errors import SpotrtError
from ..fileio import write_bytes_atomic
from ..formats.shipped import WEIGHTS as DEFAULT_WEIGHTS
from ..formats.weights import FORMAT, read_metadata
from .config import SpotterConfig
from .spotter import Spotter


def atomic_save(tensors: dict[str, torch.Tensor], path: str | os.PathLike, metadata: dict[str, str]) -> None:
    """Write a safetensors file through a temporary file and a rename: never half a file."""
    data = save({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, metadata=metadata)
    write_bytes_atomic(path, data, "weights file")


def save_weights(model: Spotter, path, extra: dict | None = None) -> None:
    meta = {"format": FORMAT, "spotrt_version": __version__, "config": model.cfg.to_json()}
    if extra:
        meta["extra"] = json.dumps(extra, sort_keys=True)
    atomic_save(model.state_dict(), path, meta)


def load_weights(path=None, device: str = "cpu") -> Spotter:
    """Build the model its file describes and load it; one clear error for a file of another model."""
    path = Path(path) if path else DEFAULT_WEIGHTS
    meta = read_metadata(path, require_config=True)
    try:
        cfg = SpotterConfig.from_json(meta["config"])
    except (ValueError, TypeError) as exc:
        raise SpotrtError(f"weights {path}: its config is invalid: {exc}") from None
    model = Spotter(cfg)
    expected = model.state_dict()
    with safe_open(str(path), framework="pt", device=device) as f:
        keys = set(f.keys())
        missing = sorted(set(expected) - keys)
        unexpected = sorted(keys - set(expected))
        if missing or unexpected:
            what = f"missing tensor {missing[0]!r}" if missing else f"unexpected tensor {unexpected[0]!r}"
            raise SpotrtError(
                f"weights {path}: {what} ({len(missing)} missing, {len(unexpected)} unexpected), "
                f"expected the tensors of a {cfg.backbone} spotter"
            )
        state = {}
        for k in expected:
            t = f.get_tensor(k)
            if tuple(t.shape) != tuple(expected[k].shape):
                raise SpotrtError(
                    f"weights {path}: tensor {k!r} has shape {tuple(t.shape)}, the config expects "
                    f"{tuple(expected[k].shape)} (weights of another config?)"
                )
            state[k] = t
    model.load_state_dict(state)
    model.to(device).eval()
    return model


# Config fields a recognizer may grow by, keeping what it has learned (see widen_into).
WIDENABLE = ("encoder_channels", "decoder_hidden")


def _segments(name: str, dim: int, old: int, new: int, before: SpotterConfig, after: SpotterConfig):
    """How dimension `dim` of tensor `name` is laid out: a list of (old size, new size) blocks, each
    growing at its end. Most grown dimensions are one block; an LSTM's gate dimension is four (the
    i, f, g, o gates each grow), and the decoder's output layer reads cat(h, context)."""
    if name.startswith("decoder.cell.") and dim == 0:
        return [(before.decoder_hidden, after.decoder_hidden)] * 4
    if name == "decoder.out.weight" and dim == 1:
        return [(before.decoder_hidden, after.decoder_hidden), (before.encoder_hidden, after.encoder_hidden)]
    return [(old, new)]


def _kept(segments) -> tuple[torch.Tensor, torch.Tensor]:
    """(indices in the grown tensor of the old entries, indices of the new ones)."""
    kept, added, at = [], [], 0
    for o, n in segments:
        kept += range(at, at + o)
        added += range(at + o, at + n)
        at += n
    return torch.tensor(kept, dtype=torch.long), torch.tensor(added, dtype=torch.long)


def widen_into(grown: torch.Tensor, old: torch.Tensor, name: str, before: SpotterConfig,
               after: SpotterConfig) -> torch.Tensor:
    """The grown tensor holding `old` where it came from, so the grown model computes what the old one
    did (Net2Net's function-preserving widening, with zero weights instead of copied units): new
    output units keep their fresh initialization, but their weights into the old units are zero, so
    nothing downstream sees them until training moves those weights off zero. Batch-norm
    statistics stay per channel, and so do the new channels'."""
    out = grown.detach().clone()
    kept = []
    for dim, (o, n) in enumerate(zip(old.shape, grown.shape)):
        segs = _segments(name, dim, o, n, before, after)
        if sum(a for a, _ in segs) != o or sum(b for _, b in segs) != n:
            raise ValueError(f"tensor {name}: cannot grow dimension {dim} from {o} to {n}")
        kept.append(_kept(segs))
    out[torch.meshgrid(*[k for k, _ in kept], indexing="ij")] = old.to(out.dtype)
    if old.dim() >= 2 and kept[1][1].numel():  # (out, in, ...): new inputs into old outputs are zero
        idx = [kept[0][0], kept[1][1]] + [torch.arange(s) for s in old.shape[2:]]
        out[torch.meshgrid(*idx, indexing="ij")] = 0
    return out


def init_matching(model: Spotter, path) -> tuple[list[str], list[str]]:
    """Copy into `model` every tensor of `path` whose name and shape fit (fine-tuning from weights of
    an earlier config). Where the model's recognizer is wider than the file's (only fields of
    WIDENABLE differ), the old tensors are embedded by widen_into, so training starts from what the
    file could read. Returns (names left as initialized, names widened)."""
    before = config_of(path)  # reads and checks the file's metadata
    after = model.cfg
    state = model.state_dict()
    # widen only where the fields of WIDENABLE, grown, explain every change of shape
    grow = all(getattr(after, f) >= getattr(before, f) for f in WIDENABLE)
    if grow:
        only = Spotter(before.replace(**{f: getattr(after, f) for f in WIDENABLE})).state_dict()
        grow = {k: v.shape for k, v in only.items()} == {k: v.shape for k, v in state.items()}
    fresh, widened = [], []
    with safe_open(str(path), framework="pt") as f:
        keys = set(f.keys())
        for k, v in state.items():
            if k in keys:
                t = f.get_tensor(k)
                if tuple(t.shape) == tuple(v.shape):
                    state[k] = t
                    continue
                if grow and t.dim() == v.dim() and all(a <= b for a, b in zip(t.shape, v.shape)):
                    state[k] = widen_into(v, t, k, before, after)
                    widened.append(k)
                    continue
            fresh.append(k)
    model.load_state_dict(state)
    return fresh, widened


def config_of(path) -> SpotterConfig:
    """The config stored in a weights file."""
    return SpotterConfig.from_json(read_metadata(path, require_config=True)["config"])


def set_config(path, **changes) -> SpotterConfig:
    """Rewrite a weights file with config fields changed (inference settings such as
    word_score_thresh); tensors and other metadata are kept, the file is replaced atomically."""
    cfg = config_of(path).replace(**changes)
    meta = read_metadata(path)
    meta["config"] = cfg.to_json()
    with safe_open(str(path), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    atomic_save(tensors, path, meta)
    return cfg
