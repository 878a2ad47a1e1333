#!/usr/bin/env bash
# On a GPU machine, from the checkout with the folder of tools/gpu_kit.py beside it as .devgpu/:
# the kernel checks and timing (benchmarks/gpu_check.sh), then a training run into $OUT for at most
# TOTAL seconds. CHECK=0 skips the kernel checks. The train flags default to those of the H200 run g1
# of 2026-12-04; TRAIN_ARGS replaces them (the data paths, --out, --device and --workers stay).
set -u
S=$(date +%s); OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
export PYTHONPATH="$PWD:$PWD/.devgpu/site"
TOTAL=${TOTAL:-560}; STEPS=${STEPS:-2400}; DEV=${DEV:-cuda}; WORKERS=${WORKERS:-14}
{ nvidia-smi --query-gpu=name,driver_version,memory.used,clocks.sm --format=csv; nproc;
  python3 -c "import torch, numpy, cv2, PIL, cuda.bindings; print('torch', torch.__version__, torch.version.cuda, 'numpy', numpy.__version__, 'cv2', cv2.__version__, 'cuda-bindings', cuda.bindings.__version__)"; } 2>&1 | tee "$OUT/env.txt"
if [ "$DEV" = cuda ]; then
  if ! { mkdir -p /usr/share/fonts/truetype && tar xJf .devgpu/fonts.tar.xz -C /usr/share/fonts/truetype; }; then
    echo "fonts: /usr/share/fonts not writable; a font package folder instead"
    mkdir -p .devgpu/site/font_roboto/files && touch .devgpu/site/font_roboto/__init__.py && tar xJf .devgpu/fonts.tar.xz -C .devgpu/site/font_roboto/files
  fi
  python3 -c "from spotrt.data.fonts import find_fonts; print('train fonts', len(find_fonts('train')))"
  if [ "${CHECK:-1}" != 0 ]; then
    timeout 170 bash benchmarks/gpu_check.sh "$OUT" .devgpu/data/ic15_train/images > "$OUT/gpu_check.log" 2>&1
    echo "gpu_check exit $?"; tail -n 12 "$OUT/gpu_check.log"
  fi
fi
left=$(( TOTAL - ($(date +%s) - S) - 20 ))
echo "training for at most ${left}s"
TRAIN_ARGS=${TRAIN_ARGS:---steps $STEPS --batch 6 --real-scenes 4 --mosaics 4 --rec-per-mosaic 64 --size 320x640 \
  --open-text --paste-share 0.3 --real-fraction 0.4 --small-text 0.3 --init spotrt/weights/spotrt_light.safetensors \
  --curriculum 0:2 --mosaic-curriculum 0:2 --lr 8e-4 --warmup 100 --bf16 --seed 13 --checkpoint-every 100}
# shellcheck disable=SC2086  # TRAIN_ARGS is a list of flags
timeout -k 10 "$left" python3 -c 'import sys; from spotrt.cli import main; sys.exit(main(sys.argv[1:]))' train \
  --out /tmp/g1 $TRAIN_ARGS --scene-root .devgpu/data/ic15_train --backgrounds .devgpu/data/backgrounds \
  --real-crops .devgpu/data/ic15_train_words --device "$DEV" --workers "$WORKERS" \
  > "$OUT/train.log" 2>&1
echo "train exit $?"
cp /tmp/g1/last.safetensors /tmp/g1/log.jsonl "$OUT/" 2>/dev/null
python3 - "$OUT" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1] + "/log.jsonl")]
print("steps", len(rows), "last", rows[-1]["step"], "time", rows[-1]["time"], "s")
for a in range(0, len(rows), max(1, len(rows) // 8)):
    b = rows[a:a + 100]
    print(a, "loss %.3f rec %.3f det %.3f" % tuple(sum(r[k] for r in b) / len(b) for k in ("loss", "rec", "det_cls")))
PY
grep -v "it/s\|step/s\|s/step" "$OUT/train.log" | tail -n 5
