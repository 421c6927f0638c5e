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
import numpy as np
import optax
from flax.training import train_state

from jdec import dec, parallel

TrainState = train_state.TrainState
StepFn = Callable[[TrainState, Any, jax.Array], tuple[TrainState, dict]]


def create_state(apply_fn, params, tx: optax.GradientTransformation, *,
                 stacked: bool = False) -> TrainState:
  """``TrainState.create`` with a typed int32 step, so the first call of a
  jitted step and later ones see the same input types (no recompile).

  With ``stacked``, ``params`` has a leading run axis ``[S, ...]`` and so do
  the optimiser state and the step of the result.
  """
  if stacked:
    return jax.vmap(lambda p: create_state(apply_fn, p, tx))(params)
  state = TrainState.create(apply_fn=apply_fn, params=params, tx=tx)
  return state.replace(step=jnp.zeros((), jnp.int32))


def fold_in(key: jax.Array, data: int) -> jax.Array:
  """``jax.random.fold_in`` for one key or a stack of keys ``[S]``."""
  if key.ndim:
    return jax.vmap(lambda k: jax.random.fold_in(k, data))(key)
  return jax.random.fold_in(key, data)


def sgd(learning_rate, momentum: float) -> optax.GradientTransformation:
  """SGD with (heavy-ball) momentum, as in Keras and Caffe."""
  return optax.sgd(learning_rate, momentum=momentum or None)


def optimizer(name: str, learning_rate, momentum: float = 0.0) -> optax.GradientTransformation:
  """``"sgd"`` (with ``momentum``) or ``"adam"`` (Keras's betas and epsilon 1e-7)."""
  if name == "sgd":
    return sgd(learning_rate, momentum)
  if name == "adam":
    return optax.adam(learning_rate, b1=0.9, b2=0.999, eps=1e-7)
  raise ValueError(f"unknown optimizer {name!r}; use 'sgd' or 'adam'")


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
      recompile, and stacked runs may take different numbers of steps).
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


Augment = Callable[[jax.Array, jax.Array], jax.Array]  # (key, x [b, d]) -> [b, d]


def reconstruction_step(state: TrainState, batch: jax.Array, key: jax.Array, *,
                        augment: Augment | None = None):
  """One autoencoder step on the mean squared reconstruction error.

  With ``augment``, the batch is first transformed with the step's key and the
  autoencoder reconstructs the transformed batch (DEC-DA's pretraining).
  """
  if augment is not None:
    batch = augment(key, batch)

  def loss_fn(params):
    x_hat, _ = state.apply_fn({"params": params}, batch)
    return jnp.mean(jnp.square(x_hat - batch))

  loss, grads = jax.value_and_grad(loss_fn)(state.params)
  return state.apply_gradients(grads=grads), {"loss": loss}


def clustering_step(state: TrainState, batch, key: jax.Array, *, objective: str = "dec",
                    kl_weight: float = 0.1, augment: Augment | None = None):
  """One clustering step on the batch's rows ``(x [b, d], p [b, k])`` of the target P.

  Objectives:
    ``"dec"``: the mean KL(P || Q) (Xie et al. 2016).
    ``"idec"``: ``MSE + kl_weight * KL``, the decoder kept (Guo et al. 2017).

  With ``augment``, the model sees the batch transformed with the step's key
  while P, computed from the clean data, stays as it is (DEC-DA); IDEC then
  reconstructs the transformed batch.
  """
  if objective not in ("dec", "idec"):
    raise ValueError(f"unknown objective {objective!r}; use 'dec' or 'idec'")
  x, p = batch
  if augment is not None:
    x = augment(key, x)
  joint = objective == "idec"

  def loss_fn(params):
    log_q, _, x_hat = state.apply_fn({"params": params}, x, decode=joint)
    kl = jnp.mean(dec.kl_loss_from_log(p, log_q))
    if joint:
      return jnp.mean(jnp.square(x_hat - x)) + kl_weight * kl, kl
    return kl, kl

  (loss, kl), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  return state.apply_gradients(grads=grads), {"loss": loss, "kl": kl}


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
    stacked: bool = False,
    data_axis: int | None = None,
    batch_sharding: jax.sharding.Sharding | None = None,
):
  """``scan_steps`` for a fixed step and shape, jitted with the state donated.

  Args:
    step_fn, num_steps, batch_size, batch_sharding: as for ``scan_steps``.
      ``num_steps=None`` compiles ``scan_batches`` instead (streamed data; the
      length is that of the batches passed).
    stacked: the state, key and limit have a leading seed axis ``[S]``: S
      independent runs are trained at once by ``vmap``.
    data_axis: with ``stacked``, ``0`` when each run has its own data
      (``[S, n, ...]``), ``None`` when they share it; a tuple gives one per
      part of a tuple ``data`` (DEC's ``(x, p)`` has ``(None, 0)``).

  Returns:
    ``f(state, data, key, step0, limit) -> (state, metrics)``.
  """
  if num_steps is None:
    fn = functools.partial(scan_batches, step_fn, batch_sharding=batch_sharding)
  else:
    fn = functools.partial(scan_steps, step_fn, num_steps=num_steps,
                           batch_size=batch_size, batch_sharding=batch_sharding)
  if stacked:
    fn = jax.vmap(fn, in_axes=(0, data_axis, 0, None, 0))
  return jax.jit(fn, donate_argnums=0)


