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


def random_batch(batch: int, seed: int = 3):
    """The normalized random input (batch,3,128,256) that small_spotter's tests run on."""
    import numpy as np
    import torch

    return torch.from_numpy(np.random.default_rng(seed).standard_normal((batch, 3, 128, 256)).astype(np.float32))


def small_spotter(seed: int = 0, **changes):
    """A seeded random spotter at 128x256, its weights scaled so that proposals spread, detections
    pass the score threshold and the decoder reads non-empty words (no trained model is needed)."""
    import torch

    from spotrt.model.config import SpotterConfig
    from spotrt.model.spotter import Spotter

    torch.manual_seed(seed)
    cfg = SpotterConfig(input_height=128, input_width=256, max_proposals=12, **changes)
    model = Spotter(cfg).eval()
    with torch.no_grad():
        model.tpn.cls.weight.mul_(20.0)   # distinct proposal scores: no ties for TopK / NMS to break
        model.tpn.cls.bias.zero_()
        model.tpn.reg.weight.mul_(10.0)
        model.detector.cls.bias.fill_(1.0)
        model.decoder.out.bias[0] -= 1.0  # end-of-word a bit later: words of several characters
    return model


@pytest.fixture(scope="session")
def exported_small(tmp_path_factory):
    """small_spotter() exported at 128x256, batch 1: (model, {kind: path}, weights path)."""
    from spotrt.export.onnx_export import export_model
    from spotrt.model.weights import save_weights

    model = small_spotter()
    out = tmp_path_factory.mktemp("export")
    paths = export_model(model, out, input_size=(128, 256), batch=1)
    weights = out / "small.safetensors"
    save_weights(model, weights)
    return model, paths, weights
