"""Tests for jdec.augment: exact cases, a scipy oracle, randomness and errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage

from jdec import augment

# Jitted once per shape: compiling is cheaper than eager op-by-op dispatch here.
_affine = jax.jit(augment.affine)
_random_affine = jax.jit(augment.random_affine, static_argnames=("max_rotation_deg", "max_shift"))
_augment_flat = jax.jit(augment.augment_flat, static_argnums=2,
                        static_argnames=("max_rotation_deg", "max_shift"))


def _images(n=4, h=12, w=10, c=2, seed=0):
  return np.random.default_rng(seed).random((n, h, w, c), dtype=np.float32)


def test_zero_ranges_are_identity():
  x = _images()
  out = _random_affine(jax.random.key(3), x, max_rotation_deg=0.0, max_shift=0.0)
  np.testing.assert_allclose(np.asarray(out), x, rtol=0, atol=1e-6)
  flat = x[..., :1].reshape(4, -1)
  out_flat = _augment_flat(jax.random.key(3), flat, (12, 10, 1),
                           max_rotation_deg=0.0, max_shift=0.0)
  np.testing.assert_allclose(np.asarray(out_flat), flat, rtol=0, atol=1e-6)


def test_integer_shift_is_pixel_shift_with_edge_replication():
  x = _images(n=2)
  out = np.asarray(_affine(x, jnp.zeros(2), jnp.asarray([[2.0, -3.0], [-1.0, 0.0]])))
  h, w = x.shape[1:3]
  rows = np.clip(np.arange(h) + 2, 0, h - 1)
  cols = np.clip(np.arange(w) - 3, 0, w - 1)
  np.testing.assert_allclose(out[0], x[0][rows][:, cols], atol=1e-6)
  rows = np.clip(np.arange(h) - 1, 0, h - 1)
  np.testing.assert_allclose(out[1], x[1][rows], atol=1e-6)


def test_half_pixel_shift_averages_neighbours():
  x = _images(n=1, c=1)
  out = np.asarray(_affine(x, jnp.zeros(1), jnp.asarray([[0.0, 0.5]])))
  np.testing.assert_allclose(out[0, :, :-1], 0.5 * (x[0, :, :-1] + x[0, :, 1:]), atol=1e-6)
  np.testing.assert_allclose(out[0, :, -1], x[0, :, -1], atol=1e-6)


def test_rotation_by_90_degrees_is_clockwise():
  x = _images(n=1, h=7, w=7, c=1)
  out = np.asarray(_affine(x, jnp.asarray([90.0]), jnp.zeros((1, 2))))
  # np.rot90 with k=-1 turns clockwise: the top row becomes the right column.
  np.testing.assert_allclose(out[0, :, :, 0], np.rot90(x[0, :, :, 0], k=-1), atol=1e-5)


@pytest.mark.parametrize("angle,shift", [(7.3, (1.4, -2.2)), (-9.9, (-0.6, 0.35)),
                                         (3.0, (0.0, 0.0))])
def test_matches_scipy_affine_transform(angle, shift):
  x = _images(n=1, h=28, w=28, c=1, seed=1)
  out = np.asarray(_affine(x, jnp.asarray([angle]), jnp.asarray([shift])))
  theta = np.deg2rad(angle)
  rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
  centre = np.array([13.5, 13.5])
  offset = centre - rot @ centre + rot @ np.asarray(shift)
  ref = ndimage.affine_transform(x[0, :, :, 0].astype(np.float64), rot, offset=offset,
                                 order=1, mode="nearest")
  interior = (slice(4, -4), slice(4, -4))
  np.testing.assert_allclose(out[0, :, :, 0][interior], ref[interior], rtol=0, atol=1e-4)
  np.testing.assert_allclose(out[0, :, :, 0], ref, rtol=0, atol=1e-4)
  assert np.abs(out[0, :, :, 0] - x[0, :, :, 0]).max() > 0.1  # It really moved.


def test_deterministic_per_key_and_keys_differ():
  x = _images()
  a = _random_affine(jax.random.key(0), x)
  b = _random_affine(jax.random.key(0), x)
  c = _random_affine(jax.random.key(1), x)
  np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert np.abs(np.asarray(a) - np.asarray(c)).max() > 1e-3


def test_each_image_gets_its_own_transform():
  x = np.repeat(_images(n=1, h=16, w=16, c=1), 8, axis=0)
  out = np.asarray(_random_affine(jax.random.key(5), x))
  for i in range(8):
    for j in range(i + 1, 8):
      assert np.abs(out[i] - out[j]).max() > 1e-3, (i, j)


def _centroid(images):
  """Centre of mass ``[n, 2]`` (row, col) of ``[n, h, w]`` non-negative images."""
  rows, cols = np.mgrid[:images.shape[1], :images.shape[2]]
  mass = images.sum(axis=(1, 2))
  return np.stack([(images * rows[None]).sum(axis=(1, 2)) / mass,
                   (images * cols[None]).sum(axis=(1, 2)) / mass], axis=1)


def test_shifts_stay_in_range_and_vary():
  # A point at the centre of a 41 x 21 image moves by -shift, with
  # |row shift| <= 0.1 * 41 (height) and |col shift| <= 0.1 * 21 (width).
  x = np.zeros((64, 41, 21, 1), np.float32)
  x[:, 20, 10, 0] = 1.0
  out = np.asarray(_random_affine(jax.random.key(2), x, max_rotation_deg=0.0, max_shift=0.1))
  moved = np.abs(_centroid(out[..., 0]) - np.asarray([20.0, 10.0])[None, :])
  assert np.all(moved[:, 0] <= 4.1 + 1e-4) and np.all(moved[:, 1] <= 2.1 + 1e-4)
  assert moved[:, 0].max() > 3.0 and moved[:, 1].max() > 1.5
  assert moved[:, 0].std() > 0.5 and moved[:, 1].std() > 0.25


def test_rotations_stay_in_range_and_vary():
  # The centre pixel is fixed; a point 15 pixels right of it turns by the angle.
  x = np.zeros((64, 41, 41, 1), np.float32)
  x[:, 20, 20, 0] = 1.0
  x[:, 20, 35, 0] = 1.0
  out = np.asarray(_random_affine(jax.random.key(2), x, max_rotation_deg=10.0, max_shift=0.0))
  np.testing.assert_allclose(out[:, 20, 20, 0], 1.0, atol=1e-5)
  far = out[..., 0].copy()
  far[:, 10:31, 10:31] = 0.0
  moved = _centroid(far) - 20.0
  angles = np.degrees(np.arctan2(moved[:, 0], moved[:, 1]))
  np.testing.assert_allclose(np.hypot(moved[:, 0], moved[:, 1]), 15.0, atol=0.2)
  assert np.all(np.abs(angles) <= 10.0 + 0.2)
  assert angles.min() < -5.0 and angles.max() > 5.0 and angles.std() > 3.0


def test_shape_dtype_jit_and_vmap():
  x = _images()
  key = jax.random.key(4)
  eager = augment.random_affine(key, x)
  assert eager.shape == x.shape and eager.dtype == jnp.float32
  jitted = _random_affine(key, x)
  np.testing.assert_allclose(np.asarray(jitted), np.asarray(eager), atol=1e-5)
  keys = jax.random.split(key, 2)
  batched = jax.jit(jax.vmap(augment.random_affine, in_axes=(0, None)))(keys, x)
  assert batched.shape == (2,) + x.shape
  np.testing.assert_allclose(np.asarray(batched[1]),
                             np.asarray(_random_affine(keys[1], x)), atol=1e-5)
  bf16 = _random_affine(key, jnp.asarray(x, jnp.bfloat16))
  assert bf16.dtype == jnp.bfloat16


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the fusion boundary is CPU-only")
def test_resampling_compiles_apart_on_cpu_also_in_a_sweep():
  """On CPU the resampling sits in a conditional, a fusion boundary (see
  ``augment._fusion_boundary``), also under ``vmap`` as in a seed sweep."""
  keys = jax.random.split(jax.random.key(5), 2)
  x = jnp.asarray(_images(n=3, h=8, w=8, c=1).reshape(3, 64))
  one = jax.jit(lambda k, x: augment.augment_flat(k, x, None))
  sweep = jax.jit(jax.vmap(one, in_axes=(0, None)))
  for fn, args in ((one, (keys[0], x)), (sweep, (keys, x))):
    hlo = fn.lower(*args).compile().as_text()
    assert hlo.count(" conditional(") >= 1, "the resampling is no longer compiled apart"
  out = sweep(keys, x)
  np.testing.assert_allclose(np.asarray(out[1]), np.asarray(one(keys[1], x)), atol=1e-6)
  assert not np.allclose(np.asarray(out[0]), np.asarray(x))  # the branch taken augments


def test_augment_flat_on_mnist_rows():
  x = np.random.default_rng(0).random((5, 784), dtype=np.float32)
  key = jax.random.key(7)
  out = _augment_flat(key, x, (28, 28, 1))
  assert out.shape == (5, 784) and out.dtype == jnp.float32
  direct = _random_affine(key, x.reshape(5, 28, 28, 1))
  np.testing.assert_allclose(np.asarray(out), np.asarray(direct).reshape(5, 784), atol=1e-5)
  inferred = _augment_flat(key, x, None)
  np.testing.assert_allclose(np.asarray(inferred), np.asarray(out), atol=1e-5)


def test_infer_image_shape():
  assert augment.infer_image_shape(784) == (28, 28, 1)
  assert augment.infer_image_shape(256) == (16, 16, 1)
  with pytest.raises(ValueError, match=r"d=785.*image_shape"):
    augment.infer_image_shape(785)
  with pytest.raises(ValueError, match="d=0"):
    augment.infer_image_shape(0)


def test_input_errors():
  key = jax.random.key(0)
  with pytest.raises(ValueError, match="rank 4"):
    augment.random_affine(key, np.zeros((28, 28, 1), np.float32))
  with pytest.raises(ValueError, match="float"):
    augment.random_affine(key, np.zeros((2, 28, 28, 1), np.int32))
  with pytest.raises(ValueError, match="max_rotation_deg"):
    augment.random_affine(key, np.zeros((2, 8, 8, 1), np.float32), max_rotation_deg=-1.0)
  with pytest.raises(ValueError, match="max_shift"):
    augment.random_affine(key, np.zeros((2, 8, 8, 1), np.float32), max_shift=-0.1)
  with pytest.raises(ValueError, match="784"):
    augment.augment_flat(key, np.zeros((2, 784), np.float32), (28, 27, 1))
  with pytest.raises(ValueError, match="rank 2"):
    augment.augment_flat(key, np.zeros((2, 28, 28), np.float32), (28, 28, 1))
  with pytest.raises(ValueError, match="shifts"):
    augment.affine(np.zeros((2, 8, 8, 1), np.float32), jnp.zeros(2), jnp.zeros((2, 3)))
  with pytest.raises(ValueError, match="angles_deg"):
    augment.affine(np.zeros((2, 8, 8, 1), np.float32), jnp.zeros(3), jnp.zeros((2, 2)))
