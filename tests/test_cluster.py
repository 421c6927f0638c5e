"""The DEC phase: stopping by tol and by maxiter, the first delta_label, runs that stop alone."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdec import cluster, runs, train
from tiny_training import clustering_params, tiny_problem


@pytest.fixture
def tiny():
  return tiny_problem()


def _states(x, model, params, count=1):
  """``count`` identical runs of the tiny clustering model, stacked."""
  cm, start = clustering_params(x, model, params)
  return runs.create_states(cm.apply, runs.stack([start] * count), train.sgd(0.05, 0.9))


def test_cluster_run_stops_by_tol_and_by_maxiter(tiny):
  x, model, params = tiny
  run = functools.partial(cluster.run, jax.random.key(0)[None], batch_size=16,
                          update_interval=5, progress=False)
  state, hist, out = run(_states(x, model, params), x, tol=1.0, maxiter=100)
  assert out["stopped_by"] == ["tol"] and out["iterations"] == [5]  # any change < 100%
  state, hist, out = run(_states(x, model, params), x, tol=0.0, maxiter=12)
  assert out["stopped_by"] == ["maxiter"] and out["iterations"] == [12]
  assert [h["iteration"] for h in hist] == [0, 5, 10, 12]
  assert {h["run"] for h in hist} == {0}
  assert out["labels"].shape == (1, 96) and out["log_q"].shape == (1, 96, 3)
  assert np.asarray(state.step).tolist() == [12]
  assert hist[0]["delta_label"] is None  # nothing to compare the first labels with


def test_first_delta_label_is_against_the_initial_labels(tiny):
  x, model, params = tiny
  state = _states(x, model, params)
  labels0 = np.asarray(jnp.argmax(cluster.full_log_q(runs.take(state, 0), x), axis=1))
  initial = labels0.copy()
  initial[:12] = (initial[:12] + 1) % 3  # 12 of 96 labels differ from the first update's
  _, hist, out = cluster.run(jax.random.key(0)[None], state, x, batch_size=16,
                             update_interval=5, tol=0.5, maxiter=20,
                             initial_labels=initial[None], progress=False)
  assert hist[0]["delta_label"] == pytest.approx(12 / 96)
  # tol 0.5 is met at iteration 0 already, but DEC-keras stops only after training.
  assert out["iterations"] == [5] and out["stopped_by"] == ["tol"]


def test_each_run_stops_on_its_own_with_its_own_result(tiny):
  x, model, params = tiny
  keys = jnp.stack([jax.random.key(0), jax.random.key(1)])
  kw = dict(batch_size=16, update_interval=5, progress=False)
  # tol 0 never stops by tol: run 1 gets maxiter 12 by stopping the pair there.
  both, _, out = cluster.run(keys, _states(x, model, params, 2), x, tol=0.0, maxiter=12, **kw)
  alone, _, one = cluster.run(keys[1:], _states(x, model, params), x, tol=0.0, maxiter=12, **kw)
  np.testing.assert_array_equal(out["labels"][1], one["labels"][0])
  for a, b in zip(jax.tree.leaves(runs.take(both, 1).params),
                  jax.tree.leaves(runs.take(alone, 0).params)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)  # as on a stack of its own
  assert out["iterations"] == [12, 12]


def test_cluster_sizes_are_recorded_and_an_emptied_cluster_is_warned_about(tiny, caplog):
  x, model, params = tiny
  cm, start = clustering_params(x, model, params)
  # Cluster 2's centre far from every embedding: no row is nearest to it.
  start = {**start, "centroids": start["centroids"].at[2].add(1e3)}
  state = runs.create_states(cm.apply, runs.stack([start, start]), train.sgd(0.05, 0.9))
  keys = jnp.stack([jax.random.key(0), jax.random.key(1)])
  with caplog.at_level("WARNING"):
    _, hist, out = cluster.run(keys, state, x, batch_size=16, update_interval=5, tol=0.0,
                               maxiter=10, progress=False, names=["seed 7", "seed 8"])
  for h in hist:
    labels = np.asarray(out["labels"][h["run"]]) if h["iteration"] == 10 else None
    assert sum(h["cluster_sizes"]) == 96 and len(h["cluster_sizes"]) == 3
    if labels is not None:  # the last record counts the final labels
      assert h["cluster_sizes"] == np.bincount(labels, minlength=3).tolist()
  assert hist[0]["cluster_sizes"][2] == 0
  warnings = [r.getMessage() for r in caplog.records if "no rows" in r.getMessage()]
  # Once per run when the cluster empties, not again at every update while it stays empty.
  assert len(warnings) == 2, warnings
  assert "cluster 2 of seed 7 has no rows at the start of DEC (2 of 3 clusters in use)" in (
      warnings[0])
  assert "of seed 8" in warnings[1]


def test_the_target_comes_from_the_whole_dataset_not_one_batch():
  # P's column weights sum q over all n rows: compute it on the full q, then check one
  # batch's rows of P differ from P computed on that batch alone.
  q = np.asarray(jax.nn.softmax(jax.random.normal(jax.random.key(0), (64, 3)) * 3, axis=1))
  labels, p = cluster._refresh(jnp.log(q)[None])  # pylint: disable=protected-access
  f = q.sum(axis=0)
  want = (q**2 / f) / (q**2 / f).sum(axis=1, keepdims=True)
  np.testing.assert_allclose(p[0], want, rtol=1e-5)
  np.testing.assert_array_equal(labels[0], np.argmax(q, axis=1))
  batch = q[:16]
  fb = batch.sum(axis=0)
  alone = (batch**2 / fb) / (batch**2 / fb).sum(axis=1, keepdims=True)
  assert not np.allclose(p[0, :16], alone, atol=1e-3)
