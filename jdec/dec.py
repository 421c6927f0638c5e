"""The DEC maths: Student-t soft assignment, auxiliary target and KL loss.

All functions are pure, jit-able and work on any float dtype. Shapes use
``n`` for examples, ``k`` for clusters and ``d`` for embedding dimensions.

Reference: J. Xie, R. Girshick, A. Farhadi, "Unsupervised Deep Embedding for
Clustering Analysis", ICML 2016, equations (1)-(3).
"""

import jax
import jax.numpy as jnp


def squared_distances(z: jax.Array, centroids: jax.Array) -> jax.Array:
  """Squared Euclidean distances between rows of ``z`` and ``centroids``.

  Args:
    z: embeddings ``[n, d]``.
    centroids: cluster centres ``[k, d]``.

  Returns:
    ``[n, k]`` array of ``||z_i - mu_j||^2``, computed from differences (never
    negative, exact for far points, unlike the ``|a|^2 - 2ab + |b|^2`` form).
  """
  diff = z[:, None, :] - centroids[None, :, :]
  return jnp.sum(diff * diff, axis=-1)


def log_squared_distances(z: jax.Array, centroids: jax.Array) -> jax.Array:
  """``log ||z_i - mu_j||^2 [n, k]``, finite wherever the distance is not zero.

  Each pair's difference is divided by the pair's largest magnitude before
  squaring, so neither the difference nor its square overflows, even for
  inputs near the dtype's largest value; a zero distance gives ``-inf`` (with a
  zero gradient, not NaN).

  Args:
    z: embeddings ``[n, d]``.
    centroids: cluster centres ``[k, d]``.
  """
  scale = jnp.maximum(jnp.max(jnp.abs(z), axis=1)[:, None],
                      jnp.max(jnp.abs(centroids), axis=1)[None, :])  # [n, k]
  # Above 1, a sixteenth of it: the reciprocal (XLA may divide by multiplying with
  # it) stays a normal number even for the largest floats, which CPUs would flush.
  scale = jnp.where(scale > 1.0, scale * 0.0625, jnp.where(scale > 0, scale, 1.0))
  scale = jax.lax.stop_gradient(scale)
  diff = z[:, None, :] / scale[..., None] - centroids[None, :, :] / scale[..., None]
  ss = jnp.sum(diff * diff, axis=-1)  # <= 4 * 256 d: no overflow
  positive = ss > 0
  safe = jnp.where(positive, ss, 1.0)
  return jnp.where(positive, 2.0 * jnp.log(scale) + jnp.log(safe), -jnp.inf)


def log_soft_assignment(
    z: jax.Array, centroids: jax.Array, alpha: float = 1.0
) -> jax.Array:
  """Log of the Student-t soft assignment, ``log q [n, k]`` (paper eq. 1).

  ``q_ij = (1 + ||z_i - mu_j||^2 / alpha)^(-(alpha+1)/2) / sum_j' (...)``.
  The kernel is evaluated in log space from overflow-safe log distances and
  normalised against each row's largest kernel, so the result is finite for
  any finite input, even when every kernel value would underflow to zero in
  linear space or the distances exceed the dtype's range.

  Args:
    z: embeddings ``[n, d]``.
    centroids: cluster centres ``[k, d]``.
    alpha: degrees of freedom of the Student-t kernel (the paper uses 1).

  Returns:
    ``[n, k]`` log-probabilities; ``exp`` of each row sums to one.
  """
  log_d2 = log_squared_distances(z, centroids)
  # log1p(d2 / alpha) = log(1 + exp(log d2 - log alpha)), finite even where d2 is not.
  log_kernel = -0.5 * (alpha + 1.0) * jnp.logaddexp(0.0, log_d2 - jnp.log(alpha))
  # Normalise relative to the row's largest kernel: far from every centre the
  # kernels are large negative numbers, and subtracting a large logsumexp from
  # them would lose the digits that tell the clusters apart.
  shifted = log_kernel - jax.lax.stop_gradient(jnp.max(log_kernel, axis=1, keepdims=True))
  return shifted - jnp.log(jnp.sum(jnp.exp(shifted), axis=1, keepdims=True))


def soft_assignment(
    z: jax.Array, centroids: jax.Array, alpha: float = 1.0
) -> jax.Array:
  """Student-t soft assignment ``q [n, k]`` of embeddings to centres (eq. 1).

  Args:
    z: embeddings ``[n, d]``.
    centroids: cluster centres ``[k, d]``.
    alpha: degrees of freedom of the Student-t kernel (the paper uses 1).

  Returns:
    ``[n, k]`` probabilities, rows summing to one; the nearest centre gets
    the largest value.
  """
  return jnp.exp(log_soft_assignment(z, centroids, alpha))


def target_distribution(q: jax.Array) -> jax.Array:
  """Auxiliary target ``p [n, k]`` (paper eq. 3).

  ``p_ij = (q_ij^2 / f_j) / sum_j' (q_ij'^2 / f_j')`` with cluster frequencies
  ``f_j = sum_i q_ij``. Squaring sharpens each row; dividing by ``f_j``
  keeps large clusters from swallowing the rest. ``f`` is taken over the rows
  passed in, so pass the whole dataset as DEC does.

  Args:
    q: soft assignments ``[n, k]``, rows summing to one.

  Returns:
    ``[n, k]`` target probabilities, rows summing to one.
  """
  tiny = jnp.finfo(q.dtype).tiny
  f = jnp.sum(q, axis=0, keepdims=True)
  log_weight = 2.0 * jnp.log(jnp.maximum(q, tiny)) - jnp.log(jnp.maximum(f, tiny))
  log_weight = jnp.where(q > 0, log_weight, -jnp.inf)
  # A row whose q underflowed everywhere but one entry still normalises fine;
  # logsumexp of all -inf cannot happen because rows of q sum to one.
  return jax.nn.softmax(log_weight, axis=1)


def kl_loss_from_log(p: jax.Array, log_q: jax.Array) -> jax.Array:
  """Per-example ``KL(P || Q)`` from ``log q``; the stable form used in training.

  Args:
    p: target probabilities ``[n, k]``; treated as a constant (no gradient).
    log_q: log soft assignments ``[n, k]``.

  Returns:
    ``[n]`` values ``sum_j p_ij (log p_ij - log q_ij)``, with ``0 log 0 = 0``.
  """
  p = jax.lax.stop_gradient(p)
  return jnp.sum(jax.scipy.special.xlogy(p, p) - p * log_q, axis=1)


def kl_loss(p: jax.Array, q: jax.Array) -> jax.Array:
  """Per-example ``KL(P || Q)`` (paper eq. 2); the gradient flows through q only.

  Zero entries are safe: ``p_ij = 0`` contributes nothing (``0 log 0 = 0``)
  and ``q_ij`` is clipped below at the dtype's smallest normal number, so the
  loss stays finite where ``q`` underflowed.

  Args:
    p: target probabilities ``[n, k]``; treated as a constant.
    q: soft assignments ``[n, k]``.

  Returns:
    ``[n]`` non-negative losses; the caller reduces (DEC uses the mean).
  """
  log_q = jnp.log(jnp.maximum(q, jnp.finfo(q.dtype).tiny))
  return kl_loss_from_log(p, log_q)