@functools.partial(jax.jit, static_argnames=("num_steps", "n", "batch_size", "stacked"))
def _order(key, step0, *, num_steps, n, batch_size, stacked):
  """The rows ``scan_steps`` would take (``[S, steps, batch]`` when stacked)."""
  fn = lambda k: batch_indices(jax.random.fold_in(k, 0), step0, num_steps=num_steps, n=n,
                               batch_size=batch_size)
  return jax.vmap(fn)(key) if stacked else fn(key)


class Stepper:
  """Runs blocks of a train step on resident or streamed data, one run or S at once.

  With ``placement.stream`` the data stays on the host: each block is cut into
  pieces of ``placement.stream_steps`` steps whose batches are gathered on the
  host and sent to the devices, so device memory holds one piece at a time.
  Both ways take the same batches (``batch_indices``), so they give the same
  result.
  """

  def __init__(self, step_fn: StepFn, *, block_steps: int, batch_size: int, stacked: bool,
               placement: "parallel.Placement", data_axis: int | None = None):
    self.stacked, self.placement, self.batch_size = stacked, placement, batch_size
    self.data_axis, self.block_steps = data_axis, block_steps
    if placement.stream:  # the batches sent are per run when stacked
      self.piece = min(placement.stream_steps, block_steps)
      self._scan = compile_scan(step_fn, num_steps=None, batch_size=None, stacked=stacked,
                                data_axis=0, batch_sharding=placement.batch_sharding)
    else:
      self._scan = compile_scan(step_fn, num_steps=block_steps, batch_size=batch_size,
                                stacked=stacked, data_axis=data_axis,
                                batch_sharding=placement.batch_sharding)

  def __call__(self, state, data, key, step0: int, limit) -> tuple[TrainState, np.ndarray]:
    """Takes ``limit`` steps from global step ``step0`` (``limit [S]`` when stacked).

    Returns:
      The new state and the mean loss over the steps taken, per run
      (``[S]``, or ``[1]`` for one run; NaN where a run took no steps).
    """
    limit = np.asarray(limit, np.int32)
    if not self.placement.stream:
      state, m = self._scan(state, data, key, jnp.asarray(step0, jnp.int32),
                            self.placement.put(limit))
      total = np.asarray(parallel.to_host(jnp.sum(m["loss"], axis=-1)), np.float64)
    else:
      leaves = self._leaves_with_axes(data)
      n = next(a.shape[0] if ax is None else a.shape[1] for a, ax in leaves)
      # The whole block's rows first, so that gathering the next piece on
      # the host overlaps the devices' work on this one (nothing below waits
      # for the devices until the loss is read at the end).
      rows = np.asarray(_order(key, jnp.asarray(step0, jnp.int32), num_steps=self.block_steps,
                               n=n, batch_size=self.batch_size, stacked=self.stacked))
      sums = []
      for start in range(0, int(limit.max(initial=0)), self.piece):
        piece = rows[..., start:start + self.piece, :]
        if piece.shape[-2] < self.piece:  # the block's end: pad, the steps are skipped
          pad = [(0, 0)] * piece.ndim
          pad[-2] = (0, self.piece - piece.shape[-2])
          piece = np.pad(piece, pad)
        batches = jax.tree.unflatten(jax.tree.structure(data),
                                     [self._gather(a, ax, piece) for a, ax in leaves])
        state, m = self._scan(state, self.placement.put(batches), key,
                              jnp.asarray(step0 + start, jnp.int32),
                              self.placement.put(np.clip(limit - start, 0, self.piece)))
        sums.append(jnp.sum(m["loss"], axis=-1))
      total = (np.sum([np.asarray(parallel.to_host(t), np.float64) for t in sums], axis=0)
               if sums else np.zeros(limit.shape, np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
      loss = np.where(limit > 0, total / np.maximum(limit, 1), np.nan)
    return state, np.atleast_1d(loss)

  def _leaves_with_axes(self, data) -> list:
    """``(leaf, axis)`` pairs: ``data_axis`` is one axis or a tuple matching ``data``."""
    if isinstance(self.data_axis, tuple):
      return [(a, ax) for part, ax in zip(data, self.data_axis)
              for a in jax.tree.leaves(part)]
    return [(a, self.data_axis) for a in jax.tree.leaves(data)]

  def _gather(self, a: np.ndarray, axis: int | None, rows: np.ndarray) -> np.ndarray:
    """The batches' rows of ``a``: ``[S, steps, batch, ...]`` when stacked."""
    if self.stacked and axis == 0:
      return np.stack([a[r][rows[r]] for r in range(rows.shape[0])])
    return a[rows]
