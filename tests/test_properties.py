"""Property tests (hypothesis) of the DEC maths and the metrics, on a bounded number of
examples: any finite input, huge and tiny magnitudes included."""

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from jdec import dec, metrics

SETTINGS = settings(max_examples=50, deadline=None, derandomize=True)

# Jitted once per shape; the shapes are drawn from a few sizes so that compiling stays
# a small part of the test.
log_q_fn = jax.jit(dec.log_soft_assignment, static_argnums=2)


@jax.jit
def _p_and_kl(z, mu):
  q = dec.soft_assignment(z, mu)
  p = dec.target_distribution(q)
  return p, dec.kl_loss(p, q), dec.kl_loss(p, p)


@st.composite
def embeddings_and_centres(draw):
  """``z [n, d]`` and centres ``[k, d]``, float32, each at its own scale from 1e-38 to the
  largest float32 (so differences can exceed it)."""
  n, k, d = (draw(st.sampled_from(sizes)) for sizes in ((1, 5), (1, 3), (1, 4)))
  unit = st.floats(-1.0, 1.0, width=32)

  def scaled(shape):
    scale = draw(st.sampled_from([1e-38, 1e-20, 1.0, 1e20, 3.4e38]))
    return (draw(hnp.arrays(np.float64, shape, elements=unit)) * scale).astype(np.float32)

  return scaled((n, d)), scaled((k, d))


@SETTINGS
@given(embeddings_and_centres(), st.sampled_from([0.5, 1.0, 10.0]))
def test_q_is_finite_and_rows_sum_to_one(zmu, alpha):
  z, mu = zmu
  log_q = np.asarray(log_q_fn(jnp.asarray(z), jnp.asarray(mu), alpha))
  q = np.exp(log_q)
  # float32 keeps about 1e-7 of the kernels' magnitude, which reaches about 1,000
  # for points 1e38 apart: q is exact to 1e-4 there, and far better near the centres.
  assert np.all(np.isfinite(log_q)) and np.all(log_q <= 1e-4), (z, mu, log_q)
  np.testing.assert_allclose(q.sum(axis=1), 1.0, rtol=1e-4)
  # The nearest centre (in float64) gets the largest q, up to ties.
  d2 = ((z.astype(np.float64)[:, None] - mu.astype(np.float64)[None]) ** 2).sum(-1)
  best = log_q[np.arange(len(z)), d2.argmin(axis=1)]
  assert np.all(best >= log_q.max(axis=1) - 1e-4)


@SETTINGS
@given(embeddings_and_centres())
def test_p_is_finite_and_kl_is_nonnegative_and_zero_at_p(zmu):
  z, mu = zmu
  p, kl, kl_self = (np.asarray(a) for a in _p_and_kl(jnp.asarray(z), jnp.asarray(mu)))
  assert np.all(np.isfinite(p)) and np.all(p >= 0)
  np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-4)
  assert np.all(np.isfinite(kl)) and np.all(kl >= -1e-6)
  np.testing.assert_allclose(kl_self, 0.0, atol=1e-6)


@SETTINGS
@given(st.data())
def test_scores_do_not_depend_on_the_names_of_the_clusters(data):
  n = data.draw(st.integers(2, 60))
  y_true = np.asarray(data.draw(st.lists(st.integers(0, 4), min_size=n, max_size=n)))
  y_pred = np.asarray(data.draw(st.lists(st.integers(0, 6), min_size=n, max_size=n)))
  names = np.asarray(data.draw(st.permutations(range(7))))
  renamed_pred = names[y_pred] * 3 + 100  # any injective relabelling
  renamed_true = np.asarray(data.draw(st.permutations(range(5))))[y_true]
  want = metrics.scores(y_true, y_pred)
  for got in (metrics.scores(y_true, renamed_pred), metrics.scores(renamed_true, y_pred),
              metrics.scores(renamed_true, renamed_pred)):
    for name, value in want.items():
      assert got[name] == pytest_approx(value), name


def pytest_approx(value):
  import pytest  # pylint: disable=g-import-not-at-top
  return pytest.approx(value, abs=1e-9)
