#!/usr/bin/env bash
# One GPU session: verify every fix (warm, growing sizes and a fresh process per case), run the
# GPU tests RUNS times in a row (serially: `-o addopts=""` drops the suite's `-n auto`), trace the
# realistic fixtures.
# Run from the repository root on a CUDA machine with the wheels in .whl/ (sync_lint and libcst;
# see docs/verification/README.md). Writes everything under $OUT, and packs the logs into
# $OUT/session.tgz (the lent GPU returns at most 8 files).
#   OUT=gpu-out PARTS="verify tests trace" RUNS=3 bash benchmarks/gpu/session.sh
set -uo pipefail
REPO=$(pwd)
OUT=${OUT:-$REPO/gpu-out}
PARTS=${PARTS:-verify tests trace}
RUNS=${RUNS:-3}
LOGS=/tmp/session-logs
mkdir -p "$OUT" "$LOGS"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1
# Run from outside the checkout so `import sync_lint` is the installed wheel (which
# maps rules/ to sync_lint.rules), not the source folder.
cd /tmp
{
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
  python3 -c "import torch, sys; print(torch.__version__, torch.cuda.get_device_name(0), sys.version.split()[0])"
  python3 -c "import sync_lint; print('sync-lint', sync_lint.__version__, sync_lint.__file__)"
  date -u
} 2>&1 | tee "$LOGS/gpu.txt"
for part in $PARTS; do
  echo "=== $part $(date -u +%T)"
  case $part in
    verify)
      SECONDS=0
      timeout 300 python3 -m sync_lint verify --trials 50 --report "$OUT/verify" > "$LOGS/verify.log" 2>&1
      echo "verify: rc=$? in ${SECONDS}s"; grep -c "^pass" "$LOGS/verify.log"; grep "^FAIL" "$LOGS/verify.log" ;;
    tests)
      for run in $(seq 1 "$RUNS"); do
        SECONDS=0
        timeout 240 python3 -m pytest "$REPO/tests/gpu" -q -p no:cacheprovider -o addopts="" -rfEs > "$LOGS/gpu_tests.$run.log" 2>&1
        echo "tests/gpu run $run: rc=$? in ${SECONDS}s: $(tail -1 "$LOGS/gpu_tests.$run.log")"
      done ;;
    trace)
      for fmt in full json; do
        timeout 120 python3 -m sync_lint trace --include "$REPO/fixtures/realistic/*" --output-format $fmt \
          -o "$OUT/trace.$fmt" -- python "$REPO/benchmarks/trace/drive_realistic.py" 2>&1 | tail -5
      done ;;
  esac
done
tar czf "$OUT/session.tgz" -C "$LOGS" .
ls -la "$OUT"
