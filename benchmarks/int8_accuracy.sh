#!/usr/bin/env bash
# INT8 (Q/DQ on ONNX Runtime CPU) against FP32 on the same exported graph: end-to-end hmean on held-out
# synthetic scenes and on ICDAR 2015 dev (issue 4's gate: at most 1.0 point lost), and the speed ratio.
#   bash benchmarks/int8_accuracy.sh [WEIGHTS] [OUT_DIR]      (N_SYN=200 CAL_FRAMES=64 METHOD=percentile CAL_IMAGES=)
# Calibration never sees the evaluation images: the 256x512 graph is calibrated on synthetic scenes
# of another seed, the 736x1280 graph on frames of the real video ../shared/data/video/sign_bw_960x506.mp4,
# or on the images of CAL_IMAGES (e.g. out/ic15_val/images, the ic15_train validation split; never dev).
set -euo pipefail
cd "$(dirname "$0")/.."
W=${1:-spotrt/weights/spotrt_light.safetensors}
OUT=${2:-out/int8}
N_SYN=${N_SYN:-200}
CAL_FRAMES=${CAL_FRAMES:-64}
METHOD=${METHOD:-percentile}
DEV=${DEV:-../shared/data/ic15_dev}
VIDEO=../shared/data/video/sign_bw_960x506.mp4
S=.venv/bin/spotrt
mkdir -p "$OUT/calib_syn"
.venv/bin/python - "$OUT/calib_syn" "$CAL_FRAMES" <<'PY'
import sys, cv2
from spotrt.eval.runner import synthetic_set
for key, scene in synthetic_set(int(sys.argv[2]), 1, 99, 256, 512):  # seed 99: not the evaluation's seed 1
    cv2.imwrite(f"{sys.argv[1]}/{key}.png", scene.image)
PY
$S export --model "$W" --out "$OUT/syn" --input-size 256x512 --graphs portable
$S export --model "$W" --out "$OUT/dev" --input-size 736x1280 --graphs portable,read
$S calibrate --onnx "$OUT/syn/model.portable.onnx" --images "$OUT/calib_syn" --frames "$CAL_FRAMES" --method "$METHOD" --out "$OUT/syn/model.int8.onnx"
if [ -n "${CAL_IMAGES:-}" ]; then CAL_SRC=(--images "$CAL_IMAGES"); else CAL_SRC=(--video "$VIDEO"); fi
$S calibrate --onnx "$OUT/dev/model.portable.onnx" "${CAL_SRC[@]}" --frames "$CAL_FRAMES" --method "$METHOD" --out "$OUT/dev/model.int8.onnx"
for P in portable int8; do
  M=model.$P.onnx
  echo "== $M: held-out synthetic level 1 ($N_SYN images), ICDAR 2015 dev"
  $S eval --model "$OUT/syn/$M" --synthetic "$N_SYN" --level 1 --json "$OUT/syn_$P.json" --quiet
  $S eval --model "$OUT/dev/$M" --data $DEV --lexicon all --no-recognition --json "$OUT/dev_$P.json" --quiet
done
.venv/bin/python - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
for name in ("syn", "dev"):
    f, q = (json.load(open(f"{out}/{name}_{p}.json")) for p in ("portable", "int8"))
    for key in ("detection", "e2e_none", "e2e_strong"):
        if key in f:
            a, b = f[key]["hmean"], q[key]["hmean"]
            print(f"{name} {key}: fp32 {a:.3f} int8 {b:.3f} loss {100 * (a - b):+.1f} points")
PY
.venv/bin/python benchmarks/int8_vs_fp32.py --fp32 "$OUT/dev/model.portable.onnx" --int8 "$OUT/dev/model.int8.onnx" --runs 10 --json "$OUT/speed.json"
