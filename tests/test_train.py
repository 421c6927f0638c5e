"""The train steps: the IDEC objective, augmentation, optimisers by name."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdec import cluster, dec, train
from jdec.scan import compile_scan
from tiny_training import ae_state as _state, clustering_state as _clustering_state, tiny_problem


@pytest.fixture
def tiny():
  return tiny_problem()


def test_idec_loss_trains_the_decoder(tiny):
  x, model, params = tiny
  state = _clustering_state(x, model, params)
  p = dec.target_distribution(jnp.exp(cluster.full_log_q(state, x)))
  scan = compile_scan(functools.partial(train.clustering_step, objective="idec",
                                              kl_weight=0.1),
                            num_steps=5, batch_size=16)
  state, m = scan(state, (x, p), jax.random.key(3), jnp.asarray(0), jnp.asarray(5))
  assert np.all(np.asarray(m["loss"]) > np.asarray(m["kl"]) * 0.1)
  assert not np.allclose(state.params["autoencoder"]["decoder"]["dense_0"]["kernel"],
                         params["decoder"]["dense_0"]["kernel"])


@pytest.mark.parametrize("kl_weight", [0.1, 2.0])
def test_idec_loss_is_mse_plus_weighted_kl(tiny, kl_weight):
  x, model, params = tiny
  state = _clustering_state(x, model, params)
  p = jax.nn.softmax(jax.random.normal(jax.random.key(1), (96, 3)), axis=1)  # far from q
  batch = (x[:16], p[:16])
  _, m = train.clustering_step(state, batch, jax.random.key(0), objective="idec",
                               kl_weight=kl_weight)
  log_q, _, x_hat = state.apply_fn({"params": state.params}, x[:16], decode=True)
  kl = float(jnp.mean(jnp.sum(p[:16] * (jnp.log(p[:16]) - log_q), axis=1)))
  mse = float(jnp.mean(jnp.square(x_hat - x[:16])))
  np.testing.assert_allclose(float(m["kl"]), kl, rtol=1e-4)
  np.testing.assert_allclose(float(m["loss"]), mse + kl_weight * kl, rtol=1e-4)
  _, m_dec = train.clustering_step(state, batch, jax.random.key(0), objective="dec")
  np.testing.assert_allclose(float(m_dec["loss"]), kl, rtol=1e-4)  # DEC: KL alone
  with pytest.raises(ValueError, match="unknown objective"):
    train.clustering_step(state, batch, jax.random.key(0), objective="kl")


def test_augment_feeds_the_step_a_transformed_batch_p_unchanged(tiny):
  x, model, params = tiny
  state = _clustering_state(x, model, params)
  p = dec.target_distribution(jnp.exp(cluster.full_log_q(state, x)))
  seen = []

  def flip(key, rows):  # a deterministic stand-in: the step must use what it returns
    seen.append(key)
    return rows[:, ::-1]

  batch = (x[:16], p[:16])
  _, m_aug = train.clustering_step(state, batch, jax.random.key(7), augment=flip)
  _, m_ref = train.clustering_step(state, (x[:16, ::-1], p[:16]), jax.random.key(7))
  np.testing.assert_allclose(float(m_aug["loss"]), float(m_ref["loss"]), rtol=1e-6)
  assert len(seen) == 1  # called with the step's key
  _, r_aug = train.reconstruction_step(_state(model, params), x[:16], jax.random.key(7),
                                       augment=flip)
  _, r_ref = train.reconstruction_step(_state(model, params), x[:16, ::-1], jax.random.key(7))
  np.testing.assert_allclose(float(r_aug["loss"]), float(r_ref["loss"]), rtol=1e-6)


def test_optimizers_by_name():
  params = {"w": jnp.ones(3)}
  grads = {"w": jnp.full(3, 0.5)}
  for name, expected in [("sgd", 1 - 0.1 * 0.5), ("adam", 1 - 0.1)]:  # adam's first step: lr
    tx = train.optimizer(name, 0.1, 0.9)
    updates, _ = tx.update(grads, tx.init(params), params)
    np.testing.assert_allclose(params["w"] + updates["w"], expected, rtol=1e-5)
  with pytest.raises(ValueError, match="unknown optimizer"):
    train.optimizer("rmsprop", 0.1)
