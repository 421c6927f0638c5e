"""Cost curve over the number of rows: time per epoch and peak memory.

    python -m jdec.experiments.scaling --workdir experiments/results \\
        --config.sizes=10000,70000,1000000

For each size N (uniform random data, N x 784, float32) and each placement
(data on the device, or kept on the host and streamed), a fresh process
pretrains the dec_keras autoencoder for ``epochs`` epochs and runs
``dec_intervals`` DEC update intervals (140 steps, each after a target
refresh on all N rows), then reports:

- seconds per pretraining epoch (the last epoch; the first compiles),
- seconds per DEC interval, refresh included (the last one),
- ``peak_rss_gib``: the process's peak resident memory (host and, on a CPU,
  the "device" too), and
- ``device_gib``: bytes held in JAX arrays at the end of pretraining, which
  on a GPU or TPU is what must fit in device memory.

Writes ``scaling-<host>-<date>.json`` into the work directory and prints a table.
"""

import json
import os
import pathlib
import platform
import resource
import subprocess
import sys
import time

import jax
import ml_collections
import numpy as np

from jdec import cluster, models, parallel, pretrain, runs, train
from jdec.experiments import cli


def get_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.sizes = (10_000, 70_000, 1_000_000)
  c.modes = ("device", "stream")
  c.epochs = 2
  c.dec_intervals = 2
  c.stream_steps = 64
  c.batch_size = 256
  c.hidden_dims = (500, 500, 2000, 10)  # the dec_keras autoencoder
  c.update_interval = 140  # DEC steps between target refreshes
  c.seed = 0
  c.one = ""  # internal: "N,mode" measures one case in this process
  return c


def measure(n: int, mode: str, cfg) -> dict:
  """Runs one case in this process and returns its numbers."""
  rng = np.random.default_rng(cfg.seed)
  x = rng.random((n, 784), dtype=np.float32)
  placement = parallel.Placement(parallel.make_mesh(), stream=mode == "stream",
                                 stream_steps=cfg.stream_steps)
  x_dev = placement.put_data(x)
  key = jax.random.key(cfg.seed)
  keys = key[None]  # one run, a stack of one
  model = models.AutoEncoder(784, hidden_dims=tuple(cfg.hidden_dims))
  params = runs.stack([models.init_autoencoder(key, model, 784)])
  ae_params, history = pretrain.pretrain_end_to_end(
      keys, x_dev, model, params, num_epochs=cfg.epochs, batch_size=cfg.batch_size,
      learning_rate=1.0, momentum=0.9, progress=False, placement=placement)
  jax.block_until_ready(ae_params)
  device_bytes = sum(a.nbytes for a in jax.live_arrays())
  walls = [0.0] + [h["wall_s"] for h in history]
  clustering = models.ClusteringModel(model, 10)
  centroids = jax.random.normal(key, (10, model.embed_dim))
  state = placement.put(runs.create_states(
      clustering.apply, jax.vmap(models.clustering_params, in_axes=(0, None))(ae_params, centroids),
      train.sgd(0.01, 0.9)))
  interval = cfg.update_interval
  _, dec_history, _ = cluster.run(
      keys, state, x_dev, batch_size=cfg.batch_size, update_interval=interval, tol=0.0,
      maxiter=interval * cfg.dec_intervals, progress=False, placement=placement)
  dec_walls = [h["wall_s"] for h in dec_history]
  return {
      "n": n, "mode": mode, "epochs": cfg.epochs,
      "pretrain_epoch_s": float(np.diff(walls)[-1]),
      "first_epoch_s": float(walls[1]),
      "dec_interval_s": float(np.diff(dec_walls)[-1]) if len(dec_walls) > 1 else None,
      "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
      "device_gib": device_bytes / 2**30, "data_gib": x.nbytes / 2**30,
      "device": jax.devices()[0].device_kind, "platform": jax.default_backend(),
  }


def run(cfg, workdir) -> list[dict]:
  rows = []
  for n in cfg.sizes:
    for mode in cfg.modes:
      cmd = [sys.executable, "-m", "jdec.experiments.scaling", f"--config.one={n},{mode}",
             f"--config.epochs={cfg.epochs}", f"--config.dec_intervals={cfg.dec_intervals}",
             f"--config.stream_steps={cfg.stream_steps}", f"--config.batch_size={cfg.batch_size}",
             f"--config.hidden_dims={tuple(cfg.hidden_dims)}",
             f"--config.update_interval={cfg.update_interval}"]
      t0 = time.perf_counter()
      done = subprocess.run(cmd, capture_output=True, text=True, check=False)
      if done.returncode != 0:
        raise RuntimeError(f"the case N={n} {mode} failed:\n{done.stderr[-3000:]}")
      row = json.loads(done.stdout.strip().splitlines()[-1])
      row["process_wall_s"] = time.perf_counter() - t0
      rows.append(row)
      print(f"N={n:>9,} {mode:<6} epoch {row['pretrain_epoch_s']:8.2f} s  DEC interval "
            f"{row['dec_interval_s'] or float('nan'):7.2f} s  peak RSS "
            f"{row['peak_rss_gib']:6.2f} GiB  JAX arrays {row['device_gib']:6.2f} GiB", flush=True)
  out = {"rows": rows, "config": cfg.to_dict(), "host": platform.node(),
         "cpu_count": os.cpu_count(), "jax_version": jax.__version__,
         "date": time.strftime("%Y-%m-%d")}
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  path = workdir / f"scaling-{platform.node()}-{out['date']}.json"
  path.write_text(json.dumps(out, indent=2, default=str))
  print(f"wrote {path}")
  return rows


def _run_or_measure(cfg, workdir) -> None:
  if cfg.one:  # the child process of one case: its numbers on stdout
    n, mode = cfg.one.split(",")
    print(json.dumps(measure(int(n), mode, cfg)))
  else:
    run(cfg, workdir)


def main():
  cli.main(get_config, _run_or_measure, default_workdir="experiments/results")


if __name__ == "__main__":
  main()
