"""The DEC self-training phase: refresh the target, train an interval, repeat."""

import functools
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import tqdm

from jdec import dec, metrics, parallel, train


@functools.partial(jax.jit, static_argnames=("batch_size", "sharding"))
def full_log_q(state: train.TrainState, x: jax.Array, *, batch_size: int = 4096,
               sharding=None):
  """``log q [n, k]`` for every row of ``x [n, d]``, in jitted batches
  (each batch's rows split over ``sharding``'s devices when given)."""
  return train.map_batches(lambda a: state.apply_fn({"params": state.params}, a)[0],
                           x, batch_size, sharding)


@functools.partial(jax.jit, static_argnames=("batch_size", "sharding"))
def _stacked_log_q(state, x, *, batch_size: int = 4096, sharding=None):
  return jax.vmap(lambda s: full_log_q(s, x, batch_size=batch_size, sharding=sharding))(state)


def _log_q(state, x, placement, stacked: bool) -> jax.Array:
  """``log q`` of all rows: ``[n, k]``, or ``[S, n, k]`` for stacked runs.

  Streamed data is sent to the devices in pieces of 65,536 rows.
  """
  fn = functools.partial(_stacked_log_q if stacked else full_log_q,
                         sharding=placement.batch_sharding)
  if not placement.stream:
    return fn(state, x)
  piece = 65_536
  parts = [fn(state, placement.put(x[i:i + piece])) for i in range(0, x.shape[0], piece)]
  return jnp.concatenate(parts, axis=-2)


@jax.jit
def _refresh(log_q: jax.Array):
  """Labels and target P from the whole dataset's log q (``[n, k]`` or ``[S, n, k]``)."""
  q = jnp.exp(log_q)
  target = jax.vmap(dec.target_distribution) if log_q.ndim == 3 else dec.target_distribution
  return jnp.argmax(log_q, axis=-1), target(q)


def run(
    key: jax.Array,
    state: train.TrainState,
    x,
    *,
    batch_size: int,
    update_interval: int,
    tol: float,
    maxiter: int,
    objective: str = "dec",
    kl_weight: float = 0.1,
    augment: train.Augment | None = None,
    initial_labels: np.ndarray | None = None,
    y: np.ndarray | None = None,
    log_fn: Callable[[dict], None] | None = None,
    progress: bool = True,
    placement: parallel.Placement | None = None,
) -> tuple[train.TrainState, list[dict], dict]:
  """Self-trains ``state`` (a ``ClusteringModel``) with DEC's KL objective.

  Every ``update_interval`` steps: q on the whole of ``x``, the target P from
  it, and the fraction of labels changed since the last update (at the first
  update: since ``initial_labels``, the k-means labels, as DEC-keras does);
  stop when it falls below ``tol`` (after the first interval) or after
  ``maxiter`` steps.

  Args:
    key: data-order key, or ``[S]`` keys for S runs trained at once (``state``
      stacked likewise). Each run stops on its own and leaves the stack, so
      later intervals train (and recompile once for) the runs left.
    state: train state whose ``apply_fn(x)`` returns ``(log_q, z, x_hat)``.
    x: ``[n, d]`` data, placed as ``placement.put_data`` places it.
    batch_size, update_interval, tol, maxiter: DEC settings.
    objective, kl_weight, augment: the step's loss and input transformation
      (see ``train.clustering_step``).
    initial_labels: ``[n]`` (``[S, n]`` when stacked) labels before the first
      update; without them the first record's ``delta_label`` is None.
    y: optional ``[n]`` true labels, to score each update.
    log_fn: called with each update's record (with ``"run"`` when stacked).
    progress: show a tqdm bar.
    placement: devices and data placement (default: all devices, data on them).

  Returns:
    The trained state, the per-update history and ``{"labels", "log_q",
    "iterations", "stopped_by"}`` for the final state (``labels [S, n]``,
    ``log_q [S, n, k]`` and lists of S iterations and reasons when stacked).
  """
  placement = placement or parallel.default_placement()
  stacked = key.ndim == 1
  runs = key.shape[0] if stacked else 1
  step_fn = functools.partial(train.clustering_step, objective=objective, kl_weight=kl_weight,
                              augment=augment)
  stepper = train.Stepper(step_fn,
                          block_steps=update_interval, batch_size=batch_size,
                          stacked=stacked, placement=placement,
                          data_axis=(None, 0) if stacked else None)
  # ``order[j]`` is the run at position j of the stack. A run that stops
  # leaves the stack (its final state is kept aside), so the remaining
  # intervals compute only the runs still training; each smaller stack
  # compiles once.
  order = list(range(runs))
  final = [None] * runs  # (state, log_q, labels) of each stopped run
  history, step = [], 0
  last_labels = (None if initial_labels is None
                 else np.asarray(initial_labels).reshape(runs, -1))
  loss = np.full(runs, np.nan)
  iterations, stopped_by = [None] * runs, [None] * runs
  start = time.perf_counter()
  bar = tqdm.tqdm(total=maxiter, desc="DEC", disable=not progress, leave=False)
  while True:
    log_q = _log_q(state, x, placement, stacked)
    labels_dev, p = _refresh(log_q)
    labels = parallel.to_host(labels_dev).reshape(len(order), -1)
    for j, r in enumerate(order):
      delta = None if last_labels is None else float(np.mean(labels[j] != last_labels[j]))
      record = {"phase": "dec", "iteration": step, "delta_label": delta,
                "loss": None if np.isnan(loss[j]) else float(loss[j]),
                "wall_s": time.perf_counter() - start}
      if stacked:
        record["run"] = r
      if y is not None:
        record.update(metrics.scores(y, labels[j]))
      history.append(record)
      if log_fn:
        log_fn(record)
      if step > 0 and delta < tol:
        iterations[r], stopped_by[r] = step, "tol"
      elif step >= maxiter:
        iterations[r], stopped_by[r] = step, "maxiter"
    if not stacked:
      bar.set_postfix(delta=f"{record['delta_label'] or 0:.4f}",
                      **({"acc": f"{record['acc']:.4f}"} if y is not None else {}))
      if stopped_by[0] is not None:
        break
    else:
      keep = [j for j, r in enumerate(order) if stopped_by[r] is None]
      if len(keep) < len(order):
        for j, r in enumerate(order):
          if stopped_by[r] is not None:
            final[r] = (jax.tree.map(lambda a, j=j: a[j], state), log_q[j], labels[j])
        if not keep:
          break
        pick = np.asarray(keep)
        state, key, p = jax.tree.map(lambda a: a[pick], (state, key, p))
        labels, order = labels[pick], [order[j] for j in keep]
    limit = min(update_interval, maxiter - step)
    data = (x, parallel.to_host(p) if placement.stream else p)
    state, loss = stepper(state, data, key, step,
                          np.full(len(order), limit) if stacked else limit)
    bad = [j for j in range(len(order)) if not np.isfinite(loss[j])]
    if bad:
      run_name = f" in run {order[bad[0]]}" if stacked else ""
      raise FloatingPointError(
          f"the DEC loss became {loss[bad[0]]}{run_name} at iteration {step}; "
          "lower dec.learning_rate")
    step += limit
    bar.update(limit)
    last_labels = labels
  bar.close()
  if not stacked:
    return state, history, {"labels": labels[0], "log_q": log_q,
                            "iterations": iterations[0], "stopped_by": stopped_by[0]}
  states, log_qs, labels = zip(*final)
  return (jax.tree.map(lambda *a: jnp.stack(a), *states), history,
          {"labels": np.stack(labels), "log_q": jnp.stack(log_qs),
           "iterations": iterations, "stopped_by": stopped_by})
