"""The convolutional autoencoder of DCEC / DEC-DA and its layers.

``ConvAutoEncoder`` is the autoencoder of Guo et al., "Deep Clustering with
Convolutional Autoencoders" (ICONIP 2017), as in their Keras code: three
stride-2 convolutions, a linear embedding, and the mirrored decoder.

Its layers ``Conv2D`` and ``ConvTranspose2D`` hold ``kernel [kh, kw, cin,
cout]`` and ``bias [cout]`` and compute with ``jdec.convolution``: im2col and
stride phases on CPU, XLA's own convolutions elsewhere (``impl``, or
``ConvAutoEncoder.conv_impl``).
"""

from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jdec import convolution


class _ConvBase(nn.Module):
  """Parameters and bias shared by ``Conv2D`` and ``ConvTranspose2D``."""

  features: int
  kernel_size: tuple[int, int]
  strides: int = 1
  padding: str = "same"
  impl: str = "auto"
  dtype: str = "float32"
  kernel_init: Callable = nn.initializers.glorot_uniform()
  bias_init: Callable = nn.initializers.zeros_init()

  def _apply(self, fn, x: jax.Array) -> jax.Array:
    kernel = self.param("kernel", self.kernel_init,
                        (*self.kernel_size, x.shape[-1], self.features), jnp.float32)
    bias = self.param("bias", self.bias_init, (self.features,), jnp.float32)
    dtype = jnp.dtype(self.dtype)
    y = fn(x.astype(dtype), kernel.astype(dtype), stride=self.strides, padding=self.padding,
           impl=self.impl)
    return y + bias.astype(dtype).reshape(1, 1, 1, -1)


class Conv2D(_ConvBase):
  """2-D convolution with bias, NHWC, ``kernel [kh, kw, cin, cout]`` (see ``conv2d``).

  Attributes:
    features: ``cout``.
    kernel_size: ``(kh, kw)``.
    strides: the stride along both axes.
    padding: ``"same"`` or ``"valid"``.
    impl: ``"lax"``, ``"im2col"`` or ``"auto"``; all share parameters.
    dtype: the compute dtype (parameters stay float32).
  """

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """``x [n, h, w, cin] -> [n, ho, wo, features]``."""
    return self._apply(convolution.conv2d, x)


