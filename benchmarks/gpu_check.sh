#!/usr/bin/env bash
# On a machine with a CUDA GPU (no install needed: PYTHONPATH=. and the machine's torch, NumPy,
# cuda-python and NVRTC): the plugin kernels against their NumPy references (the tests marked gpu),
# then timed against their PyTorch equivalents on real frames. Logs and JSON go to $1 (default out/gpu).
#   bash benchmarks/gpu_check.sh OUTDIR [FRAMES_DIR]
set -u
out=${1:-out/gpu}
frames=${2:-}
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
python3 -m pytest -q -m gpu -p no:cacheprovider -rs \
    tests/test_plugin_var_roi_pool.py tests/test_plugin_attn_decoder.py 2>&1 | tee "$out/pytest_gpu.txt"
tests=${PIPESTATUS[0]}
python3 benchmarks/gpu_kernels.py ${frames:+--images "$frames"} --json "$out/gpu_kernels.json" 2>&1 \
    | tee "$out/gpu_kernels.txt"
bench=${PIPESTATUS[0]}
echo "gpu_check: kernel tests exit $tests, kernel timing exit $bench"
[ "$tests" = 0 ] && [ "$bench" = 0 ]
