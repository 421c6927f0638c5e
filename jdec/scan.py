"""One run's steps in one ``jax.lax.scan``, with the data already placed.

A step is ``step(state, batch, key) -> (state, metrics)`` (see ``jdec.train``).
``scan_steps`` runs many of them inside one scan with the data on the device;
``run_steps_reference`` is the readable per-step loop that must agree with it.
Both draw batches from ``batch_indices``, a pure function of the key and the
global step number, so a run is reproducible from its step count alone.
``jdec.runs`` maps these functions over a stack of runs (seeds).
"""

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp

from jdec.train import TrainState

StepFn = Callable[[TrainState, Any, jax.Array], tuple[TrainState, dict]]


def batch_indices(
    key: jax.Array, step0: jax.Array, *, num_steps: int, n: int, batch_size: int
) -> jax.Array:
  """Row indices ``[num_steps, batch_size]`` for steps ``step0 ... step0+num_steps-1``.

  Step ``t`` takes the ``t % (n // batch_size)``-th batch of the permutation
  ``jax.random.permutation(fold_in(key, epoch), n)`` with
  ``epoch = t // (n // batch_size)``; the ``n % batch_size`` rows left over
  change from epoch to epoch.
  """
  steps_per_epoch = n // batch_size
  span = -(-num_steps // steps_per_epoch) + 1
  epoch0 = step0 // steps_per_epoch

  def epoch_order(e):
    return jax.random.permutation(jax.random.fold_in(key, e), n)[
        : steps_per_epoch * batch_size
    ]

  flat = jax.vmap(epoch_order)(epoch0 + jnp.arange(span)).reshape(-1)
  start = (step0 % steps_per_epoch) * batch_size
  return jax.lax.dynamic_slice(flat, (start,), (num_steps * batch_size,)).reshape(
      num_steps, batch_size
  )


def scan_steps(
    step_fn: StepFn,
    state: TrainState,
    data: Any,
    key: jax.Array,
    step0: jax.Array,
    limit: jax.Array,
    *,
    num_steps: int,
    batch_size: int,
    batch_sharding: jax.sharding.Sharding | None = None,
) -> tuple[TrainState, dict]:
  """Runs ``step_fn`` for global steps ``step0 ... step0+num_steps-1`` in one scan.

  Args:
    step_fn: the train step.
    state: the train state (donate it at the jit call site).
    data: pytree of device arrays with ``n`` rows each (e.g. ``x`` or ``(x, p)``);
      a batch is every leaf indexed by the same rows.
    key: the run's data stream key: ``fold_in(key, 0)`` orders the batches and
      ``fold_in(fold_in(key, 1), t)`` is step ``t``'s key.
    step0: first global step (a traced int, so changing it never recompiles).
    limit: number of steps to actually take, ``<= num_steps``; later steps
      leave the state unchanged (so a last, shorter interval needs no
      recompile, and runs of a stack may take different numbers of steps).
    num_steps: static scan length.
    batch_size: static batch size.
    batch_sharding: where each batch lives, e.g. split over a mesh's data
      axis for data parallelism; ``None`` leaves placement to the compiler.

  Returns:
    The new state and the metrics stacked over steps, ``[num_steps]`` each
    (entries past ``limit`` are zero).
  """
  n = jax.tree.leaves(data)[0].shape[0]
  idx = batch_indices(jax.random.fold_in(key, 0), step0, num_steps=num_steps, n=n,
                      batch_size=batch_size)
  return _scan(step_fn, state, lambda rows: jax.tree.map(lambda a: a[rows], data), idx,
               key, step0, limit, batch_sharding)


def scan_batches(
    step_fn: StepFn,
    state: TrainState,
    batches: Any,
    key: jax.Array,
    step0: jax.Array,
    limit: jax.Array,
    *,
    batch_sharding: jax.sharding.Sharding | None = None,
) -> tuple[TrainState, dict]:
  """``scan_steps`` over batches gathered beforehand (``[num_steps, batch, ...]``
  leaves), for data that stays on the host and is streamed to the device."""
  return _scan(step_fn, state, lambda b: b, batches, key, step0, limit, batch_sharding)


def _scan(step_fn, state, make_batch, xs, key, step0, limit, batch_sharding):
  step_key = jax.random.fold_in(key, 1)
  num_steps = jax.tree.leaves(xs)[0].shape[0]

  def body(state, inputs):
    i, batch_source = inputs
    t = step0 + i
    batch = make_batch(batch_source)
    if batch_sharding is not None:
      batch = jax.lax.with_sharding_constraint(batch, batch_sharding)

    def take(state):
      return step_fn(state, batch, jax.random.fold_in(step_key, t))

    def skip(state):
      _, metrics = jax.eval_shape(take, state)
      return state, jax.tree.map(lambda m: jnp.zeros(m.shape, m.dtype), metrics)

    return jax.lax.cond(i < limit, take, skip, state)

  return jax.lax.scan(body, state, (jnp.arange(num_steps), xs))


def run_steps_reference(
    step_fn: StepFn, state, data, key, step0: int, num_steps: int, batch_size: int
) -> tuple[TrainState, list[dict]]:
  """The per-step loop that ``scan_steps`` must reproduce (used by the tests)."""
  n = jax.tree.leaves(data)[0].shape[0]
  order_key, step_key = jax.random.fold_in(key, 0), jax.random.fold_in(key, 1)
  idx = batch_indices(order_key, step0, num_steps=num_steps, n=n, batch_size=batch_size)
  step = jax.jit(step_fn)
  history = []
  for i in range(num_steps):
    batch = jax.tree.map(lambda a: a[idx[i]], data)
    state, metrics = step(state, batch, jax.random.fold_in(step_key, step0 + i))
    history.append(metrics)
  return state, history


def map_batches(fn: Callable, x: jax.Array, batch_size: int = 4096,
                sharding: jax.sharding.Sharding | None = None):
  """Applies ``fn([b, ...]) -> pytree of [b, ...]`` to all rows of ``x`` in batches.

  ``sharding`` splits each batch's rows over devices (data parallelism).
  """
  n = x.shape[0]
  b = min(batch_size, n)
  m = n // b

  def chunk(rows):
    if sharding is not None:
      rows = jax.lax.with_sharding_constraint(rows, sharding)
    return fn(rows)

  head = jax.lax.map(chunk, x[: m * b].reshape(m, b, *x.shape[1:]))
  head = jax.tree.map(lambda a: a.reshape(m * b, *a.shape[2:]), head)
  if m * b == n:
    return head
  return jax.tree.map(lambda a, t: jnp.concatenate([a, t]), head, chunk(x[m * b:]))


def compile_scan(
    step_fn: StepFn,
    *,
    num_steps: int | None,
    batch_size: int | None,
    batch_sharding: jax.sharding.Sharding | None = None,
):
  """``scan_steps`` of one run for a fixed step and shape, jitted with the state donated.

  Args:
    step_fn, num_steps, batch_size, batch_sharding: as for ``scan_steps``.
      ``num_steps=None`` compiles ``scan_batches`` instead (streamed data; the
      length is that of the batches passed).

  Returns:
    ``f(state, data, key, step0, limit) -> (state, metrics)``.
  """
  return jax.jit(scan_fn(step_fn, num_steps=num_steps, batch_size=batch_size,
                         batch_sharding=batch_sharding), donate_argnums=0)


def scan_fn(step_fn: StepFn, *, num_steps: int | None, batch_size: int | None,
            batch_sharding: jax.sharding.Sharding | None = None):
  """``compile_scan``'s function before ``jit``: ``jdec.runs`` maps it over runs."""
  if num_steps is None:
    return functools.partial(scan_batches, step_fn, batch_sharding=batch_sharding)
  return functools.partial(scan_steps, step_fn, num_steps=num_steps,
                           batch_size=batch_size, batch_sharding=batch_sharding)
