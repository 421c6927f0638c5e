"""A small jdec fit run as its own process, for the multi-device and multi-process tests.

    python tests/parallel_worker.py OUT.npz [PROCESS_ID NUM_PROCESSES PORT]

With process arguments it joins a ``jax.distributed`` job on 127.0.0.1 (CPU
collectives through gloo), loads only its own rows of the data and gathers
the rest with ``jdec.parallel.allgather_rows``. Process 0 writes ``q``, the
labels and the autoencoder's first kernel to OUT.npz.
"""

import sys

import jax
import numpy as np


def dataset() -> tuple[np.ndarray, np.ndarray]:
  """600 rows of 3 well-separated Gaussian blobs in 20 dimensions."""
  rng = np.random.default_rng(0)
  centres = rng.normal(0, 4, (3, 20))
  y = np.repeat(np.arange(3), 200)
  x = centres[y] + rng.normal(0, 1, (600, 20))
  return x.astype(np.float32), y


CONFIG = {
    "model": {"hidden_dims": (32, 32, 64, 3)},
    "pretrain": {"num_epochs": 4, "batch_size": 64, "learning_rate": 0.1},
    "kmeans": {"n_init": 4},
    "dec": {"batch_size": 64, "update_interval": 20, "maxiter": 60},
}


def main(argv):
  out = argv[1]
  process_id = 0
  if len(argv) > 2:
    process_id, num_processes, port = (int(a) for a in argv[2:5])
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}",
                               num_processes=num_processes, process_id=process_id)
  import jdec  # pylint: disable=g-import-not-at-top

  x, y = dataset()
  rows = np.array_split(np.arange(len(x)), jax.process_count())[jax.process_index()]
  x = jdec.parallel.allgather_rows(x[rows])  # each process read only its rows
  result = jdec.fit(x, 3, config=CONFIG, seed=0, y=y, progress=False)
  if process_id == 0:
    np.savez(out, q=result.q, labels=result.labels, devices=jax.device_count(),
             processes=jax.process_count(),
             kernel=jdec.parallel.to_host(result.ae_params["encoder"]["dense_0"]["kernel"]))
  print("done", jax.process_index(), jax.device_count(), result.scores["acc"])


if __name__ == "__main__":
  main(sys.argv)
