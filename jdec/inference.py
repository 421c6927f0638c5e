"""The jitted embedding of all rows by an autoencoder (the functional building block).

A fitted model's ``embed`` / ``predict`` / ``predict_proba`` (``jdec.FitResult``,
``jdec.TrainedModel``, ``jdec.DEC``) also apply the input scaling of training.
"""

import functools

import jax

from jdec import models, scan


@functools.partial(jax.jit, static_argnums=0)
def embed(model: models.AutoEncoder, ae_params, x: jax.Array) -> jax.Array:
  """Embeddings ``z [n, e]`` of all rows of ``x [n, d]``, in jitted batches."""
  return scan.map_batches(
      lambda b: model.apply({"params": ae_params}, b, method=model.encode), x)
