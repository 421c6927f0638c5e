"""The DEC maths against a float64 NumPy reference and hand-computed cases."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jdec
from jdec import dec


def ref_q(z, mu, alpha=1.0):
  z, mu = np.float64(z), np.float64(mu)
  d2 = ((z[:, None, :] - mu[None]) ** 2).sum(-1)
  k = (1 + d2 / alpha) ** (-(alpha + 1) / 2)
  return k / k.sum(1, keepdims=True)


def ref_p(q):
  q = np.float64(q)
  w = q**2 / q.sum(0)
  return w / w.sum(1, keepdims=True)


def ref_kl(p, q):
  p, q = np.float64(p), np.float64(q)
  with np.errstate(divide="ignore", invalid="ignore"):
    return np.where(p > 0, p * np.log(p / q), 0.0).sum(1)


@pytest.fixture
def zmu():
  rng = np.random.default_rng(1)
  return rng.normal(size=(50, 4)).astype(np.float32), rng.normal(size=(6, 4)).astype(np.float32)


def test_hand_computed_case():
  # z = 0, centres at distance^2 0 and 1: kernels 1 and 1/2 with alpha = 1.
  q = jdec.soft_assignment(jnp.zeros((1, 1)), jnp.array([[0.0], [1.0]]))
  np.testing.assert_allclose(q, [[2 / 3, 1 / 3]], rtol=1e-6)
  # p ∝ q^2 / f with f = q (one row): p ∝ q -> unchanged for a single row.
  np.testing.assert_allclose(jdec.target_distribution(q), q, rtol=1e-6)
  p = jnp.array([[1.0, 0.0]])
  np.testing.assert_allclose(jdec.kl_loss(p, q), [np.log(3 / 2)], rtol=1e-6)


@pytest.mark.parametrize("alpha", [1.0, 0.5, 3.0])
def test_soft_assignment_matches_float64_reference(zmu, alpha):
  z, mu = zmu
  np.testing.assert_allclose(jdec.soft_assignment(z, mu, alpha), ref_q(z, mu, alpha),
                             rtol=2e-5, atol=1e-7)


def test_target_and_kl_match_reference(zmu):
  q = ref_q(*zmu).astype(np.float32)
  p = jdec.target_distribution(q)
  np.testing.assert_allclose(p, ref_p(q), rtol=2e-5, atol=1e-7)
  np.testing.assert_allclose(jdec.kl_loss(p, q), ref_kl(p, q), rtol=1e-4, atol=1e-6)


def test_properties(zmu):
  z, mu = zmu
  q = jdec.soft_assignment(z, mu)
  p = jdec.target_distribution(q)
  np.testing.assert_allclose(q.sum(1), 1.0, rtol=1e-5)
  np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-5)
  # p is sharper: lower entropy on average (rows of large clusters may lose
  # some mass to the frequency normalisation, so not row by row).
  ent = lambda a: -(a * np.log(a)).sum(1)
  assert ent(np.asarray(p)).mean() < ent(np.asarray(q)).mean()
  # With equally used clusters, every row's largest entry grows.
  q_bal = jnp.array([[0.6, 0.3, 0.1], [0.1, 0.6, 0.3], [0.3, 0.1, 0.6]])
  p_bal = jdec.target_distribution(q_bal)
  assert np.all(np.asarray(p_bal.max(1)) > np.asarray(q_bal.max(1)))
  np.testing.assert_allclose(jdec.kl_loss(q, q), 0.0, atol=1e-6)
  nearest = np.argmin(((z[:, None] - mu[None]) ** 2).sum(-1), axis=1)
  np.testing.assert_array_equal(np.argmax(q, 1), nearest)


def test_stable_for_far_points():
  z = jnp.array([[1e18, -1e18], [0.0, 0.0]], jnp.float32)
  mu = jnp.array([[0.0, 0.0], [1e17, 1e17], [-5.0, 3.0]], jnp.float32)
  q = jdec.soft_assignment(z, mu)
  assert np.all(np.isfinite(q))
  np.testing.assert_allclose(q.sum(1), 1.0, rtol=1e-5)
  p = jdec.target_distribution(q)
  assert np.all(np.isfinite(p))
  assert np.all(np.isfinite(jdec.kl_loss(p, q)))
  # With a huge alpha-power the linear-space kernel underflows; log space does not.
  q_big = jdec.soft_assignment(jnp.array([[1e3, 0.0]]), jnp.array([[0.0, 0.0], [2e3, 0.0]]), alpha=200.0)
  np.testing.assert_allclose(q_big, [[0.5, 0.5]], rtol=1e-4)


def test_kl_finite_with_zeros():
  p = jnp.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0]])
  q = jnp.array([[0.0, 0.5, 0.5], [0.5, 0.5, 0.0]])
  loss = jdec.kl_loss(p, q)
  assert np.all(np.isfinite(loss))
  np.testing.assert_allclose(loss[1], 0.0, atol=1e-7)
  grad_q = jax.grad(lambda q: jdec.kl_loss(p, q).sum())(q)
  assert np.all(np.isfinite(grad_q))


def test_jit_equals_eager(zmu):
  z, mu = zmu
  close = lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
  q = jdec.soft_assignment(z, mu)
  close(jax.jit(jdec.soft_assignment)(z, mu), q)
  p = jdec.target_distribution(q)
  close(jax.jit(jdec.target_distribution)(q), p)
  close(jax.jit(jdec.kl_loss)(p, q), jdec.kl_loss(p, q))


def test_gradients(zmu):
  z, mu = zmu
  z, mu = jnp.asarray(z[:8], jnp.float32), jnp.asarray(mu[:3], jnp.float32)
  check_grads(lambda a, b: dec.log_soft_assignment(a, b), (z, mu), order=1,
              modes=["rev"], atol=5e-2, rtol=5e-2, eps=1e-2)
  p = jdec.target_distribution(jdec.soft_assignment(z, mu))
  check_grads(lambda b: jdec.kl_loss(p, jdec.soft_assignment(z, b)).sum(), (mu,), order=1,
              modes=["rev"], atol=5e-2, rtol=5e-2, eps=1e-2)


def test_gradient_of_kl_wrt_log_q_and_not_p(zmu):
  q = jdec.soft_assignment(*zmu)
  p = jdec.target_distribution(q)
  grad_p = jax.grad(lambda p: jdec.kl_loss(p, q).sum())(p)
  np.testing.assert_array_equal(grad_p, 0.0)
  grad_log_q = jax.grad(lambda lq: dec.kl_loss_from_log(p, lq).sum())(jnp.log(q))
  np.testing.assert_allclose(grad_log_q, -p, rtol=1e-6)


def test_log_squared_distances():
  z = jnp.array([[0.0, 0.0], [3.0, 4.0], [1e20, 0.0]])
  mu = jnp.array([[0.0, 0.0], [3.0, 0.0]])
  got = np.asarray(dec.log_squared_distances(z, mu))
  with np.errstate(divide="ignore"):  # log 0 = -inf
    want = np.log(np.asarray([[0.0, 9.0], [25.0, 16.0], [1e40, (1e20 - 3.0) ** 2]]))
  assert got[0, 0] == -np.inf  # a zero distance
  np.testing.assert_allclose(got[~np.isinf(want)], want[~np.isinf(want)], rtol=1e-6)
  # Where a point is a centre (a k-means singleton's centre is its point), the gradient
  # is the old formula's: zero on that pair, finite everywhere.
  weights = jnp.arange(2.0)[None, :]
  old = lambda z_, mu_: jnp.sum(jax.nn.log_softmax(-jnp.log1p(dec.squared_distances(z_, mu_)),
                                                  axis=1) * weights)
  new = lambda z_, mu_: jnp.sum(dec.log_soft_assignment(z_, mu_) * weights)
  for args in ((z[:2], mu), (mu, mu)):
    g_new, g_old = jax.grad(new, (0, 1))(*args), jax.grad(old, (0, 1))(*args)
    for a, b in zip(g_new, g_old):
      assert np.all(np.isfinite(a))
      np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
