"""Write the validation split of ICDAR 2015 training scenes (every 10th image, never trained on) as
an ICDAR 2015 folder in the camera's geometry (1280x720, like ic15_dev), for choosing checkpoints
and thresholds:

    python benchmarks/ic15_val.py [--root ../shared/data/ic15_train] [--out out/ic15_val]
    spotrt eval --data out/ic15_val --lexicon none --model runs/x/last.safetensors
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from spotrt.data.scenes import read_scene_set, split_scenes, write_camera_set  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=str(ROOT.parent / "shared" / "data" / "ic15_train"))
    ap.add_argument("--out", default=str(ROOT / "out" / "ic15_val"))
    a = ap.parse_args(argv)
    try:
        _, val = split_scenes(read_scene_set(a.root))
        out = write_camera_set(val, a.out)
    except (ValueError, OSError) as exc:
        print(f"ic15_val: error: {exc}", file=sys.stderr)
        return 1
    print(f"{len(val)} validation scenes -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
