#!/usr/bin/env bash
# Reproduces the numbers of the README and the model card (CPU, this repository's .venv).
#   bash benchmarks/measure.sh [WEIGHTS] [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
W=${1:-spotrt/weights/spotrt_light.safetensors}
OUT=${2:-out/measure}
DEV=../shared/data/ic15_dev
S=.venv/bin/spotrt
mkdir -p "$OUT"
echo "== held-out synthetic, levels 0,1,2 (200 images each, 256x512)"
for L in 0 1 2; do $S eval --model "$W" --synthetic 200 --level $L --json "$OUT/synthetic_L$L.json" --quiet; done
echo "== ICDAR 2015 dev (100 images): detection, end-to-end, word spotting, lexicons, recognition on GT crops"
$S eval --model "$W" --data $DEV --lexicon all --json "$OUT/ic15_dev.json" --quiet
echo "== spot latency on a 1280x720 image (torch, CPU)"
.venv/bin/python benchmarks/spot_latency.py $DEV/images/img_1.jpg --model "$W" --runs 10 | tee "$OUT/latency.txt"
