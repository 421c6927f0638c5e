"""Using a fitted model on rows: the embedding, the soft assignments q and the labels."""

import functools

import jax
import numpy as np

from jdec import cluster, models, scan, validation


@functools.partial(jax.jit, static_argnums=0)
def embed(model: models.AutoEncoder, ae_params, x: jax.Array) -> jax.Array:
  """Embeddings ``z [n, e]`` of all rows of ``x [n, d]``, in jitted batches."""
  return scan.map_batches(
      lambda b: model.apply({"params": ae_params}, b, method=model.encode), x)


def predict_proba(result, x) -> np.ndarray:
  """Soft assignments ``q [m, k]`` of new rows ``x [m, d]`` (or images
  ``[m, h, w, c]``) under a fitted model (a ``jdec.FitResult``)."""
  x, _ = validation.check_images(x, result.image_shape)  # refuses other image shapes
  x = validation.check_data(x, name="x")
  d = result.model.autoencoder.input_dim
  if x.shape[1] != d:
    raise ValueError(f"x has {x.shape[1]} features but the model was fitted on {d}")
  where = jax.tree.leaves(result.state.params)[0].sharding
  log_q = cluster.full_log_q(result.state,
                             jax.device_put(x * np.float32(result.input_scale), where))
  return np.exp(np.asarray(log_q))


def predict(result, x) -> np.ndarray:
  """Cluster labels ``[m]`` of new rows ``x [m, d]`` (argmax of their ``q``)."""
  return np.argmax(predict_proba(result, x), axis=1)
