#!/usr/bin/env bash
# Reproduces the tables of benchmarks/README.md (CPU, this repository's .venv).
#   bash benchmarks/bench.sh [WEIGHTS] [OUT_DIR]
# One torch / ONNX Runtime thread: on a 2-core machine shared with other work, two threads stall at
# every parallel region's barrier whenever one core is taken (see benchmarks/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
W=${1:-spotrt/weights/spotrt_light.safetensors}
OUT=${2:-out/bench}
S=".venv/bin/spotrt bench --model $W --threads 1"
mkdir -p "$OUT"
echo "== defaults (torch 384x640, comparisons, Jetson estimates)"
$S --json "$OUT/cpu_384x640.json" --plot "$OUT/cpu_384x640.png" | tee "$OUT/cpu_384x640.md"
echo "== torch sweep: input size x batch"
$S --input-size 384x640,736x1280 --batch 1,2 --no-compare --json "$OUT/torch_sweep.json" \
   --plot "$OUT/torch_sweep.png" | tee "$OUT/torch_sweep.md"
echo "== ONNX Runtime sweep: input size x precision"
$S --backend onnxruntime --precision fp32,int8 --input-size 384x640,736x1280 --no-compare \
   --json "$OUT/ort_sweep.json" --plot "$OUT/ort_sweep.png" | tee "$OUT/ort_sweep.md"
echo "== comparisons on real frames (ICDAR 2015 dev, 8 images, 736x1280)"
$S --images ../shared/data/ic15_dev/images --frames 8 --input-size 736x1280 --json "$OUT/ic15_736x1280.json" \
   --plot "$OUT/ic15_736x1280.png" | tee "$OUT/ic15_736x1280.md"
