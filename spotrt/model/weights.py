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


def init_matching(model: Spotter, path) -> list[str]:
    """Copy into `model` every tensor of `path` whose name and shape fit (fine-tuning from weights of
    an earlier config); returns the names of the model's tensors that were left as initialized."""
    read_metadata(path)
    state = model.state_dict()
    fresh = []
    with safe_open(str(path), framework="pt") as f:
        keys = set(f.keys())
        for k, v in state.items():
            if k in keys:
                t = f.get_tensor(k)
                if tuple(t.shape) == tuple(v.shape):
                    state[k] = t
                    continue
            fresh.append(k)
    model.load_state_dict(state)
    return fresh


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
