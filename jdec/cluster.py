"""The DEC self-training phase: refresh the target, train an interval, repeat."""

import functools
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import tqdm
from absl import logging

from jdec import checkpoint, dec, metrics, parallel, runs, scan, train


@functools.partial(jax.jit, static_argnames=("batch_size", "sharding"))
def full_log_q(state: train.TrainState, x: jax.Array, *, batch_size: int = 4096,
               sharding=None):
  """``log q [n, k]`` for every row of ``x [n, d]``, in jitted batches
  (each batch's rows split over ``sharding``'s devices when given)."""
  return scan.map_batches(lambda a: state.apply_fn({"params": state.params}, a)[0],
                          x, batch_size, sharding)


@functools.partial(jax.jit, static_argnames=("batch_size", "sharding"))
def _runs_log_q(state, x, *, batch_size: int = 4096, sharding=None):
  return runs.vmap(lambda s, x_: full_log_q(s, x_, batch_size=batch_size, sharding=sharding),
                   in_axes=(0, None))(state, x)


def _log_q(state, x, placement) -> jax.Array:
  """``log q [S, n, k]`` of all rows for every run of ``state``.

  Streamed data is sent to the devices in pieces of 65,536 rows.
  """
  fn = functools.partial(_runs_log_q, sharding=placement.batch_sharding)
  if not placement.stream:
    return fn(state, x)
  piece = 65_536
  parts = [fn(state, placement.put(x[i:i + piece])) for i in range(0, x.shape[0], piece)]
  return jnp.concatenate(parts, axis=-2)


@jax.jit
def _refresh(log_q: jax.Array):
  """Labels ``[S, n]`` and target P ``[S, n, k]`` from every run's log q of
  the whole dataset, ``[S, n, k]``."""
  return jnp.argmax(log_q, axis=-1), runs.vmap(dec.target_distribution, (0,))(jnp.exp(log_q))


def _warn_if_emptied(name: str | None, step: int, sizes: np.ndarray, was_empty: set) -> None:
  """Logs a warning naming the clusters that have no rows now but had some before."""
  emptied = sorted(set(np.flatnonzero(sizes == 0).tolist()) - was_empty)
  if not emptied:
    return
  where = f" of {name}" if name else ""
  clusters = f"cluster{'s' if len(emptied) > 1 else ''} {', '.join(map(str, emptied))}{where}"
  verb = "have" if len(emptied) > 1 else "has"
  in_use = f"{int(np.count_nonzero(sizes))} of {sizes.size} clusters in use"
  if step == 0:
    logging.warning("%s %s no rows at the start of DEC (%s): no row is nearest to its "
                    "centre from k-means", clusters, verb, in_use)
    return
  logging.warning("DEC update at iteration %d: %s now %s no rows (%s). DEC can empty or "
                  "merge clusters; if it matters, try another seed, more pretraining or a "
                  "lower dec.learning_rate", step, clusters, verb, in_use)


def _snapshot(state, order: list, final: list, last_labels, count: int, n: int,
              k: int) -> dict:
  """What a DEC checkpoint holds, on the host, with all ``count`` runs in order:
  the state of each (the running one or the final one), its latest labels, and
  the final log q of the stopped runs (zeros for the others)."""
  host = lambda tree: jax.tree.map(lambda a: np.asarray(parallel.to_host(a)), tree)
  running = host(checkpoint.savable(state)) if order else None
  states, labels, log_q = [], [], []
  for r in range(count):
    if r in order:
      j = order.index(r)
      states.append(runs.take(running, j))
      labels.append(last_labels[j])
      log_q.append(np.zeros((n, k), np.float32))
    else:
      s, log_q_r, labels_r = final[r]
      states.append(host(checkpoint.savable(s)))
      labels.append(labels_r)
      log_q.append(log_q_r)
  return {"state": jax.tree.map(lambda *a: np.stack(a), *states),
          "labels": np.stack(labels).astype(np.int32), "log_q": np.stack(log_q)}


