#!/usr/bin/env bash
# Speed check on one GPU (at most 8 minutes): sampling variants side by side and a LoRA training step
# on modelscope_random (the real architecture, random weights), 256 px, 10 frames, 25 steps, bf16 and fp16.
#   bash experiments/device_check.sh OUT_DIR [extra device_check.py args, e.g. --dtypes bf16]
# Writes OUT_DIR/results.json and OUT_DIR/results.md. CPU test: --device cpu --tiny.
set -euo pipefail
out=${1:?usage: device_check.sh OUT_DIR [args]}
shift
here=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-python}
export PYTHONPATH="$here/src:$here${PYTHONPATH:+:$PYTHONPATH}"
# the script keeps to its own --budget-s (450 s by default); the timeout is the hard 8-minute stop
exec timeout 480 "$py" "$here/experiments/device_check.py" --out "$out" "$@"
