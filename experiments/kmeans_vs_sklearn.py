"""Compares jdec.kmeans with scikit-learn's KMeans on the embedding of a finished run
(its first seed's, for a sweep).

  python experiments/kmeans_vs_sklearn.py --workdir runs/mnist --data_dir /path/to/mnist \
      --out experiments/results/kmeans-vs-sklearn-mnist.json
"""

import argparse
import json
import time

import jax
import numpy as np
import sklearn.cluster

import jdec
import run_embeddings


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--workdir", required=True, help="a run's work directory")
  parser.add_argument("--data_dir", default=None, help="the dataset's folder (default $JDEC_DATA_DIR)")
  parser.add_argument("--out", required=True, help="where to write the JSON result")
  parser.add_argument("--seeds", type=int, default=3, help="how many seeds to compare")
  args = parser.parse_args()

  # The first seed's embedding, computed as the run computed it (input scaling,
  # architecture and compute dtype from its config.json).
  _, z, y, k, _ = next(run_embeddings.embeddings(args.workdir, args.data_dir))
  rows = []
  for seed in range(args.seeds):
    t0 = time.perf_counter()
    ours = jdec.kmeans(jax.random.key(seed), z, k, n_init=20)
    jax.block_until_ready(ours)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    theirs = sklearn.cluster.KMeans(k, n_init=20, random_state=seed).fit(z)
    t_theirs = time.perf_counter() - t0
    rows.append({
        "seed": seed, "jdec_inertia": float(ours.inertia), "sklearn_inertia": float(theirs.inertia_),
        "relative_difference": float(ours.inertia) / float(theirs.inertia_) - 1.0,
        "jdec_acc": jdec.metrics.cluster_acc(y, np.asarray(ours.labels)),
        "sklearn_acc": jdec.metrics.cluster_acc(y, theirs.labels_),
        "jdec_s": t_ours, "sklearn_s": t_theirs,
    })
    print(json.dumps(rows[-1]))
  result = {"workdir": args.workdir, "n_samples": int(z.shape[0]), "embed_dim": int(z.shape[1]),
            "device": jax.devices()[0].device_kind, "jax_version": jax.__version__,
            "sklearn_version": sklearn.__version__, "date": time.strftime("%Y-%m-%d"), "runs": rows}
  with open(args.out, "w", encoding="utf-8") as f:
    json.dump(result, f, indent=2)


if __name__ == "__main__":
  main()
