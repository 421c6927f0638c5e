"""One run's scan: it equals the per-step path, stops at its limit, never recompiles."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdec import cluster, dec, train
from jdec.scan import batch_indices, compile_scan, run_steps_reference
from tiny_training import ae_state as _state, clustering_state as _clustering_state, tiny_problem


def test_batch_indices_cover_each_epoch_once():
  idx = batch_indices(jax.random.key(0), jnp.asarray(0), num_steps=7, n=30,
                            batch_size=4)
  idx = np.asarray(idx)
  assert idx.shape == (7, 4)
  assert len(np.unique(idx)) == 28  # one epoch = 7 batches, no repeats
  # Steps 3..9 taken later give the same rows as the global step numbers say.
  later = np.asarray(batch_indices(jax.random.key(0), jnp.asarray(3), num_steps=7,
                                         n=30, batch_size=4))
  np.testing.assert_array_equal(later[:4], idx[3:])
  assert not np.array_equal(later[4:], idx[:3])  # the next epoch is reshuffled


@pytest.fixture
def tiny():
  return tiny_problem()


def test_scan_equals_per_step_reference(tiny):
  x, model, params = tiny
  scan = compile_scan(train.reconstruction_step, num_steps=10, batch_size=16)
  s_scan, m_scan = scan(_state(model, params), x, jax.random.key(1), jnp.asarray(4),
                        jnp.asarray(10))
  s_ref, m_ref = run_steps_reference(train.reconstruction_step, _state(model, params),
                                           x, jax.random.key(1), 4, 10, 16)
  np.testing.assert_allclose(m_scan["loss"], [m["loss"] for m in m_ref], rtol=1e-5)
  for a, b in zip(jax.tree.leaves(s_scan.params), jax.tree.leaves(s_ref.params)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
  assert int(s_scan.step) == 10


def test_limit_stops_updates_without_recompiling(tiny):
  x, model, params = tiny
  scan = compile_scan(train.reconstruction_step, num_steps=6, batch_size=16)
  s_full, _ = scan(_state(model, params), x, jax.random.key(1), jnp.asarray(0), jnp.asarray(6))
  s_part, m = scan(_state(model, params), x, jax.random.key(1), jnp.asarray(0), jnp.asarray(4))
  s_ref, _ = run_steps_reference(train.reconstruction_step, _state(model, params), x,
                                       jax.random.key(1), 0, 4, 16)
  assert int(s_part.step) == 4 and int(s_full.step) == 6
  np.testing.assert_array_equal(np.asarray(m["loss"][4:]), 0.0)
  for a, b in zip(jax.tree.leaves(s_part.params), jax.tree.leaves(s_ref.params)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
  assert scan._cache_size() == 1


def test_pretraining_loss_falls(tiny):
  x, model, params = tiny
  scan = compile_scan(train.reconstruction_step, num_steps=6, batch_size=16)
  state, losses = _state(model, params), []
  for epoch in range(30):
    state, m = scan(state, x, jax.random.key(2), jnp.asarray(6 * epoch), jnp.asarray(6))
    losses.append(float(m["loss"].mean()))
  assert losses[-1] < 0.5 * losses[0]
  assert scan._cache_size() == 1  # no recompiles across epochs


def test_dec_loss_falls_and_centres_move(tiny):
  x, model, params = tiny
  state = _clustering_state(x, model, params)
  centres0 = np.asarray(state.params["centroids"])
  encoder0 = np.asarray(state.params["autoencoder"]["encoder"]["dense_0"]["kernel"])
  p = dec.target_distribution(jnp.exp(cluster.full_log_q(state, x)))
  scan = compile_scan(train.clustering_step, num_steps=30, batch_size=16)
  state, m = scan(state, (x, p), jax.random.key(3), jnp.asarray(0), jnp.asarray(30))
  assert float(m["loss"][-5:].mean()) < float(m["loss"][:5].mean())
  assert not np.allclose(state.params["centroids"], centres0)
  assert not np.allclose(state.params["autoencoder"]["encoder"]["dense_0"]["kernel"], encoder0)
  # DEC does not touch the decoder (no gradient reaches it).
  np.testing.assert_array_equal(state.params["autoencoder"]["decoder"]["dense_0"]["kernel"],
                                params["decoder"]["dense_0"]["kernel"])


def test_dec_scan_equals_per_step_reference(tiny):
  x, model, params = tiny
  s0 = _clustering_state(x, model, params)
  p = dec.target_distribution(jnp.exp(cluster.full_log_q(s0, x)))
  step = functools.partial(train.clustering_step, objective="dec")
  scan = compile_scan(step, num_steps=8, batch_size=16)
  s_ref, _ = run_steps_reference(step, jax.tree.map(jnp.copy, s0), (x, p),
                                       jax.random.key(5), 0, 8, 16)
  s_scan, _ = scan(s0, (x, p), jax.random.key(5), jnp.asarray(0), jnp.asarray(8))
  for a, b in zip(jax.tree.leaves(s_scan.params), jax.tree.leaves(s_ref.params)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
