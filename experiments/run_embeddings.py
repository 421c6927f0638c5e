"""The embedding of each seed of a finished run, computed as the run computed it.

Shared by ``kmeans_vs_sklearn.py`` and ``kmeans_restarts.py``: the run's own data
(its ``n_samples``), its input scaling, and its autoencoder with the recipe's
architecture and compute dtype, from ``config.json`` and each seed's
``autoencoder/`` folder (``seed_<s>/autoencoder`` in a sweep).
"""

import pathlib

import jax.numpy as jnp
import ml_collections
import numpy as np

from jdec import checkpoint, data, inference, models, recipes, runfiles


def load_run(workdir, data_dir=None):
  """Returns ``(config, resolved recipe, x scaled [n, d], y [n] or None, seeds, image
  shape or None)`` of a run; ``data_dir`` overrides the one the run recorded."""
  workdir = pathlib.Path(workdir)
  config = runfiles.read_json(workdir / "config.json", ("experiment", "resolved"),
                              advice="restore it from a copy")
  resolved = ml_collections.ConfigDict(config["resolved"])
  experiment = dict(config["experiment"], **({"data_dir": data_dir} if data_dir else {}))
  x, y, shape = data.load_experiment(experiment)  # custom data and image shapes too
  x = x * np.float32(recipes.input_scale(x, resolved.input_scaling))
  seeds = list(experiment.get("seeds") or [experiment["seed"]])
  return config, resolved, x, y, seeds, shape


def embeddings(workdir, data_dir=None):
  """Yields ``(seed, z [n, e], y [n], n_clusters, resolved recipe)`` per seed of a run."""
  workdir = pathlib.Path(workdir)
  config, resolved, x, y, seeds, shape = load_run(workdir, data_dir)
  model = models.build_autoencoder(resolved.model, x.shape[1], shape)
  sweep = bool(config["experiment"].get("seeds"))
  for seed in seeds:
    folder = workdir / f"seed_{seed}" / "autoencoder" if sweep else workdir / "autoencoder"
    params, _ = checkpoint.load(folder)
    z = np.asarray(inference.embed(model, params, jnp.asarray(x)))
    yield seed, z, y, config["experiment"]["n_clusters"], resolved
