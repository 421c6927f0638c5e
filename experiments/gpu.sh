#!/usr/bin/env bash
# The GPU runs of BENCHMARKS.md as one prepared, time-boxed script for a lent
# accelerator (about 10 minutes a call):
#   1. the MNIST sweeps of issue "Beyond DEC", all at once on the one GPU:
#      by default conv_dec_da seeds 0-2, dec_da seeds 0-2, dcec seed 0, idec
#      seed 0 (RUNS="name:recipe:seeds ..." picks others); each stops at RUN_S
#      seconds, checkpointing every CKPT_S seconds; a run whose work directory
#      an earlier call left in RESUME (unpacked runs.tar.gz) continues from it;
#   2. with the GPU to itself: the conv autoencoder's step (lax vs im2col);
#   3. the speed benchmark (jdec, 10 seeds at once, PyTorch, Keras 3), if
#      BENCH_MIN_S seconds are left before END_S.
# Whatever the runs reached (results, metrics, logs, pictures, and for a run
# cut short its checkpoints, so that it can resume elsewhere) is packed into
# at most MAX_PARTS pieces of $OUT/runs.tar.part* by experiments/gpu_pack.py.
#
#   DATA=folder/holding/mnist OUT=results/ bash experiments/gpu.sh
#   QUICK=1 ...   a small dry run of the same steps (for trying it on a CPU)
#   WHEELS=.whl   install these wheels first (packages the machine lacks)
#   RESUME=.resume   continue the runs whose work directories are in this folder
#   RUNS="mnist-conv_dec_da:conv_dec_da:0,1,2 mnist-dcec-s1-2:dcec:1,2"   which runs
#   CONV_STEP=0   skip step 2 (the conv step timing), leaving its minute to the benchmark
set -u
T0=$(date +%s)
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export XLA_PYTHON_CLIENT_PREALLOCATE=false  # several processes share the GPU
OUT=${OUT:-/tmp/jdec-gpu}
DATA=${DATA:-.data}
PY=${PY:-python3}
RUN_S=${RUN_S:-430}        # the MNIST runs stop here (seconds from the start)
END_S=${END_S:-545}        # everything but the packing ends here
BENCH_MIN_S=${BENCH_MIN_S:-90}
CKPT_S=${CKPT_S:-20}
RUNS=${RUNS:-"mnist-conv_dec_da:conv_dec_da:0,1,2 mnist-dec_da:dec_da:0,1,2 mnist-dcec:dcec:0 mnist-idec:idec:0"}
RESUME=${RESUME:-}
WORK=$(mktemp -d)
mkdir -p "$OUT" "$WORK/logs"
elapsed() { echo $(( $(date +%s) - T0 )); }

