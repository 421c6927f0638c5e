#!/usr/bin/env bash
# Everything the GPU rows of BENCHMARKS.md need, as one prepared script:
#   1. a smoke test on the digits (fails fast if the stack does not run);
#   2. the benchmark (ceilings, jdec, 10 seeds at once, bfloat16, plain PyTorch);
#   3. the conv autoencoder's step (lax and im2col convolutions, dense AE beside);
#   4. MNIST conv_dec_da, seeds 0-2 as one sweep (500 Adam epochs, augmentation);
#   5. MNIST dec_da, seeds 0-2 as one sweep (500 SGD epochs, augmentation);
#   6. the full MNIST dec_keras recipe, seed 0 (300 pretraining epochs);
#   7. the same recipe for seeds 0-9 as one sweep.
# Each step's wall time (process start, data loading and compiling included)
# goes to $OUT/walls.txt; results and logs go to $OUT.
#
#   DATA=folder/with/mnist OUT=results/ bash experiments/gpu.sh
#   QUICK=1 ...   a small dry run of the same steps (for trying it on a CPU)
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
OUT=${OUT:-/tmp/jdec-gpu}
DATA=${DATA:-.data/mnist}
PY=${PY:-python3}
WORK=$(mktemp -d)
mkdir -p "$OUT"

if [ -n "${QUICK:-}" ]; then
  RUN="--config.n_samples=3000 --config.pretrain.num_epochs=2 --config.dec.maxiter=300"
  BENCH="--config.n_samples=3000 --config.epochs=2 --config.sweep_seeds=2 --config.dec_intervals=1"
  SEEDS=0,1
  DA_SEEDS=0,1
  CONV="--steps 3 --lax_steps 1 --repeats 1"
else
  RUN=""
  BENCH="--config.sweep_seeds=10"
  SEEDS=0,1,2,3,4,5,6,7,8,9
  DA_SEEDS=0,1,2
  CONV=""
fi

step() {  # step NAME COMMAND...: runs it, logs its output, records its wall time
  local name=$1; shift
  local t0; t0=$(date +%s%N)
  "$@" > "$WORK/$name.log" 2>&1
  local rc=$?
  local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  echo "$name rc=$rc wall_ms=$ms" | tee -a "$OUT/walls.txt"
  tail -n 25 "$WORK/$name.log"
  return $rc
}

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null
  $PY -c "import jax, flax, optax; print('jax', jax.__version__, 'flax', flax.__version__, jax.devices())"
} | tee "$OUT/system.txt"

step smoke $PY -m jdec.experiments.digits --workdir "$WORK/smoke" \
  --config.pretrain.num_epochs=2 --config.dec.maxiter=100 --config.progress=False || exit 1
step bench $PY -m jdec.experiments.bench --workdir "$OUT" --config.data_dir="$DATA" \
  --config.clustpy=False $BENCH
step conv_step $PY experiments/conv_step.py $CONV
for recipe in conv_dec_da dec_da; do
  step "mnist_$recipe" $PY -m jdec.experiments.mnist --workdir "$WORK/mnist_$recipe" \
    --config.data_dir="$DATA" --config.progress=False --config.kmeans_raw=False \
    --config.recipe=$recipe --config.seeds=$DA_SEEDS $RUN
  cp "$WORK/mnist_$recipe/results.json" "$OUT/mnist-$recipe-results.json"
  cp "$WORK/mnist_$recipe/metrics.jsonl" "$OUT/mnist-$recipe-metrics.jsonl"
done
step mnist_seed0 $PY -m jdec.experiments.mnist --workdir "$WORK/mnist_seed0" \
  --config.data_dir="$DATA" --config.progress=False $RUN
cp "$WORK/mnist_seed0/results.json" "$OUT/mnist-seed0-results.json"
step mnist_sweep $PY -m jdec.experiments.mnist --workdir "$WORK/mnist_sweep" \
  --config.data_dir="$DATA" --config.progress=False --config.kmeans_raw=False \
  --config.seeds=$SEEDS $RUN
cp "$WORK/mnist_sweep/results.json" "$OUT/mnist-sweep-results.json"
# Logs and per-update metrics, without the checkpoints.
tar -czf "$OUT/logs.tgz" -C "$WORK" --exclude='*/autoencoder' --exclude='*/model' \
  --exclude='*/seed_*/autoencoder' --exclude='*/seed_*/model' . 2>/dev/null
cat "$OUT/walls.txt"
