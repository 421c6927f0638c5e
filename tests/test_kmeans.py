"""JAX k-means against scikit-learn as the oracle."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sklearn.cluster

import jdec
from jdec import inference, lloyd


def test_inertia_matches_sklearn_on_blobs(blobs):
  x, y = blobs
  ours = jdec.kmeans(jax.random.key(0), x, 4)
  theirs = sklearn.cluster.KMeans(4, n_init=20, random_state=0).fit(x)
  assert abs(float(ours.inertia) - theirs.inertia_) <= 0.01 * theirs.inertia_
  assert jdec.metrics.cluster_acc(y, np.asarray(ours.labels)) == 1.0


def test_inertia_matches_sklearn_on_digits():
  x, _ = jdec.data.load_digits()
  ours = jdec.kmeans(jax.random.key(0), x, 10)
  theirs = sklearn.cluster.KMeans(10, n_init=20, random_state=0).fit(x)
  assert abs(float(ours.inertia) - theirs.inertia_) <= 0.01 * theirs.inertia_


def test_result_is_consistent(blobs):
  x, _ = blobs
  res = jdec.kmeans(jax.random.key(3), x, 4, n_init=3)
  d2 = ((x[:, None] - np.asarray(res.centroids)[None]) ** 2).sum(-1)
  np.testing.assert_array_equal(np.asarray(res.labels), d2.argmin(1))
  np.testing.assert_allclose(float(res.inertia), d2.min(1).sum(), rtol=1e-4)
  np.testing.assert_array_equal(lloyd.predict(res.centroids, x), np.asarray(res.labels))
  assert res.centroids.shape == (4, 5) and res.labels.shape == (600,)
  assert 1 <= int(res.n_iter) <= 300


def test_more_restarts_never_worse(blobs):
  x, _ = blobs
  x = x + np.random.default_rng(0).normal(size=x.shape).astype(np.float32) * 8
  one = jdec.kmeans(jax.random.key(0), x, 8, n_init=1)
  many = jdec.kmeans(jax.random.key(0), x, 8, n_init=10)
  # Restart 0 of both runs is the same (split keys are prefix-consistent), and
  # the best of 10 includes it.
  np.testing.assert_array_equal(jax.random.key_data(jax.random.split(jax.random.key(0), 1)[0]),
                                jax.random.key_data(jax.random.split(jax.random.key(0), 10)[0]))
  assert float(many.inertia) <= float(one.inertia) + 1e-3


def test_empty_clusters_are_refilled():
  # Centres placed where no point is nearest: the M-step must move them to points.
  x = jnp.concatenate([jnp.zeros((10, 2)), jnp.ones((10, 2)) * 10,
                       jnp.array([[0.1, 0.0], [10.1, 10.0]])])
  centres = jnp.array([[0.0, 0.0], [100.0, 100.0], [200.0, 200.0]])
  x_sq = jnp.sum(x * x, axis=1)
  labels, min_d = lloyd._assign(x, x_sq, centres)
  new = lloyd._update_centres(x, labels, min_d, 3)
  assert np.all(np.isfinite(new))
  # Both empty centres now sit on data points, on distinct ones.
  for j in (1, 2):
    assert np.min(np.abs(np.asarray(x) - np.asarray(new[j])).sum(1)) == 0
  assert not np.allclose(new[1], new[2])


def test_duplicate_points_and_k_equals_n():
  x = np.repeat(np.eye(3, dtype=np.float32), 4, axis=0)  # 3 distinct points, 12 rows
  res = jdec.kmeans(jax.random.key(0), x, 3, n_init=2)
  np.testing.assert_allclose(float(res.inertia), 0.0, atol=1e-5)
  x_small = np.arange(8, dtype=np.float32).reshape(4, 2)
  res = jdec.kmeans(jax.random.key(0), x_small, 4, n_init=2)
  np.testing.assert_allclose(float(res.inertia), 0.0, atol=1e-5)
  assert sorted(np.asarray(res.labels).tolist()) == [0, 1, 2, 3]


@pytest.mark.parametrize("bad, match", [
    (np.full((5, 2), np.nan), "NaN"),
    (np.ones((5,)), "2-D"),
    (np.ones((3, 2)), "fewer than n_clusters"),
])
def test_bad_input(bad, match):
  with pytest.raises(ValueError, match=match):
    jdec.kmeans(jax.random.key(0), bad, 4)


def test_n_clusters_below_one():
  with pytest.raises(ValueError, match=">= 1"):
    jdec.kmeans(jax.random.key(0), np.ones((5, 2)), 0)


def test_inertia_matches_sklearn_on_mnist_embeddings(real_mnist_dir):
  x = jdec.data.load_mnist(real_mnist_dir)[0][:20_000]  # a third keeps the test short
  model = jdec.models.AutoEncoder(784)
  params = jdec.runs.stack([jdec.models.init_autoencoder(jax.random.key(0), model, 784)])
  params, _ = jdec.pretrain.pretrain_end_to_end(
      jax.random.key(1)[None], jnp.asarray(x), model, params, num_epochs=1, batch_size=256,
      learning_rate=1.0, momentum=0.9, progress=False)
  params = jdec.runs.take(params, 0)
  z = np.asarray(inference.embed(model, params, jnp.asarray(x)))
  ours = jdec.kmeans(jax.random.key(0), z, 10)
  theirs = sklearn.cluster.KMeans(10, n_init=20, random_state=0).fit(z)
  assert abs(float(ours.inertia) - theirs.inertia_) <= 0.01 * theirs.inertia_
