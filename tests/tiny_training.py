"""The tiny autoencoder problem the training tests share, and a tiny untrained model."""

import jax
import jax.numpy as jnp
import numpy as np

from jdec import lloyd, models, recipes, train, trained

# One optimiser object for all states: a new one is new static metadata, and
# so (correctly) a new compilation.
TX = train.sgd(0.1, 0.9)


def tiny_problem():
  rng = np.random.default_rng(0)
  centres = rng.normal(size=(3, 12))
  x = (centres[rng.integers(0, 3, 96)] + rng.normal(size=(96, 12)) * 0.3).astype(np.float32)
  model = models.AutoEncoder(12, (16, 8, 2))
  params = models.init_autoencoder(jax.random.key(0), model, 12)
  return jnp.asarray(x), model, params


def ae_state(model, params):
  return train.create_state(apply_fn=model.apply, params=jax.tree.map(jnp.copy, params), tx=TX)


def clustering_params(x, model, params, k=3):
  z = model.apply({"params": params}, x, method=model.encode)
  km = lloyd.kmeans(jax.random.key(0), z, k, n_init=3)
  return models.ClusteringModel(model, k), models.clustering_params(params, km.centroids)


def clustering_state(x, model, params, k=3):
  cm, start = clustering_params(x, model, params, k)
  return train.create_state(apply_fn=cm.apply, params=start, tx=train.sgd(0.05, 0.9))


def tiny_model(input_dim=6, k=3, hidden_dims=(8, 3)):
  """A small ``TrainedModel`` without training: initial weights, random centres
  (cheap for tests of what a model takes and how its files are read)."""
  cfg = recipes.get_recipe().model
  cfg.hidden_dims = hidden_dims
  description = trained.describe(cfg, input_dim=input_dim, image_shape=None, n_clusters=k,
                                 input_scale=1.0, recipe="dec_keras")
  module = models.ClusteringModel(models.build_autoencoder(cfg, input_dim), k)
  params = module.init(jax.random.key(0), jnp.zeros((1, input_dim)), decode=True)["params"]
  centres = np.random.default_rng(0).normal(size=(k, hidden_dims[-1])).astype(np.float32)
  return trained.TrainedModel({**params, "centroids": centres}, description)
