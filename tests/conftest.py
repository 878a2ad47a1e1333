import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def untrained_weights(tmp_path_factory) -> Path:
    """A weights file of an untrained default-config spotter (fast to make, exercises every path)."""
    import torch

    from spotrt.model.config import SpotterConfig
    from spotrt.model.spotter import Spotter
    from spotrt.model.weights import save_weights

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "untrained.safetensors"
    save_weights(Spotter(SpotterConfig()).eval(), path)
    return path


def shared_data(*parts) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared ICDAR 2015 data sits beside the project)")
    return path
