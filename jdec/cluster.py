"""The DEC self-training phase: refresh the target, train an interval, repeat."""

import functools
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import tqdm

from jdec import dec, metrics, train


@functools.partial(jax.jit, static_argnames=("batch_size",))
def full_log_q(state: train.TrainState, x: jax.Array, *, batch_size: int = 4096):
  """``log q [n, k]`` for every row of ``x [n, d]``, in jitted batches."""
  return train.map_batches(lambda a: state.apply_fn({"params": state.params}, a)[0],
                           x, batch_size)


@jax.jit
def _refresh(log_q: jax.Array):
  """Labels and target P from the whole dataset's log q."""
  q = jnp.exp(log_q)
  return jnp.argmax(log_q, axis=1), dec.target_distribution(q)


def run(
    key: jax.Array,
    state: train.TrainState,
    x: jax.Array,
    *,
    batch_size: int,
    update_interval: int,
    tol: float,
    maxiter: int,
    gamma: float = 0.0,
    y: np.ndarray | None = None,
    log_fn: Callable[[dict], None] | None = None,
    progress: bool = True,
) -> tuple[train.TrainState, list[dict], dict]:
  """Self-trains ``state`` (a ``ClusteringModel``) with DEC's KL objective.

  Every ``update_interval`` steps: q on the whole of ``x``, the target P from
  it, and the fraction of labels changed since the last update; stop when it
  falls below ``tol`` (after the first update) or after ``maxiter`` steps.

  Args:
    key: data-order key.
    state: train state whose ``apply_fn(x)`` returns ``(log_q, z, x_hat)``.
    x: ``[n, d]`` device array.
    batch_size, update_interval, tol, maxiter: DEC settings.
    gamma: weight of the KL term against reconstruction (IDEC); 0 for DEC.
    y: optional ``[n]`` true labels, to score each update.
    log_fn: called with each update's record.
    progress: show a tqdm bar.

  Returns:
    The trained state, the per-update history and ``{"labels", "log_q",
    "iterations", "stopped_by"}`` for the final state.
  """
  step_fn = functools.partial(train.clustering_step, gamma=gamma)
  scan = train.compile_scan(step_fn, num_steps=update_interval, batch_size=batch_size)
  history, last_labels, step, loss = [], None, 0, None
  start = time.perf_counter()
  bar = tqdm.tqdm(total=maxiter, desc="DEC", disable=not progress, leave=False)
  while True:
    log_q = full_log_q(state, x)
    labels_dev, p = _refresh(log_q)
    labels = np.asarray(labels_dev)
    delta = 1.0 if last_labels is None else float(np.mean(labels != last_labels))
    record = {"phase": "dec", "iteration": step, "delta_label": delta, "loss": loss,
              "wall_s": time.perf_counter() - start}
    if y is not None:
      record.update(metrics.scores(y, labels))
    history.append(record)
    if log_fn:
      log_fn(record)
    bar.set_postfix(delta=f"{delta:.4f}", **({"acc": f"{record['acc']:.4f}"} if y is not None else {}))
    if last_labels is not None and delta < tol:
      stopped_by = "tol"
      break
    if step >= maxiter:
      stopped_by = "maxiter"
      break
    limit = min(update_interval, maxiter - step)
    state, m = scan(state, (x, p), key, jnp.asarray(step), jnp.asarray(limit))
    loss = float(jnp.sum(m["loss"]) / limit)
    if not np.isfinite(loss):
      raise FloatingPointError(
          f"the DEC loss became {loss} at iteration {step}; lower dec.learning_rate"
      )
    step += limit
    bar.update(limit)
    last_labels = labels
  bar.close()
  return state, history, {
      "labels": labels, "log_q": log_q, "iterations": step, "stopped_by": stopped_by,
  }
