"""Where jdec's DEC step loses time against the bare ceiling: variants timed in one process.

    python experiments/dec_step_gap.py

Each variant runs 140 DEC steps (batch 256, d-500-500-2000-10, 70,000 random rows) and
prints the median milliseconds per step over 3 calls after a compiling one:

- ``scan_steps``: jdec's scan as ``cluster.run`` uses it, without and with the batch
  sharding of the data-parallel mesh;
- ``scan_batches fixed``: the same step on one fixed batch (no gather of rows);
- ``no cond``: the same step in a plain scan, without the ``lax.cond`` that lets a
  shorter last interval skip steps;
- ``ceiling``: the benchmark's bare ``jnp`` step (no Flax, no optax).
"""

import time

import jax
import jax.numpy as jnp
import numpy as np

from jdec import models, parallel, train
from jdec import scan as scan_lib
from jdec.experiments import bench

STEPS = 140


def _time(fn, state, *args) -> float:
  state, _ = fn(state, *args)
  jax.block_until_ready(state)
  times = []
  for _ in range(3):
    t0 = time.perf_counter()
    state, _ = fn(state, *args)
    jax.block_until_ready(state)
    times.append(time.perf_counter() - t0)
  return float(np.median(times)) / STEPS * 1e3


def main():
  key = jax.random.key(0)
  x = jax.random.uniform(key, (70_000, 784))
  p = jax.nn.softmax(jax.random.normal(key, (70_000, 10)))
  model = models.AutoEncoder(784)
  clustering = models.ClusteringModel(model, 10)
  ae_params = models.init_autoencoder(key, model, 784)
  centroids = jax.random.normal(key, (10, 10))

  def state():
    return train.create_state(clustering.apply, models.clustering_params(ae_params, centroids),
                              train.sgd(0.01, 0.9))

  step0, limit = jnp.asarray(0), jnp.asarray(STEPS)
  rows = {}
  for sharded in (False, True):
    sharding = parallel.row_sharding(parallel.make_mesh()) if sharded else None
    scan = scan_lib.compile_scan(train.clustering_step, num_steps=STEPS, batch_size=256,
                                 batch_sharding=sharding)
    rows[f"scan_steps, batch sharding {sharded}"] = _time(scan, state(), (x, p), key, step0,
                                                          limit)
  fixed = (jnp.broadcast_to(x[:256], (STEPS, 256, 784)),
           jnp.broadcast_to(p[:256], (STEPS, 256, 10)))
  scan = scan_lib.compile_scan(train.clustering_step, num_steps=None, batch_size=None)
  rows["scan_batches fixed (no gather)"] = _time(scan, state(), fixed, key, step0, limit)

  @jax.jit
  def no_cond(state, data, key):
    idx = scan_lib.batch_indices(jax.random.fold_in(key, 0), step0, num_steps=STEPS,
                                 n=data[0].shape[0], batch_size=256)
    body = lambda s, r: train.clustering_step(s, (data[0][r], data[1][r]), key)
    return jax.lax.scan(body, state, idx)

  rows["no cond"] = _time(no_cond, state(), (x, p), key)
  rows["ceiling (bare jnp step)"] = bench.ceiling_dec(key, 784, (500, 500, 2000, 10), 256, 10,
                                                      STEPS) * 1e3
  for name, ms in rows.items():
    print(f"{name:<36} {ms:7.2f} ms/step")


if __name__ == "__main__":
  main()