def run(
    keys: jax.Array,
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
    names: list[str] | None = None,
    checkpoints: checkpoint.Progress | None = None,
) -> tuple[train.TrainState, list[dict], dict]:
  """Self-trains S runs of a ``ClusteringModel`` with DEC's objective.

  Every ``update_interval`` steps: q on the whole of ``x``, the target P from
  it, and the fraction of labels changed since the last update (at the first
  update: since ``initial_labels``, the k-means labels, as DEC-keras does);
  stop when it falls below ``tol`` (after the first interval) or after
  ``maxiter`` steps. Each update's record holds the size of every cluster
  (``"cluster_sizes"``); a cluster that loses its last row is logged as a
  warning (DEC can empty or merge clusters).

  Args:
    keys: ``[S]`` data-order keys, one per run (one run is a stack of one;
      see ``jdec.runs``). Each run stops on its own and leaves the stack, so
      later intervals train (and recompile once for) the runs left.
    state: the runs' train states, stacked ``[S, ...]``, whose
      ``apply_fn(x)`` returns ``(log_q, z, x_hat)``.
    x: ``[n, d]`` data, placed as ``placement.put_data`` places it.
    batch_size, update_interval, tol, maxiter: DEC settings.
    objective, kl_weight, augment: the step's loss and input transformation
      (see ``train.clustering_step``).
    initial_labels: ``[S, n]`` labels before the first
      update; without them the first record's ``delta_label`` is None.
    y: optional ``[n]`` true labels, to score each update.
    log_fn: called with each update's record of each run (``"run"``: its index).
    progress: show a tqdm bar.
    placement: devices and data placement (default: all devices, data on them).
    names: how messages name each run (default ``"run <i>"``; ``jdec.fit``
      passes ``"seed <s>"``).
    checkpoints: saves every run's state, the iteration, the last labels and
      the history every ``checkpoints.every`` updates, and once more when
      every run has stopped; when it holds one, training continues from it
      (P is recomputed from the states) to the result of an uninterrupted
      run. Records' ``wall_s`` then include the earlier runs' seconds.

  Returns:
    The trained states ``[S, ...]``, the per-update history and ``{"labels"
    [S, n], "log_q" [S, n, k], "iterations", "stopped_by"}`` of the final
    states (lists of S iterations and reasons).
  """
  placement = placement or parallel.default_placement()
  count = keys.shape[0]
  step_fn = functools.partial(train.clustering_step, objective=objective, kl_weight=kl_weight,
                              augment=augment)
  stepper = runs.Stepper(step_fn, block_steps=update_interval, batch_size=batch_size,
                         placement=placement, data_axis=(None, 0))
  # ``order[j]`` is the run at position j of the stack. A run that stops
  # leaves the stack (its final state is kept aside), so the remaining
  # intervals compute only the runs still training; each smaller stack
  # compiles once.
  order = list(range(count))
  final = [None] * count  # (state, log_q, labels) of each stopped run
  history, step = [], 0
  last_labels = (None if initial_labels is None
                 else np.asarray(initial_labels).reshape(count, -1))
  loss = np.full(count, np.nan)
  iterations, stopped_by = [None] * count, [None] * count
  names = names or [f"run {r}" for r in range(count)]
  empty = [set() for _ in range(count)]  # each run's empty clusters at the last update
  rounds, done, wall_s = 0, False, 0.0  # rounds: updates, each followed by training
  n, k = x.shape[0], state.params["centroids"].shape[-2]
  restored = None
  if checkpoints is not None:
    template = {"state": checkpoint.savable(state), "labels": np.zeros((count, n), np.int32),
                "log_q": np.zeros((count, n, k), np.float32)}
    restored = checkpoints.restore_tree(template, fit_key=("state", "params"))
  if restored is not None:
    rounds, tree, info = restored
    whole = state.replace(**tree["state"])
    order, step, history = info["order"], info["step"], info["history"]
    iterations, stopped_by, done = info["iterations"], info["stopped_by"], info["done"]
    empty, wall_s = [set(e) for e in info["empty"]], info["wall_s"]
    for r in range(count):
      if r not in order:
        final[r] = (runs.take(whole, r), tree["log_q"][r], tree["labels"][r])
    pick = np.asarray(order, np.int32)
    state, keys = jax.tree.map(lambda a: a[pick], (whole, keys))
    last_labels, loss = tree["labels"][pick], np.asarray(info["loss"], np.float64)

  def save(final_save: bool):
    if checkpoints is None or not (final_save or checkpoints.due(rounds)):
      return
    snapshot = _snapshot(state, order, final, last_labels, count, n, k)
    checkpoints.save_tree(rounds, snapshot, {
        "order": order, "step": step, "history": history, "iterations": iterations,
        "stopped_by": stopped_by, "done": final_save, "loss": loss.tolist(),
        "empty": [sorted(e) for e in empty], "wall_s": time.perf_counter() - start},
        final=final_save)

  start = time.perf_counter() - wall_s
  bar = tqdm.tqdm(total=maxiter, initial=step, desc="DEC", disable=not progress, leave=False)
  try:
    while not done:
      log_q = _log_q(state, x, placement)
      labels_dev, p = _refresh(log_q)
      labels = parallel.to_host(labels_dev).reshape(len(order), -1)
      for j, r in enumerate(order):
        delta = None if last_labels is None else float(np.mean(labels[j] != last_labels[j]))
        sizes = np.bincount(labels[j], minlength=log_q.shape[-1])
        _warn_if_emptied(names[r] if count > 1 else None, step, sizes, empty[r])
        empty[r] = set(np.flatnonzero(sizes == 0).tolist())
        record = {"phase": "dec", "iteration": step, "run": r, "delta_label": delta,
                  "loss": None if np.isnan(loss[j]) else float(loss[j]),
                  "cluster_sizes": sizes.tolist(), "wall_s": time.perf_counter() - start}
        if y is not None:
          record.update(metrics.scores(y, labels[j]))
        history.append(record)
        if log_fn:
          log_fn(record)
        if step > 0 and delta < tol:
          iterations[r], stopped_by[r] = step, "tol"
        elif step >= maxiter:
          iterations[r], stopped_by[r] = step, "maxiter"
      latest = history[-len(order):]
      bar.set_postfix(delta=f"{max(h['delta_label'] or 0 for h in latest):.4f}",
                      **({"acc": f"{np.mean([h['acc'] for h in latest]):.4f}"}
                         if y is not None else {}),
                      **({"runs": len(order)} if count > 1 else {}))
      keep = [j for j, r in enumerate(order) if stopped_by[r] is None]
      if len(keep) < len(order):
        for j, r in enumerate(order):
          if stopped_by[r] is not None:
            # On the host now, by every process: log q is sharded over the devices.
            final[r] = (runs.take(state, j), parallel.to_host(log_q[j]), labels[j])
        if not keep:
          rounds += 1
          order, done = [], True
          save(final_save=True)
          break
        pick = np.asarray(keep)
        state, keys, p = jax.tree.map(lambda a: a[pick], (state, keys, p))
        labels, order = labels[pick], [order[j] for j in keep]
        loss = loss[pick]
      limit = min(update_interval, maxiter - step)
      data = (x, parallel.to_host(p) if placement.stream else p)
      state, loss = stepper(state, data, keys, step, np.full(len(order), limit))
      bad = [j for j in range(len(order)) if not np.isfinite(loss[j])]
      if bad:
        run_name = f" in {names[order[bad[0]]]}" if count > 1 else ""
        raise FloatingPointError(
            f"the DEC loss became {loss[bad[0]]}{run_name} at iteration {step}; "
            "lower dec.learning_rate")
      step += limit
      bar.update(limit)
      last_labels = labels
      rounds += 1
      save(final_save=False)
  finally:
    if checkpoints is not None:
      checkpoints.close()
  bar.close()
  states, log_qs, labels = zip(*final)
  return (runs.stack(states), history,
          {"labels": np.stack(labels), "log_q": np.stack(log_qs),
           "iterations": iterations, "stopped_by": stopped_by})
