"""Training: the scan path equals the per-step path, loss falls, nothing recompiles."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdec import cluster, lloyd, models, train


def test_batch_indices_cover_each_epoch_once():
  idx = train.batch_indices(jax.random.key(0), jnp.asarray(0), num_steps=7, n=30,
                            batch_size=4)
  idx = np.asarray(idx)
  assert idx.shape == (7, 4)
  assert len(np.unique(idx)) == 28  # one epoch = 7 batches, no repeats
  # Steps 3..9 taken later give the same rows as the global step numbers say.
  later = np.asarray(train.batch_indices(jax.random.key(0), jnp.asarray(3), num_steps=7,
                                         n=30, batch_size=4))
  np.testing.assert_array_equal(later[:4], idx[3:])
  assert not np.array_equal(later[4:], idx[:3])  # the next epoch is reshuffled


@pytest.fixture
def tiny():
  rng = np.random.default_rng(0)
  centres = rng.normal(size=(3, 12))
  x = (centres[rng.integers(0, 3, 96)] + rng.normal(size=(96, 12)) * 0.3).astype(np.float32)
  model = models.AutoEncoder(12, (16, 8, 2))
  params = models.init_autoencoder(jax.random.key(0), model, 12)
  return jnp.asarray(x), model, params


# One optimiser object for all states: a new one is new static metadata, and
# so (correctly) a new compilation.
TX = train.sgd(0.1, 0.9)


def _state(model, params):
  return train.create_state(apply_fn=model.apply, params=jax.tree.map(jnp.copy, params),
                                 tx=TX)


def test_scan_equals_per_step_reference(tiny):
  x, model, params = tiny
  scan = train.compile_scan(train.reconstruction_step, num_steps=10, batch_size=16)
  s_scan, m_scan = scan(_state(model, params), x, jax.random.key(1), jnp.asarray(4),
                        jnp.asarray(10))
  s_ref, m_ref = train.run_steps_reference(train.reconstruction_step, _state(model, params),
                                           x, jax.random.key(1), 4, 10, 16)
  np.testing.assert_allclose(m_scan["loss"], [m["loss"] for m in m_ref], rtol=1e-5)
  for a, b in zip(jax.tree.leaves(s_scan.params), jax.tree.leaves(s_ref.params)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
  assert int(s_scan.step) == 10


def test_limit_stops_updates_without_recompiling(tiny):
  x, model, params = tiny
  scan = train.compile_scan(train.reconstruction_step, num_steps=6, batch_size=16)
  s_full, _ = scan(_state(model, params), x, jax.random.key(1), jnp.asarray(0), jnp.asarray(6))
  s_part, m = scan(_state(model, params), x, jax.random.key(1), jnp.asarray(0), jnp.asarray(4))
  s_ref, _ = train.run_steps_reference(train.reconstruction_step, _state(model, params), x,
                                       jax.random.key(1), 0, 4, 16)
  assert int(s_part.step) == 4 and int(s_full.step) == 6
  np.testing.assert_array_equal(np.asarray(m["loss"][4:]), 0.0)
  for a, b in zip(jax.tree.leaves(s_part.params), jax.tree.leaves(s_ref.params)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
  assert scan._cache_size() == 1


def test_pretraining_loss_falls(tiny):
  x, model, params = tiny
  scan = train.compile_scan(train.reconstruction_step, num_steps=6, batch_size=16)
  state, losses = _state(model, params), []
  for epoch in range(30):
    state, m = scan(state, x, jax.random.key(2), jnp.asarray(6 * epoch), jnp.asarray(6))
    losses.append(float(m["loss"].mean()))
  assert losses[-1] < 0.5 * losses[0]
  assert scan._cache_size() == 1  # no recompiles across epochs


def _clustering_state(x, model, params, k=3):
  z = model.apply({"params": params}, x, method=model.encode)
  km = lloyd.kmeans(jax.random.key(0), z, k, n_init=3)
  cm = models.ClusteringModel(model, k)
  return train.create_state(apply_fn=cm.apply, params=models.clustering_params(params, km.centroids),
                                 tx=train.sgd(0.05, 0.9))


def test_dec_loss_falls_and_centres_move(tiny):
  x, model, params = tiny
  state = _clustering_state(x, model, params)
  centres0 = np.asarray(state.params["centroids"])
  encoder0 = np.asarray(state.params["autoencoder"]["encoder"]["dense_0"]["kernel"])
  p = cluster._refresh(cluster.full_log_q(state, x))[1]
  scan = train.compile_scan(train.clustering_step, num_steps=30, batch_size=16)
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
  p = cluster._refresh(cluster.full_log_q(s0, x))[1]
  step = functools.partial(train.clustering_step, objective="dec")
  scan = train.compile_scan(step, num_steps=8, batch_size=16)
  s_ref, _ = train.run_steps_reference(step, jax.tree.map(jnp.copy, s0), (x, p),
                                       jax.random.key(5), 0, 8, 16)
  s_scan, _ = scan(s0, (x, p), jax.random.key(5), jnp.asarray(0), jnp.asarray(8))
  for a, b in zip(jax.tree.leaves(s_scan.params), jax.tree.leaves(s_ref.params)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_idec_loss_trains_the_decoder(tiny):
  x, model, params = tiny
  state = _clustering_state(x, model, params)
  p = cluster._refresh(cluster.full_log_q(state, x))[1]
  scan = train.compile_scan(functools.partial(train.clustering_step, objective="idec",
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
  p = cluster._refresh(cluster.full_log_q(state, x))[1]
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


def test_cluster_run_stops_by_tol_and_by_maxiter(tiny):
  x, model, params = tiny
  run = functools.partial(cluster.run, jax.random.key(0), batch_size=16, update_interval=5,
                          progress=False)
  state, hist, out = run(_clustering_state(x, model, params), x, tol=1.0, maxiter=100)
  assert out["stopped_by"] == "tol" and out["iterations"] == 5  # any change < 100%
  state, hist, out = run(_clustering_state(x, model, params), x, tol=0.0, maxiter=12)
  assert out["stopped_by"] == "maxiter" and out["iterations"] == 12
  assert [h["iteration"] for h in hist] == [0, 5, 10, 12]
  assert int(state.step) == 12
  assert hist[0]["delta_label"] is None  # nothing to compare the first labels with


def test_first_delta_label_is_against_the_initial_labels(tiny):
  x, model, params = tiny
  state = _clustering_state(x, model, params)
  labels0 = np.asarray(jnp.argmax(cluster.full_log_q(state, x), axis=1))
  initial = labels0.copy()
  initial[:12] = (initial[:12] + 1) % 3  # 12 of 96 labels differ from the first update's
  _, hist, out = cluster.run(jax.random.key(0), state, x, batch_size=16, update_interval=5,
                             tol=0.5, maxiter=20, initial_labels=initial, progress=False)
  assert hist[0]["delta_label"] == pytest.approx(12 / 96)
  # tol 0.5 is met at iteration 0 already, but DEC-keras stops only after training.
  assert out["iterations"] == 5 and out["stopped_by"] == "tol"
