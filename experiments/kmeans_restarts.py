"""Does a poor k-means start come from k-means or from the embedding? More restarts tell.

For each seed of a finished sweep, k-means on its saved autoencoder's embedding with
scikit-learn's ``KMeans`` at several ``n_init`` and with jdec's k-means (the run's
settings and key, so its ACC is the run's AE + k-means ACC): inertia and ACC of each.

  python experiments/kmeans_restarts.py --workdir runs/usps-dec_da --data_dir DIR \
      --n_init 20,200 --out experiments/results/usps-dec_da-kmeans-restarts.json
"""

import argparse
import json
import pathlib

import jax
import numpy as np
import sklearn.cluster

import jdec
import run_embeddings
from jdec import metrics, runfiles


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--workdir", required=True, help="a finished sweep's work directory")
  parser.add_argument("--data_dir", default=None, help="the dataset's folder")
  parser.add_argument("--n_init", default="20,200", help="scikit-learn restarts to try")
  parser.add_argument("--out", required=True, help="where to write the JSON result")
  args = parser.parse_args()
  workdir = pathlib.Path(args.workdir)
  config = runfiles.read_json(workdir / "config.json", ("experiment",),
                              advice="restore it from a copy")
  rows = []
  for seed, z, y, k, resolved in run_embeddings.embeddings(workdir, args.data_dir):
    for n_init in [int(v) for v in args.n_init.split(",")]:
      km = sklearn.cluster.KMeans(k, n_init=n_init, random_state=seed).fit(z)
      rows.append({"seed": seed, "kmeans": "sklearn", "n_init": n_init,
                   "inertia": float(km.inertia_), "acc": metrics.cluster_acc(y, km.labels_)})
      print(rows[-1], flush=True)
    run_key = jax.random.split(jax.random.key(seed), 3)[1]  # fit's k-means stream
    ours = jdec.kmeans(run_key, z, k, **resolved.kmeans)
    rows.append({"seed": seed, "kmeans": "jdec", "n_init": resolved.kmeans.n_init,
                 "inertia": float(ours.inertia),
                 "acc": metrics.cluster_acc(y, np.asarray(ours.labels))})
    print(rows[-1], flush=True)
  pathlib.Path(args.out).write_text(json.dumps(
      {"workdir": str(workdir), "dataset": config["experiment"]["dataset"],
       "recipe": config["experiment"]["recipe"], "rows": rows}, indent=2))


if __name__ == "__main__":
  main()