if [ -n "${WHEELS:-}" ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site "$WHEELS"/*.whl || exit 1
  export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi

if [ -n "${QUICK:-}" ]; then
  RUN="--config.n_samples=2000 --config.pretrain.num_epochs=2 --config.dec.maxiter=200"
  BENCH="--config.n_samples=2000 --config.epochs=2 --config.sweep_seeds=2 --config.dec_intervals=1"
  CONV="--steps 3 --lax_steps 1 --repeats 1"
else
  RUN=""
  BENCH="--config.sweep_seeds=10 --config.epochs=2 --config.dec_intervals=2"
  CONV="--steps 20 --lax_steps 20 --repeats 3"
fi

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null
  lscpu | grep -E "^Model name|^CPU\(s\)"
  $PY -c "import jax, flax, optax; print('jax', jax.__version__, 'flax', flax.__version__, 'optax', optax.__version__, jax.devices())"
} 2>&1 | tee "$WORK/logs/system.txt"

# 1. The MNIST runs, side by side on the one GPU.
declare -A PIDS
launch() {  # launch NAME RECIPE SEEDS
  local name=$1 recipe=$2 seeds=$3 resume="" left
  if [ -n "$RESUME" ]; then
    if [ -d "$RESUME/$name" ]; then  # an earlier call's run: continue it
      if ! cp -r "$RESUME/$name" "$WORK/$name"; then
        echo "$name: copying $RESUME/$name failed; not started" | tee -a "$WORK/logs/walls.txt"
        rm -rf "${WORK:?}/$name"; return 1
      fi
      [ -f "$RESUME/logs/$name.log" ] && cp "$RESUME/logs/$name.log" "$WORK/logs/$name.log"
      resume="--config.resume=True"
      echo "$name resumes from $RESUME/$name" | tee -a "$WORK/logs/walls.txt"
    else
      echo "$name: not in RESUME=$RESUME, starts from scratch" | tee -a "$WORK/logs/walls.txt"
    fi
  fi
  left=$(( RUN_S - $(elapsed) ))
  if [ "$left" -le 0 ]; then
    echo "$name: no time left before RUN_S=$RUN_S; not started" | tee -a "$WORK/logs/walls.txt"
    return 1
  fi
  ( t=$(date +%s%N)
    timeout -s KILL "$left" $PY -m jdec.experiments.mnist \
      --workdir "$WORK/$name" --config.data_dir="$DATA" --config.progress=False \
      --config.kmeans_raw=False --config.embedding_map=pca --config.recipe="$recipe" --config.seeds="$seeds" \
      --config.checkpoint_min_interval_s="$CKPT_S" $resume $RUN >> "$WORK/logs/$name.log" 2>&1
    rc=$?
    echo "$name rc=$rc wall_ms=$(( ($(date +%s%N) - t) / 1000000 ))" >> "$WORK/logs/walls.txt"
  ) &
  PIDS[$name]=$!
}
declare -A SEEN
for run in $RUNS; do  # each NAME:RECIPE:SEEDS, names unique; checked before any starts
  IFS=: read -r name recipe seeds extra <<< "$run"
  if [ -z "$name" ] || [ -z "$recipe" ] || [ -z "$seeds" ] || [ -n "$extra" ]; then
    echo "RUNS entry '$run' is not NAME:RECIPE:SEEDS (seeds comma-separated)" >&2; exit 2
  fi
  if [ -n "${SEEN[$name]:-}" ]; then
    echo "RUNS names '$name' twice; each run needs its own name" >&2; exit 2
  fi
  SEEN[$name]=1
done
for run in $RUNS; do
  IFS=: read -r name recipe seeds <<< "$run"
  launch "$name" "$recipe" "$seeds"
done
while [ -n "$(jobs -rp)" ]; do
  sleep 5; [ $(( $(elapsed) % 60 )) -lt 5 ] || continue
  for n in "${!PIDS[@]}"; do  # one line per run: its last log line
    printf 't=%ss [%s] %s\n' "$(elapsed)" "$n" "$(tail -n 1 "$WORK/logs/$n.log" 2>/dev/null | tr '\r' '\n' | tail -n 1 | cut -c1-80)"
  done
done
cat "$WORK/logs/walls.txt"

# 2. The conv autoencoder's step, the GPU to itself.
left=$(( END_S - $(elapsed) ))
if [ "${CONV_STEP:-1}" != 0 ] && [ "$left" -gt 40 ]; then
  timeout -s KILL 60 $PY experiments/conv_step.py $CONV > "$WORK/logs/conv_step.txt" 2>&1
  echo "conv_step rc=$? at t=$(elapsed)s" >> "$WORK/logs/walls.txt"
  tail -n 15 "$WORK/logs/conv_step.txt"
fi

# 3. The benchmark, if there is time for it.
left=$(( END_S - $(elapsed) ))
if [ "$left" -gt "$BENCH_MIN_S" ]; then
  KERAS_BACKEND=jax timeout -s KILL "$left" $PY -m jdec.experiments.bench \
    --workdir "$WORK/bench" --config.data_dir="$DATA" --config.clustpy=False $BENCH \
    > "$WORK/logs/bench.log" 2>&1
  echo "bench rc=$? at t=$(elapsed)s" >> "$WORK/logs/walls.txt"
  tail -n 30 "$WORK/logs/bench.log"
fi

$PY experiments/gpu_pack.py "$WORK" "$OUT" --max_parts "${MAX_PARTS:-4}"
echo "done at t=$(elapsed)s"
