"""Flax Linen models: the autoencoders and the clustering head.

Any autoencoder works with the training code if it has ``embed_dim``,
``encode(x) -> z [n, embed_dim]`` and ``__call__(x) -> (x_hat, z)`` for rows
``x [n, d]``: the fully connected ``AutoEncoder`` here and the convolutional
``ConvAutoEncoder`` (``jdec.conv``), which reshapes rows into images itself.
"""

from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jdec import dec
from jdec.conv import ConvAutoEncoder  # noqa: F401 (part of this module's API)

KERNEL_INITS: dict[str, Callable] = {
    # DEC-keras: VarianceScaling(1/3, fan_in, uniform) on every Dense layer.
    "dec_keras": nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform"),
    # The paper's Caffe code: Gaussian weights with standard deviation 0.01.
    "paper": nn.initializers.normal(stddev=0.01),
    "glorot_uniform": nn.initializers.glorot_uniform(),
}


def kernel_init(name: str) -> Callable:
  """Returns the kernel initialiser registered under ``name``."""
  if name not in KERNEL_INITS:
    raise ValueError(
        f"unknown kernel_init {name!r}; choose one of {sorted(KERNEL_INITS)}"
    )
  return KERNEL_INITS[name]


class MLP(nn.Module):
  """Dense stack with ReLU between layers and a linear last layer."""

  features: Sequence[int]
  kernel_init: str = "dec_keras"
  compute_dtype: str = "float32"

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    init = kernel_init(self.kernel_init)
    for i, width in enumerate(self.features):
      x = nn.Dense(width, kernel_init=init, name=f"dense_{i}",
                   dtype=jnp.dtype(self.compute_dtype), param_dtype=jnp.float32)(x)
      if i < len(self.features) - 1:
        x = nn.relu(x)
    return x


class AutoEncoder(nn.Module):
  """Symmetric fully connected autoencoder, ``d-500-500-2000-10`` by default.

  Attributes:
    input_dim: ``d``, the width of the input and of the reconstruction.
    hidden_dims: encoder widths; the last one is the embedding size.
    kernel_init: name of the initialiser (see ``KERNEL_INITS``).
    compute_dtype: ``"float32"``, or ``"bfloat16"`` for matrix products in
      bfloat16 (parameters, the embedding and the reconstruction stay float32).
  """

  input_dim: int
  hidden_dims: Sequence[int] = (500, 500, 2000, 10)
  kernel_init: str = "dec_keras"
  compute_dtype: str = "float32"

  @property
  def embed_dim(self) -> int:
    return self.hidden_dims[-1]

  def setup(self):
    self.encoder = MLP(tuple(self.hidden_dims), self.kernel_init, self.compute_dtype)
    decoder_widths = tuple(reversed(self.hidden_dims[:-1])) + (self.input_dim,)
    self.decoder = MLP(decoder_widths, self.kernel_init, self.compute_dtype)

  def encode(self, x: jax.Array) -> jax.Array:
    """``x [n, d] -> z [n, embed_dim]`` (float32)."""
    return self.encoder(x).astype(jnp.float32)

  def decode(self, z: jax.Array) -> jax.Array:
    """``z [n, embed_dim] -> x_hat [n, d]`` (float32)."""
    return self.decoder(z).astype(jnp.float32)

  def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Returns ``(x_hat [n, d], z [n, embed_dim])``."""
    z = self.encode(x)
    return self.decode(z), z


class ClusteringModel(nn.Module):
  """An autoencoder plus DEC's clustering layer of ``n_clusters`` centres.

  Parameters are ``{"autoencoder": ..., "centroids": [k, embed_dim]}`` so one
  optimiser updates the encoder and the centres together.
  """

  autoencoder: nn.Module
  n_clusters: int
  alpha: float = 1.0

  def setup(self):
    self.centroids = self.param(
        "centroids",
        nn.initializers.zeros_init(),
        (self.n_clusters, self.autoencoder.embed_dim),
    )

  def __call__(
      self, x: jax.Array, decode: bool = False
  ) -> tuple[jax.Array, jax.Array, jax.Array | None]:
    """Returns ``(log_q [n, k], z [n, e], x_hat [n, d] or None)``."""
    z = self.autoencoder.encode(x)
    log_q = dec.log_soft_assignment(z, self.centroids, self.alpha)
    x_hat = self.autoencoder.decode(z).reshape(x.shape) if decode else None
    return log_q, z, x_hat


def build_autoencoder(model_cfg, input_dim: int, image_shape=None) -> nn.Module:
  """The autoencoder a recipe's ``model`` section describes, for rows of width ``input_dim``.

  Args:
    model_cfg: mapping with ``arch`` (``"dense"`` or ``"conv"``), ``hidden_dims``,
      ``kernel_init``, ``conv_filters``, ``embed_dim`` and ``compute_dtype``.
    input_dim: ``d``, the width of the rows.
    image_shape: ``(h, w, c)`` of the rows, needed by ``arch="conv"``.

  Raises:
    ValueError: a conv model without an image shape, or one that does not
      match ``input_dim``.
  """
  if model_cfg["arch"] == "dense":
    return AutoEncoder(input_dim, tuple(model_cfg["hidden_dims"]), model_cfg["kernel_init"],
                       model_cfg["compute_dtype"])
  if model_cfg["arch"] != "conv":
    raise ValueError(f"unknown model.arch {model_cfg['arch']!r}; use 'dense' or 'conv'")
  if image_shape is None:
    raise ValueError(
        "the convolutional autoencoder (model.arch='conv') needs images: pass x as "
        "[n, height, width, channels], or image_shape=(h, w, c) with flat rows")
  image_shape = tuple(int(v) for v in image_shape)
  if len(image_shape) != 3 or int(np.prod(image_shape)) != input_dim:
    raise ValueError(f"image_shape {image_shape} does not fit rows of width {input_dim}; "
                     "give (height, width, channels) with h * w * c = d")
  return ConvAutoEncoder(image_shape=image_shape, filters=tuple(model_cfg["conv_filters"]),
                         embed_size=int(model_cfg["embed_dim"]),
                         compute_dtype=model_cfg["compute_dtype"])


def init_autoencoder(
    key: jax.Array, model: nn.Module, input_dim: int
) -> dict:
  """Initial parameters of ``model`` for inputs of width ``input_dim``."""
  return model.init(key, jnp.zeros((1, input_dim), jnp.float32))["params"]


def clustering_params(ae_params: dict, centroids: jax.Array) -> dict:
  """Combines pretrained autoencoder parameters with initial centres.

  The arrays are copied, so donating the result to a train step leaves
  ``ae_params`` usable.
  """
  return jax.tree.map(jnp.copy, {"autoencoder": ae_params, "centroids": centroids})
