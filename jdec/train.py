"""Train steps and the scan driver shared by every phase.

A step is ``step(state, batch, key) -> (state, metrics)``. ``scan_steps`` runs
many of them inside one ``jax.lax.scan`` with the data already on the device;
``run_steps_reference`` is the readable per-step loop that must agree with it.
Both draw batches from ``batch_indices``, a pure function of the key and the
global step number, so a run is reproducible from its step count alone.
"""

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax
from flax.training import train_state

from jdec import dec

TrainState = train_state.TrainState
StepFn = Callable[[TrainState, Any, jax.Array], tuple[TrainState, dict]]


def create_state(apply_fn, params, tx: optax.GradientTransformation) -> TrainState:
  """``TrainState.create`` with a typed int32 step, so the first call of a
  jitted step and later ones see the same input types (no recompile)."""
  state = TrainState.create(apply_fn=apply_fn, params=params, tx=tx)
  return state.replace(step=jnp.zeros((), jnp.int32))


def sgd(learning_rate, momentum: float) -> optax.GradientTransformation:
  """SGD with (heavy-ball) momentum, as in Keras and Caffe."""
  return optax.sgd(learning_rate, momentum=momentum or None)


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
      leave the state unchanged (so a last, shorter interval needs no recompile).
    num_steps: static scan length.
    batch_size: static batch size.

  Returns:
    The new state and the metrics stacked over steps, ``[num_steps]`` each
    (entries past ``limit`` are zero).
  """
  n = jax.tree.leaves(data)[0].shape[0]
  order_key, step_key = jax.random.fold_in(key, 0), jax.random.fold_in(key, 1)
  idx = batch_indices(order_key, step0, num_steps=num_steps, n=n, batch_size=batch_size)

  def body(state, inputs):
    i, rows = inputs
    t = step0 + i
    batch = jax.tree.map(lambda a: a[rows], data)

    def take(state):
      return step_fn(state, batch, jax.random.fold_in(step_key, t))

    def skip(state):
      _, metrics = jax.eval_shape(take, state)
      return state, jax.tree.map(lambda m: jnp.zeros(m.shape, m.dtype), metrics)

    return jax.lax.cond(i < limit, take, skip, state)

  return jax.lax.scan(body, state, (jnp.arange(num_steps), idx))


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


def reconstruction_step(state: TrainState, batch: jax.Array, key: jax.Array):
  """One autoencoder step on the mean squared reconstruction error."""
  del key  # deterministic

  def loss_fn(params):
    x_hat, _ = state.apply_fn({"params": params}, batch)
    return jnp.mean(jnp.square(x_hat - batch))

  loss, grads = jax.value_and_grad(loss_fn)(state.params)
  return state.apply_gradients(grads=grads), {"loss": loss}


def clustering_step(state: TrainState, batch, key: jax.Array, *, gamma: float = 0.0):
  """One DEC step: mean KL(P || Q) on the batch's rows of the target P.

  With ``gamma > 0`` the reconstruction error is added as in IDEC:
  ``loss = gamma * KL + MSE`` (Guo et al. 2017).
  """
  del key
  x, p = batch

  def loss_fn(params):
    log_q, _, x_hat = state.apply_fn({"params": params}, x, decode=gamma > 0)
    kl = jnp.mean(dec.kl_loss_from_log(p, log_q))
    if gamma > 0:
      return gamma * kl + jnp.mean(jnp.square(x_hat - x)), kl
    return kl, kl

  (loss, kl), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  return state.apply_gradients(grads=grads), {"loss": loss, "kl": kl}


def map_batches(fn: Callable, x: jax.Array, batch_size: int = 4096):
  """Applies ``fn([b, ...]) -> pytree of [b, ...]`` to all rows of ``x`` in batches."""
  return jax.lax.map(lambda row: jax.tree.map(lambda a: a[0], fn(row[None])), x,
                     batch_size=min(batch_size, x.shape[0]))


def compile_scan(step_fn: StepFn, *, num_steps: int, batch_size: int):
  """``scan_steps`` for a fixed step and shape, jitted with the state donated."""
  return jax.jit(
      functools.partial(scan_steps, step_fn, num_steps=num_steps, batch_size=batch_size),
      donate_argnums=0,
  )
