"""A trained DEC model on its own: embed, assign and label new rows in bounded memory.

``TrainedModel`` holds the clustering parameters as numpy arrays and a JSON
description of the model (``DESCRIPTION_KEYS``). It is what ``jdec.load``
returns, what ``FitResult.to_model()`` and a fitted ``jdec.DEC`` hold, and it
pickles. Its methods apply the input scaling of training themselves and send
the rows to the device in chunks of a fixed size, so any number of rows (a
memory-mapped ``.npy`` of a million, say) fits in memory and compiles once.
"""

import dataclasses
import functools
from typing import Callable

import jax
import numpy as np

from jdec import models, parallel, validation

# What a description holds (all JSON values); see ``describe``.
DESCRIPTION_KEYS = ("arch", "input_dim", "hidden_dims", "conv_filters", "embed_dim",
                    "image_shape", "kernel_init", "compute_dtype", "n_clusters", "alpha",
                    "input_scale", "input_scaling", "recipe")
CHUNK_ROWS = 4096  # rows per device call


def describe(model_cfg, *, input_dim: int, image_shape, n_clusters: int, input_scale: float,
             input_scaling: str = "none", recipe: str | None = None) -> dict:
  """The JSON description of a clustering model built from a recipe's ``model`` section."""
  return {
      "arch": str(model_cfg["arch"]), "input_dim": int(input_dim),
      "hidden_dims": [int(w) for w in model_cfg["hidden_dims"]],
      "conv_filters": [int(w) for w in model_cfg["conv_filters"]],
      "embed_dim": int(model_cfg["embed_dim"]),
      "image_shape": [int(v) for v in image_shape] if image_shape else None,
      "kernel_init": str(model_cfg["kernel_init"]),
      "compute_dtype": str(model_cfg["compute_dtype"]), "n_clusters": int(n_clusters),
      "alpha": float(model_cfg["alpha"]), "input_scale": float(input_scale),
      "input_scaling": str(input_scaling), "recipe": recipe,
  }


@functools.partial(jax.jit, static_argnums=0)
def _outputs(model: models.ClusteringModel, params, x: jax.Array):
  """``(log_q [b, k], z [b, e])`` of a chunk of scaled rows ``x [b, d]``."""
  log_q, z, _ = model.apply({"params": params}, x)
  return log_q, z


