"""A copy of a weights file whose coarse proposal levels never propose: for measuring what those
levels add (the same weights otherwise, at inference only).

    python benchmarks/without_levels.py WEIGHTS OUT.safetensors
    spotrt eval --data ../shared/data/ic15_dev --model OUT.safetensors ...
"""
from __future__ import annotations

import sys

import torch

from spotrt.model.weights import load_weights, save_weights


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: without_levels.py WEIGHTS OUT.safetensors", file=sys.stderr)
        return 1
    model = load_weights(argv[0])
    if not len(model.tpn.level_cls):
        print(f"without_levels: error: {argv[0]}: found no extra proposal levels, expected a model with "
              "level_anchor_heights", file=sys.stderr)
        return 1
    with torch.no_grad():
        for cls in model.tpn.level_cls:  # logits far below any stride-8 anchor's: never in the top proposals
            cls.weight.zero_()
            cls.bias.fill_(-1e4)
    save_weights(model, argv[1])
    print(f"{argv[1]}: {len(model.tpn.level_cls)} coarse levels silenced")
    return 0


if __name__ == "__main__":
    sys.exit(main())
