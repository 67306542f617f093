#!/usr/bin/env bash
# One GPU session: verify every fix, run the GPU tests, trace the realistic fixtures.
# Run from the repository root on a CUDA machine with the wheels in .whl/ (sync_lint
# and libcst; see docs/verification/README.md). Writes everything under $OUT.
set -uo pipefail
REPO=$(pwd)
OUT=${OUT:-$REPO/gpu-out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1
# Run from outside the checkout so `import sync_lint` is the installed wheel (which
# maps rules/ to sync_lint.rules), not the source folder.
cd /tmp
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import torch, sys; print(torch.__version__, torch.cuda.get_device_name(0), sys.version.split()[0])" | tee -a "$OUT/gpu.txt"
python3 -m sync_lint verify --trials 50 --report "$OUT/verify" 2>&1 | tee "$OUT/verify.log"
python3 -m pytest "$REPO/tests/gpu" -q -p no:cacheprovider 2>&1 | tee "$OUT/gpu_tests.log"
for fmt in full json; do
  python3 -m sync_lint trace --include "$REPO/fixtures/realistic/*" --output-format $fmt -o "$OUT/trace.$fmt" \
    -- python "$REPO/benchmarks/trace/drive_realistic.py" 2>&1 | tail -5
done
ls -la "$OUT"
