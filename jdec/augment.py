"""Random rotations and shifts of image batches, the DEC-DA data augmentation.

DEC-DA trains on MNIST through Keras'
``ImageDataGenerator(rotation_range=10, width_shift_range=0.1,
height_shift_range=0.1)``: every image gets its own angle, drawn uniformly in
``[-10, 10]`` degrees, and its own sub-pixel shifts, drawn uniformly in
``[-0.1, 0.1]`` times the height (rows) and the width (columns), resampled
bilinearly (order 1) with ``fill_mode='nearest'`` (edge replication). This
module is that transform as pure, jittable, vmappable JAX functions.

Geometric convention (pixel coordinates ``(row, col)``, pixel centres at the
integers, ``c = ((h - 1) / 2, (w - 1) / 2)`` the image centre): output pixel
``(i, j)`` samples the input at

  ``R(theta) @ ((i, j) - c + s) + c``,   ``R(theta) = [[cos, -sin], [sin, cos]]``,

with ``s = (s_row, s_col)`` in pixels. This is Keras' ``rotation @ shift``
matrix about the centre. So with ``theta = 0`` the output is the input moved
by ``-s`` (``out[i, j] = in[i + s_row, j + s_col]``), and with ``s = 0`` a
positive ``theta`` turns the picture clockwise as displayed (rows pointing
down). The ranges are symmetric, so neither sign changes the distribution.
Keras 2.2 put the centre at ``h / 2 + 0.5``, one pixel off; later
keras-preprocessing and this module use the true centre ``(h - 1) / 2``.

Reference: X. Guo, E. Zhu, X. Liu, J. Yin, "Deep Embedded Clustering with Data
Augmentation", ACML 2018.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy import ndimage


def _check_images(images) -> None:
  if images.ndim != 4:
    raise ValueError(f"images must have rank 4 [n, h, w, c], got shape {images.shape}")
  if not jnp.issubdtype(images.dtype, jnp.floating):
    raise ValueError(f"images must be a float array, got dtype {images.dtype}; "
                     "convert with images.astype(jnp.float32)")


def _check_range(name: str, value) -> None:
  try:
    negative = float(value) < 0
  except TypeError:  # A traced value (e.g. under vmap): cannot be checked here.
    return
  if negative or math.isnan(float(value)):
    raise ValueError(f"{name} must be a non-negative number, got {value}")


def _bilinear(image: jax.Array, rows: jax.Array, cols: jax.Array) -> jax.Array:
  """Samples one channel ``[h, w]`` at ``rows, cols [h, w]`` (order 1, nearest)."""
  return ndimage.map_coordinates(image, [rows, cols], order=1, mode="nearest")


def affine(images: jax.Array, angles_deg: jax.Array, shifts: jax.Array) -> jax.Array:
  """Rotates and shifts each image by its own given angle and shift.

  Output pixel ``(i, j)`` of image ``k`` is the input sampled bilinearly at
  ``R(angles_deg[k]) @ ((i, j) - c + shifts[k]) + c``, with edge replication
  outside the image (see the module docstring for ``R`` and ``c``).

  Args:
    images: float images ``[n, h, w, c]``.
    angles_deg: rotation angles in degrees ``[n]``.
    shifts: shifts in pixels ``[n, 2]``, ``(rows, cols)``; with a zero angle
      ``out[i, j] = in[i + shifts[k, 0], j + shifts[k, 1]]``.

  Returns:
    ``[n, h, w, c]`` transformed images, same dtype as ``images``.
  """
  images = jnp.asarray(images)
  _check_images(images)
  n, h, w, _ = images.shape
  angles_deg = jnp.asarray(angles_deg)
  shifts = jnp.asarray(shifts)
  if angles_deg.shape != (n,):
    raise ValueError(f"angles_deg must have shape [n] = ({n},), got {angles_deg.shape}")
  if shifts.shape != (n, 2):
    raise ValueError(f"shifts must have shape [n, 2] = ({n}, 2), got {shifts.shape}")
  coord_dtype = jnp.promote_types(images.dtype, jnp.float32)
  theta = jnp.deg2rad(angles_deg.astype(coord_dtype))
  cos = jnp.cos(theta)[:, None, None]
  sin = jnp.sin(theta)[:, None, None]
  c_row, c_col = (h - 1) / 2, (w - 1) / 2
  grid_row, grid_col = jnp.meshgrid(jnp.arange(h, dtype=coord_dtype),
                                    jnp.arange(w, dtype=coord_dtype), indexing="ij")
  shifts = shifts.astype(coord_dtype)
  d_row = grid_row[None] - c_row + shifts[:, 0, None, None]  # [n, h, w]
  d_col = grid_col[None] - c_col + shifts[:, 1, None, None]
  rows = cos * d_row - sin * d_col + c_row
  cols = sin * d_row + cos * d_col + c_col
  per_channel = jax.vmap(_bilinear, in_axes=(2, None, None), out_axes=2)
  out = _fusion_boundary(jax.vmap(per_channel), images, rows, cols)
  return out.astype(images.dtype)


def _fusion_boundary(fn, *args):
  """``fn(*args)``, on CPU compiled apart from the computation around it.

  ``fn`` must return an array like ``args[0]`` (the images): the branch never
  taken returns ``args[0]`` itself. Inside a jitted training step XLA:CPU
  fuses the four bilinear gathers of `affine` with their neighbours into four
  separate fusions that each recompute the coordinates, which made the
  augmentation cost 9-14 ms of a 48-57 ms MNIST step on a 2-core CPU where it
  takes 1.5-2.3 ms alone (``experiments/conv_step.py --augment``, results in
  ``experiments/results/augment-cost*-cpu-2026-11-28.txt``). A conditional is
  a fusion boundary: its branch compiles as the function does alone. The
  predicate is always true; the optimisation barrier keeps XLA from folding
  the branch away, and being a constant it stays unbatched under ``vmap``
  (seed sweeps), so the conditional survives there too. Other platforms call
  ``fn`` directly (a conditional can cost a device-to-host sync per step on a
  GPU).
  """
  def isolated(*operands):
    always = jax.lax.optimization_barrier(jnp.asarray(True))
    return jax.lax.cond(always, fn, lambda images, *_: images, *operands)
  return jax.lax.platform_dependent(*args, cpu=isolated, default=fn)


def random_affine(key: jax.Array, images: jax.Array, *, max_rotation_deg: float = 10.0,
                  max_shift: float = 0.1) -> jax.Array:
  """Rotates and shifts each image by its own random angle and shift.

  Image ``k`` gets ``theta_k ~ U[-max_rotation_deg, max_rotation_deg]`` degrees
  and shifts ``U[-max_shift, max_shift] * h`` rows and ``* w`` columns
  (sub-pixel), applied by `affine`. All draws come from ``key`` alone, so the
  result is a deterministic function of ``(key, images)``. Zero ranges return
  ``images`` unchanged.

  Args:
    key: a JAX PRNG key.
    images: float images ``[n, h, w, c]``.
    max_rotation_deg: largest rotation in degrees (Keras ``rotation_range``).
    max_shift: largest shift as a fraction of the height and width (Keras
      ``height_shift_range`` / ``width_shift_range`` below 1; values of 1 or
      more are not read as pixels here, unlike Keras).

  Returns:
    ``[n, h, w, c]`` augmented images, same dtype as ``images``.
  """
  images = jnp.asarray(images)
  _check_images(images)
  _check_range("max_rotation_deg", max_rotation_deg)
  _check_range("max_shift", max_shift)
  n, h, w, _ = images.shape
  u = jax.random.uniform(key, (n, 3), jnp.float32, minval=-1.0, maxval=1.0)
  angles = u[:, 0] * max_rotation_deg
  scale = jnp.asarray([h, w], jnp.float32) * max_shift
  shifts = u[:, 1:] * scale[None, :]
  return affine(images, angles, shifts)


def infer_image_shape(d: int) -> tuple[int, int, int]:
  """The square single-channel image shape ``(s, s, 1)`` of a flat width ``d``.

  Args:
    d: flat row width, ``h * w * c`` (784 for MNIST).

  Returns:
    ``(s, s, 1)`` with ``s * s == d``.

  Raises:
    ValueError: if ``d`` is not a positive perfect square.
  """
  s = math.isqrt(d) if isinstance(d, (int, np.integer)) and d > 0 else 0
  if s * s != d or s == 0:
    raise ValueError(f"cannot infer an image shape from flat width d={d}: it is not a "
                     "perfect square; pass image_shape=(h, w, c) explicitly")
  return (s, s, 1)


def augment_flat(key: jax.Array, x: jax.Array, image_shape: tuple[int, int, int] | None,
                 *, max_rotation_deg: float = 10.0, max_shift: float = 0.1) -> jax.Array:
  """`random_affine` on flat rows: reshape to images, augment, flatten back.

  Args:
    key: a JAX PRNG key.
    x: float rows ``[n, h * w * c]`` (row-major ``[h, w, c]`` pixels, as MNIST's
      784-d rows).
    image_shape: ``(h, w, c)``; ``None`` infers ``(s, s, 1)`` with
      `infer_image_shape`.
    max_rotation_deg: largest rotation in degrees.
    max_shift: largest shift as a fraction of the height and width.

  Returns:
    ``[n, h * w * c]`` augmented rows, same dtype as ``x``.
  """
  x = jnp.asarray(x)
  if x.ndim != 2:
    raise ValueError(f"x must have rank 2 [n, h*w*c], got shape {x.shape}")
  d = x.shape[1]
  if image_shape is None:
    image_shape = infer_image_shape(d)
  image_shape = tuple(image_shape)
  if len(image_shape) != 3 or math.prod(image_shape) != d:
    raise ValueError(f"image_shape must be (h, w, c) with h*w*c equal to the row width "
                     f"{d}, got {image_shape}")
  images = x.reshape((x.shape[0],) + image_shape)
  out = random_affine(key, images, max_rotation_deg=max_rotation_deg, max_shift=max_shift)
  return out.reshape(x.shape)