@dataclasses.dataclass(eq=False)
class TrainedModel:
  """A trained clustering model: an autoencoder's encoder and the DEC centres.

  Attributes:
    params: ``{"autoencoder": ..., "centroids": [k, e]}``, numpy arrays.
    description: the model's settings, keys ``DESCRIPTION_KEYS`` (JSON values).
  """

  params: dict
  description: dict

  def __post_init__(self):
    missing = [k for k in DESCRIPTION_KEYS if k not in self.description]
    if missing:
      raise ValueError(f"a model description needs {missing}; build it with "
                       "jdec.trained.describe")
    self.params = jax.tree.map(lambda a: np.asarray(parallel.to_host(a)), self.params)
    self._module = None

  def __getstate__(self):  # the Flax module is rebuilt after unpickling
    return {"params": self.params, "description": self.description}

  def __setstate__(self, state):
    self.params, self.description, self._module = state["params"], state["description"], None

  @property
  def module(self) -> models.ClusteringModel:
    """The Flax ``ClusteringModel`` the parameters belong to."""
    if self._module is None:
      d = self.description
      autoencoder = models.build_autoencoder(d, d["input_dim"], d["image_shape"])
      self._module = models.ClusteringModel(autoencoder, d["n_clusters"], d["alpha"])
    return self._module

  @property
  def n_clusters(self) -> int:
    return int(self.description["n_clusters"])

  @property
  def n_features_in(self) -> int:
    """``d``, the width of the rows the model takes (``h * w * c`` for images)."""
    return int(self.description["input_dim"])

  @property
  def image_shape(self) -> tuple | None:
    shape = self.description["image_shape"]
    return tuple(shape) if shape else None

  @property
  def input_scale(self) -> float:
    """The factor applied to every input before the model."""
    return float(self.description["input_scale"])

  @property
  def cluster_centers(self) -> np.ndarray:
    """``[k, e]``: the centres in the embedding space."""
    return np.asarray(self.params["centroids"])

  def rows(self, x, name: str = "x"):
    """``x`` as ``[m, d]`` rows this model takes (a view where possible: no copy
    of a memory-mapped file), or a ``ValueError`` naming the expected shape."""
    arr = validation.as_array(x, name)  # an ndarray as it is: no copy of a memory map
    d, shape = self.n_features_in, self.image_shape
    expected = f"[m, {d}]" + (f" or images [m, {', '.join(map(str, shape))}]" if shape else "")
    if shape and arr.ndim in (3, 4):
      got = tuple(arr.shape[1:]) + ((1,) if arr.ndim == 3 else ())
      if got != shape:
        raise ValueError(f"{name} holds images of shape {got}; this model expects {expected}")
      return arr.reshape(arr.shape[0], d)
    if arr.ndim != 2 or arr.shape[1] != d:
      raise ValueError(f"{name} has shape {arr.shape}; this model expects {expected}")
    return arr

  def _map(self, x, chunk_rows: int, progress: Callable[[int], None] | None):
    """``(log_q [m, k], z [m, e])`` of all rows, computed chunk by chunk."""
    rows = self.rows(x)
    # Few rows go in a power-of-two chunk: a handful of shapes, each compiled once.
    chunk_rows = max(1, min(int(chunk_rows), 1 << max(0, (rows.shape[0] - 1).bit_length())))
    scale = np.float32(self.input_scale)
    log_q, z = [np.zeros((0, self.n_clusters), np.float32)], [
        np.zeros((0, self.cluster_centers.shape[1]), np.float32)]
    for start in range(0, rows.shape[0], chunk_rows):
      raw = np.asarray(rows[start:start + chunk_rows])
      with np.errstate(over="ignore"):
        chunk = raw.astype(np.float32) * scale
      bad = ~np.isfinite(chunk).all(axis=1)
      if bad.any():
        first = start + int(np.flatnonzero(bad)[0])
        if np.isfinite(raw[first - start]).all():
          raise ValueError(f"x holds values beyond float32's range (+-3.4e38) (first in row "
                           f"{first}); jdec computes in float32: rescale x first")
        raise ValueError(f"x holds NaN or infinite values (first in row {first}); remove or "
                         "impute them")
      m = chunk.shape[0]
      if m < chunk_rows:  # every chunk of this call has one shape: one compilation
        chunk = np.concatenate([chunk, np.zeros((chunk_rows - m, chunk.shape[1]), np.float32)])
      out = _outputs(self.module, self.params, chunk)
      log_q.append(np.asarray(out[0])[:m])
      z.append(np.asarray(out[1])[:m])
      if progress is not None:
        progress(m)
    return np.concatenate(log_q), np.concatenate(z)

  def assign(self, x, *, chunk_rows: int = CHUNK_ROWS, progress=None):
    """``(q [m, k], z [m, e])``: soft assignments and embedding in one pass over ``x``."""
    log_q, z = self._map(x, chunk_rows, progress)
    return np.exp(log_q), z

  def embed(self, x, *, chunk_rows: int = CHUNK_ROWS, progress=None) -> np.ndarray:
    """``z [m, e]``: the embedding of rows ``x [m, d]`` (or images ``[m, h, w, c]``).

    ``progress``, if given, is called with the number of rows of each chunk done.
    """
    return self._map(x, chunk_rows, progress)[1]

  transform = embed

  def predict_proba(self, x, *, chunk_rows: int = CHUNK_ROWS, progress=None) -> np.ndarray:
    """``q [m, k]``: the soft assignments (Student's t) of rows ``x``."""
    return np.exp(self._map(x, chunk_rows, progress)[0])

  def predict(self, x, *, chunk_rows: int = CHUNK_ROWS, progress=None) -> np.ndarray:
    """``[m]`` int64: the cluster of each row of ``x`` (argmax of its ``q``)."""
    log_q = self._map(x, chunk_rows, progress)[0]
    return np.argmax(log_q, axis=1).astype(np.int64)
