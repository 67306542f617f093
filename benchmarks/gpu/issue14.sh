#!/usr/bin/env bash
# Issue 14 measurements in one GPU session: the step benchmark (and `sync-lint trace`
# of its variants a and d), the small-copy probe and the pinned-allocation probe.
# Run from the repository root on a CUDA machine. Everything is written under $RES and
# packed into $OUT/issue14.tgz (the lent GPU returns at most 8 files), with the .md
# reports and logs copied beside it.
#   OUT=gpu-out PARTS="step trace copy pin" bash benchmarks/gpu/issue14.sh
# Parts: step, trace, copy, pin (the full probes); refine (small-copy probe at sizes
# between the thresholds), pinlarge (pinned-allocation probe up to 32 MB).
# The trace part needs the sync_lint and libcst wheels in .whl/ (see README.md here);
# the other parts need only torch and numpy.
set -uo pipefail
REPO=$(pwd)
FINAL=${OUT:-$REPO/gpu-out}
OUT=${RES:-/tmp/issue14-out}
PARTS=${PARTS:-step trace copy pin}
mkdir -p "$OUT" "$FINAL"
export PYTHONUNBUFFERED=1
{
  nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv,noheader
  python3 -c "import torch, sys; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0), 'python', sys.version.split()[0])"
  date -u
} 2>&1 | tee "$OUT/gpu.txt"
STEP=benchmarks/gpu/step
for part in $PARTS; do
  echo "=== $part $(date -u +%T)"
  case $part in
    step)
      timeout 120 python3 $STEP/run_step.py --rounds 2 --out "$OUT" 2>&1 | tee "$OUT/step.log" ;;
    trace)
      python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || { echo "wheel install failed"; continue; }
      for v in a d; do
        file=$(ls $STEP/step_${v}_*.py)
        for fmt in json full; do
          # From /tmp, so `import sync_lint` is the installed wheel, not a source folder.
          (cd /tmp && PYTHONPATH=/tmp/site timeout 90 python3 -m sync_lint trace --include "$REPO/$file" \
            --output-format $fmt -o "$OUT/trace_$v.$fmt" -- python "$REPO/$STEP/run_step.py" --variant $v --steps 3 --warmup 1) \
            > "$OUT/trace_$v.$fmt.log" 2>&1
          echo "trace $v $fmt: rc=$?"; tail -3 "$OUT/trace_$v.$fmt.log"
        done
      done ;;
    copy)
      timeout 200 python3 benchmarks/gpu/small_copy_probe.py --out "$OUT" 2>&1 | tee "$OUT/small_copy.log" ;;
    pin)
      timeout 280 python3 benchmarks/gpu/pin_alloc_probe.py --out "$OUT" 2>&1 | tee "$OUT/pin_alloc.log" ;;
    refine)
      timeout 60 python3 benchmarks/gpu/small_copy_probe.py --sizes 80,96,112,2560,3072,3584 --suffix=-refine \
        --out "$OUT" 2>&1 | tee "$OUT/small_copy_refine.log" ;;
    pinlarge)
      timeout 150 python3 benchmarks/gpu/pin_alloc_probe.py --only c_pin_memory,d_staging_double,f_pageable_nb \
        --large-n 4194304 --suffix=-large --out "$OUT" 2>&1 | tee "$OUT/pin_alloc_large.log" ;;
  esac
done
echo "=== done $(date -u +%T)"
ls -la "$OUT"
tar czf "$FINAL/issue14.tgz" -C "$OUT" .
ls "$OUT"/*.md | head -6 | xargs -r cp -t "$FINAL"
