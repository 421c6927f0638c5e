"""k-means (Lloyd) in JAX: greedy k-means++ seeding, Lloyd iterations, vmapped restarts.

Follows scikit-learn's ``KMeans`` (Arthur & Vassilvitskii 2007 seeding with
``2 + log(k)`` local trials, Lloyd's algorithm, tolerance relative to the mean
feature variance, empty clusters moved to the farthest points), but every
restart runs at once as one ``vmap``ped, jitted computation.
"""

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jdec import validation


class KMeansResult(NamedTuple):
  """The best restart of a k-means run.

  Attributes:
    centroids: ``[k, d]`` cluster centres.
    labels: ``[n]`` index of the nearest centre for every row.
    inertia: ``[]`` sum of squared distances of rows to their centre.
    n_iter: ``[]`` Lloyd iterations the kept restart ran.
  """

  centroids: jax.Array
  labels: jax.Array
  inertia: jax.Array
  n_iter: jax.Array


def _sq_dists(x: jax.Array, x_sq: jax.Array, c: jax.Array) -> jax.Array:
  """``[n, m]`` squared distances by the matmul expansion, clipped at zero."""
  c_sq = jnp.sum(c * c, axis=1)
  d = x_sq[:, None] - 2.0 * (x @ c.T) + c_sq[None, :]
  return jnp.maximum(d, 0.0)


def kmeans_plusplus(
    key: jax.Array, x: jax.Array, n_clusters: int, n_local_trials: int | None = None
) -> jax.Array:
  """Greedy k-means++ seeding.

  Args:
    key: PRNG key.
    x: data ``[n, d]``.
    n_clusters: ``k``.
    n_local_trials: candidates drawn per centre; ``2 + floor(log k)`` by
      default, as in scikit-learn.

  Returns:
    ``[k, d]`` initial centres, each a row of ``x``.
  """
  n = x.shape[0]
  if n_local_trials is None:
    n_local_trials = 2 + int(math.log(n_clusters))
  x_sq = jnp.sum(x * x, axis=1)
  first_key, trials_key = jax.random.split(key)
  first = jax.random.randint(first_key, (), 0, n)
  centers = jnp.zeros((n_clusters, x.shape[1]), x.dtype).at[0].set(x[first])
  closest = _sq_dists(x, x_sq, x[first][None])[:, 0]

  def add_centre(i, carry):
    centers, closest = carry
    total = jnp.sum(closest)
    probs = jnp.where(total > 0, closest / jnp.where(total > 0, total, 1.0), 1.0 / n)
    candidates = jax.random.choice(
        jax.random.fold_in(trials_key, i), n, (n_local_trials,), p=probs
    )
    cand_closest = jnp.minimum(closest[:, None], _sq_dists(x, x_sq, x[candidates]))
    best = jnp.argmin(jnp.sum(cand_closest, axis=0))
    centers = centers.at[i].set(x[candidates[best]])
    return centers, cand_closest[:, best]

  centers, _ = jax.lax.fori_loop(1, n_clusters, add_centre, (centers, closest))
  return centers


def _assign(x, x_sq, centers):
  d = _sq_dists(x, x_sq, centers)
  labels = jnp.argmin(d, axis=1)
  return labels, jnp.take_along_axis(d, labels[:, None], axis=1)[:, 0]


def _update_centres(x, labels, min_d, n_clusters):
  """M-step; an empty cluster takes one of the points farthest from its centre."""
  onehot = jax.nn.one_hot(labels, n_clusters, dtype=x.dtype)
  counts = jnp.sum(onehot, axis=0)
  means = (onehot.T @ x) / jnp.maximum(counts, 1.0)[:, None]
  empty = counts == 0
  _, farthest = jax.lax.top_k(min_d, n_clusters)
  rank = jnp.clip(jnp.cumsum(empty) - 1, 0, n_clusters - 1)
  return jnp.where(empty[:, None], x[farthest[rank]], means)


def _lloyd(x, x_sq, centers, max_iter, tol_abs):
  """Lloyd iterations until labels stop changing or the centre shift <= tol."""
  n_clusters = centers.shape[0]
  labels, min_d = _assign(x, x_sq, centers)

  def cond(carry):
    _, _, _, it, done = carry
    return jnp.logical_and(it < max_iter, jnp.logical_not(done))

  def body(carry):
    centers, labels, min_d, it, _ = carry
    new_centers = _update_centres(x, labels, min_d, n_clusters)
    new_labels, new_min_d = _assign(x, x_sq, new_centers)
    shift = jnp.sum((new_centers - centers) ** 2)
    done = jnp.logical_or(jnp.all(new_labels == labels), shift <= tol_abs)
    return new_centers, new_labels, new_min_d, it + 1, done

  init = (centers, labels, min_d, jnp.zeros((), jnp.int32), jnp.zeros((), bool))
  centers, labels, min_d, n_iter, _ = jax.lax.while_loop(cond, body, init)
  return centers, labels, jnp.sum(min_d), n_iter


@functools.partial(jax.jit, static_argnames=("n_clusters", "n_init", "max_iter"))
def _kmeans(key, x, tol, *, n_clusters, n_init, max_iter):
  x_sq = jnp.sum(x * x, axis=1)
  tol_abs = jnp.mean(jnp.var(x, axis=0)) * tol

  def one_restart(key):
    centers = kmeans_plusplus(key, x, n_clusters)
    return _lloyd(x, x_sq, centers, max_iter, tol_abs)

  centers, labels, inertia, n_iter = jax.vmap(one_restart)(
      jax.random.split(key, n_init)
  )
  best = jnp.argmin(inertia)
  return KMeansResult(centers[best], labels[best], inertia[best], n_iter[best])


def kmeans(
    key: jax.Array,
    x: jax.Array,
    n_clusters: int,
    n_init: int = 20,
    max_iter: int = 300,
    tol: float = 1e-4,
) -> KMeansResult:
  """k-means with ``n_init`` k-means++ restarts run as one vmapped program.

  Args:
    key: PRNG key; restart ``r`` uses ``jax.random.split(key, n_init)[r]``.
    x: data ``[n, d]``, finite, with ``n >= n_clusters``.
    n_clusters: ``k >= 1``.
    n_init: number of restarts; the one with the lowest inertia is kept.
    max_iter: Lloyd iterations per restart at most.
    tol: convergence tolerance on the squared centre shift, relative to the
      mean per-feature variance of ``x`` (scikit-learn's convention).

  Returns:
    A ``KMeansResult`` with ``centroids [k, d]``, ``labels [n]``,
    ``inertia []`` and ``n_iter []``.
  """
  if not isinstance(x, jax.core.Tracer):
    x = validation.check_data(x, n_clusters=n_clusters, name="x")
  if n_init < 1 or max_iter < 1:
    raise ValueError(f"n_init and max_iter must be >= 1, got {n_init} and {max_iter}")
  x = jnp.asarray(x)
  return _kmeans(key, x, jnp.asarray(tol, x.dtype), n_clusters=int(n_clusters),
                 n_init=int(n_init), max_iter=int(max_iter))


def predict(centroids: jax.Array, x: jax.Array) -> np.ndarray:
  """Index of the nearest centre ``[n]`` for rows of ``x [n, d]``."""
  x = jnp.asarray(x)
  return np.asarray(_assign(x, jnp.sum(x * x, axis=1), jnp.asarray(centroids))[0])