class ConvTranspose2D(_ConvBase):
  """2-D transposed convolution with bias (see ``conv_transpose2d``); attributes as ``Conv2D``."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """``x [n, h, w, cin] -> [n, ho, wo, features]``."""
    return self._apply(convolution.conv_transpose2d, x)


def cae_plan(image_shape: Sequence[int], filters: Sequence[int]) -> list[dict]:
  """The encoder's convolutions for ``image_shape``, checked to mirror exactly.

  Every layer has stride 2; the last is 3x3, ``"same"`` when the height is a
  multiple of 8 and ``"valid"`` otherwise (as DCEC), the others 5x5 ``"same"``.

  Returns:
    One dict per convolution: ``kernel``, ``padding``, ``in_hw`` and ``out_hw``.

  Raises:
    ValueError: the image is too small for the encoder, or the decoder's
      transposed convolutions would not return to its size.
  """
  if len(image_shape) != 3 or min(image_shape) < 1:
    raise ValueError(f"image_shape must be (height, width, channels), got {image_shape}")
  if len(filters) < 1:
    raise ValueError("filters must name at least one convolution")
  h, w, _ = (int(v) for v in image_shape)
  plan, hw = [], (h, w)
  for i in range(len(filters)):
    last = i == len(filters) - 1
    k = 3 if last else 5
    padding = ("same" if h % 8 == 0 else "valid") if last else "same"
    out = tuple(convolution.conv_geometry(s, k, 2, padding)[0] for s in hw)
    if min(out) < 1:
      raise ValueError(
          f"image_shape {tuple(image_shape)} is too small for the convolutional autoencoder: "
          f"conv {i + 1} ({k}x{k}, stride 2, '{padding}') gets {hw[0]}x{hw[1]} inputs")
    back = tuple(convolution.conv_transpose_geometry(s, k, 2, padding)[0] for s in out)
    if back != hw:
      raise ValueError(
          f"image_shape {tuple(image_shape)} cannot be mirrored: conv {i + 1} maps "
          f"{hw[0]}x{hw[1]} to {out[0]}x{out[1]} but its transposed convolution gives "
          f"{back[0]}x{back[1]}; use sides that halve evenly down to the last conv "
          "(e.g. 28x28, 16x16, 8x8)")
    plan.append({"kernel": k, "padding": padding, "in_hw": hw, "out_hw": out})
    hw = out
  return plan


class ConvAutoEncoder(nn.Module):
  """DCEC's convolutional autoencoder (Guo et al. 2017), for images ``[n, h, w, c]``.

  Encoder: conv 5x5/2 'same' ``filters[0]``, conv 5x5/2 'same' ``filters[1]``,
  conv 3x3/2 ``filters[2]`` ('same' if ``h % 8 == 0``, else 'valid'), each
  with ReLU; flatten; linear dense ``embed_size``. Decoder: dense to the last
  feature map with ReLU, then the transposed convolutions back (ReLU between,
  linear last). MNIST 28x28: 28 -> 14 -> 7 -> 3 (1152 features) and back.
  Glorot-uniform kernels and zero biases everywhere (the Keras defaults).

  The layers are named as in the Keras code: ``conv1``-``conv3``,
  ``embedding``, ``dense``, ``deconv3``-``deconv1``.

  Attributes:
    image_shape: ``(h, w, c)``.
    filters: channels of the convolutions.
    embed_size: width of the embedding ``z``.
    conv_impl: ``"lax"``, ``"im2col"`` or ``"auto"`` (im2col on CPU, lax on
      GPU/TPU, decided when traced); the parameters are the same for all.
    compute_dtype: ``"float32"``, or ``"bfloat16"`` for products in bfloat16
      (parameters, ``z`` and the reconstruction stay float32).
  """

  image_shape: tuple[int, int, int]
  filters: tuple[int, ...] = (32, 64, 128)
  embed_size: int = 10
  conv_impl: str = "auto"
  compute_dtype: str = "float32"

  def __post_init__(self):
    cae_plan(self.image_shape, self.filters)  # fail at construction on a bad shape
    if self.conv_impl != "auto":
      convolution.resolve_impl(self.conv_impl)
    super().__post_init__()

  @property
  def embed_dim(self) -> int:
    return self.embed_size

  @property
  def input_dim(self) -> int:
    return int(np.prod(self.image_shape))

  @property
  def plan(self) -> list[dict]:
    """The encoder's convolutions (see ``cae_plan``)."""
    return cae_plan(self.image_shape, self.filters)

  def setup(self):
    impl, dtype, plan = convolution.resolve_impl(self.conv_impl), self.compute_dtype, self.plan
    init = nn.initializers.glorot_uniform()
    self.convs = [
        Conv2D(f, (p["kernel"],) * 2, 2, p["padding"], impl, dtype, name=f"conv{i + 1}")
        for i, (f, p) in enumerate(zip(self.filters, plan))
    ]
    self.embedding = nn.Dense(self.embed_size, dtype=dtype, param_dtype=jnp.float32,
                              kernel_init=init)
    h3, w3 = plan[-1]["out_hw"]
    self.dense = nn.Dense(h3 * w3 * self.filters[-1], dtype=dtype, param_dtype=jnp.float32,
                          kernel_init=init)
    # deconv i mirrors conv i, back to conv i's input channels; run last to first.
    channels = (self.image_shape[-1], *self.filters[:-1])
    self.deconvs = [
        ConvTranspose2D(channels[i], (plan[i]["kernel"],) * 2, 2, plan[i]["padding"], impl,
                        dtype, name=f"deconv{i + 1}")
        for i in reversed(range(len(plan)))
    ]

  def _images(self, x: jax.Array) -> jax.Array:
    shape = tuple(self.image_shape)
    if x.ndim == 2 and x.shape[1] == self.input_dim:
      return x.reshape(x.shape[0], *shape)
    if x.ndim == 4 and tuple(x.shape[1:]) == shape:
      return x
    raise ValueError(
        f"ConvAutoEncoder for images {shape} takes x as [n, {self.input_dim}] rows or "
        f"[n, {shape[0]}, {shape[1]}, {shape[2]}] images; got shape {tuple(x.shape)}")

  def encode(self, x: jax.Array) -> jax.Array:
    """``x [n, h, w, c]`` or ``[n, h * w * c]`` -> ``z [n, embed_size]`` (float32)."""
    y = self._images(x)
    for conv in self.convs:
      y = nn.relu(conv(y))
    return self.embedding(y.reshape(y.shape[0], -1)).astype(jnp.float32)

  def decode(self, z: jax.Array) -> jax.Array:
    """``z [n, embed_size] -> x_hat [n, h, w, c]`` (float32)."""
    h3, w3 = self.plan[-1]["out_hw"]
    y = nn.relu(self.dense(z)).reshape(z.shape[0], h3, w3, self.filters[-1])
    for i, deconv in enumerate(self.deconvs):
      y = deconv(y)
      if i < len(self.deconvs) - 1:
        y = nn.relu(y)
    return y.astype(jnp.float32)

  def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Returns ``(x_hat, z [n, embed_size])``, ``x_hat`` shaped as ``x`` (rows or images)."""
    z = self.encode(x)
    return self.decode(z).reshape(x.shape), z
