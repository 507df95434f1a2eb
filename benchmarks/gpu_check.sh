#!/usr/bin/env bash
# GPU figures of the qnjax benchmark suite, in one prepared run (< 9 minutes on an H100/H200).
#
# What it measures (python -m benchmarks --quick --gpu):
#   * exact engine, float32 and float64: designs/s at t_trunc 10^3 and 10^4, batches 1, 10^4,
#     10^5 (5*10^4 at 10^4), value_and_grad, a two-distill-level protocol, the engine's default
#     chunking vs 8 GiB chunks; FFT census per design and the measured batched rfft+irfft floor;
#   * same-seed float64 Monte Carlo on the GPU and on the host CPU (times identical? max |dw|);
#   * Monte Carlo nested and swap-asap delivered samples/s;
#   * sweep_designs on the real device(s);
# then (python benchmarks/bench_optimize.py --skip-physical --many 100, at most 200 s) the step
# optimizer against differential evolution on the device: the nine step cases cold / warm and
# 100 problems in one call against 100 sequential DE runs (issue 11's device targets).
#
# Needs Python 3.12 with jax (with its CUDA plugin), equinox, optax, typer, rich, networkx and
# scipy installed on the GPU machine; qnjax is installed from this tree (editable, no index),
# with PYTHONPATH as a fallback. Run from the repo root on a GPU machine:
#   bash benchmarks/gpu_check.sh            # results under $OUT (default benchmarks/out/gpu)
# then, on any machine, regenerate the GPU tables of benchmarks/RESULTS.md from what it wrote:
#   python -m benchmarks --from-json benchmarks/out/gpu/gpu_results.json
set -u
OUT="${OUT:-benchmarks/out/gpu}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
export XLA_PYTHON_CLIENT_PREALLOCATE=false   # the sweep-scaling child processes share the GPU
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY="${PY:-python3}"
START=$(date +%s)

{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>&1
  $PY -m pip install -q --no-deps --no-build-isolation --no-index -e . 2>&1 | tail -2 || true
  $PY -c "import jax, qnjax, equinox, optax; print('jax', jax.__version__, jax.devices()); print('qnjax', qnjax.__file__)"
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

# the whole suite gets 320 s; results JSON is rewritten after each benchmark, so a cut-off run
# still returns what it measured
timeout -k 10 320 $PY -m benchmarks --quick --gpu --only delivery,mc_equality,montecarlo,sweep \
  --json "$OUT/gpu_results.json" --md "$OUT/RESULTS_gpu.md" 2>&1 | tee "$OUT/gpu_log.txt"
rc=${PIPESTATUS[0]}
echo "suite exit $rc after $(( $(date +%s) - START )) s" | tee -a "$OUT/gpu_log.txt"

# one JSON line per case as it finishes, so a cut-off run still reports what it measured
timeout -k 10 200 $PY benchmarks/bench_optimize.py --skip-physical --many 100 \
  --out "$OUT/results_optimize_gpu.md" 2>&1 | tee "$OUT/optimize_log.txt"
rc=${PIPESTATUS[0]}
echo "optimizer benchmark exit $rc after $(( $(date +%s) - START )) s" | tee -a "$OUT/gpu_log.txt"
exit 0
