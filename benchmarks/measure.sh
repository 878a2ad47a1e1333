#!/usr/bin/env bash
# Reproduces the numbers of the README and the model card (CPU, this repository's .venv).
#   bash benchmarks/measure.sh [WEIGHTS] [OUT_DIR]
# ONLY=dev,val,syn,crops,video,latency picks parts (default: all).
set -euo pipefail
cd "$(dirname "$0")/.."
W=${1:-spotrt/weights/spotrt_light.safetensors}
OUT=${2:-out/measure}
ONLY=${ONLY:-dev,val,syn,crops,video,latency}
DEV=../shared/data/ic15_dev
VIDEO=../shared/data/video/sign_bw_960x506.mp4
S=.venv/bin/spotrt
mkdir -p "$OUT"
has() { [[ ",$ONLY," == *",$1,"* ]]; }
if has syn; then
  echo "== held-out synthetic, levels 0,1,2 (200 images each, 256x512)"
  for L in 0 1 2; do $S eval --model "$W" --synthetic 200 --level $L --json "$OUT/synthetic_L$L.json" --quiet; done
fi
if has dev; then
  echo "== ICDAR 2015 dev (100 images): detection, end-to-end, word spotting, lexicons, recognition on GT crops"
  $S eval --model "$W" --data $DEV --lexicon all --json "$OUT/ic15_dev.json" --quiet
fi
if has val; then
  echo "== ICDAR 2015 training validation split (100 images, 1280x720; benchmarks/ic15_val.py)"
  [ -d out/ic15_val ] || .venv/bin/python benchmarks/ic15_val.py --out out/ic15_val
  $S eval --model "$W" --data out/ic15_val --lexicon none --json "$OUT/ic15_val.json" --quiet
fi
if has crops; then
  echo "== held-out synthetic word crops (held-out fonts, open vocabulary): 1000 words"
  $S eval --model "$W" --synthetic-crops 1000 --json "$OUT/synthetic_crops.json" --quiet
fi
if has video; then
  echo "== sign video at default settings ($VIDEO)"
  $S run "$VIDEO" --model "$W" --jsonl "$OUT/sign.jsonl" --quiet
  .venv/bin/python benchmarks/video_words.py "$OUT/sign.jsonl" --words black,lives,matter | tee "$OUT/sign_words.txt"
fi
if has latency; then
  echo "== spot latency on a 1280x720 image (torch, CPU)"
  .venv/bin/python benchmarks/spot_latency.py $DEV/images/img_1.jpg --model "$W" --runs 10 | tee "$OUT/latency.txt"
fi
