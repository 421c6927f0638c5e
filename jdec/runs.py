"""Many runs (seeds) of one training path at once: ``vmap`` over a leading run axis.

Everything here holds S runs stacked on a leading axis: keys ``[S]``, and
every leaf of a state or of parameters ``[S, ...]``. One run is a stack of
one. The step and the scan (``jdec.train``, ``jdec.scan``) are written for one
run; ``Stepper`` maps them over the stack, on data resident on the devices or
streamed from the host.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jdec import parallel, scan, train


def fold_in(keys: jax.Array, data: int) -> jax.Array:
  """``jax.random.fold_in`` of every key of ``keys [S]``."""
  return jax.vmap(lambda k: jax.random.fold_in(k, data))(keys)


def stack(trees) -> object:
  """One pytree with a leading run axis from a list of S pytrees of the same structure."""
  return jax.tree.map(lambda *a: jnp.stack(a), *trees)


def take(tree, r: int):
  """Run ``r`` of a stacked pytree (every leaf indexed by ``r``)."""
  return jax.tree.map(lambda a: a[r], tree)


def create_states(apply_fn, params, tx: optax.GradientTransformation) -> train.TrainState:
  """``train.create_state`` for every run of ``params [S, ...]``: the optimiser
  state and the step get the leading run axis too."""
  return jax.vmap(lambda p: train.create_state(apply_fn, p, tx))(params)


def compile_runs(step_fn: scan.StepFn, *, num_steps: int | None, batch_size: int | None,
                 data_axis=None, batch_sharding: jax.sharding.Sharding | None = None):
  """``scan.compile_scan`` mapped over S runs.

  Args:
    step_fn, num_steps, batch_size, batch_sharding: as for ``scan.compile_scan``.
    data_axis: ``0`` when each run has its own data (``[S, n, ...]``),
      ``None`` when they share it; a tuple gives one per part of a tuple
      ``data`` (DEC's ``(x, p)`` has ``(None, 0)``).

  Returns:
    ``f(state [S], data, keys [S], step0, limit [S]) -> (state, metrics [S, steps])``.
  """
  fn = scan.scan_fn(step_fn, num_steps=num_steps, batch_size=batch_size,
                    batch_sharding=batch_sharding)
  return jax.jit(vmap(fn, in_axes=(0, data_axis, 0, None, 0)), donate_argnums=0)


def vmap(fn, in_axes: tuple):
  """``jax.vmap(fn, in_axes)`` over the runs, whose axis is 0 of the first argument.

  A stack of one calls ``fn`` itself and adds the run axis to its outputs: on
  a CPU the vmapped program of one run was 4-13% slower per training step
  (batch 256, d-500-500-2000-10). ``in_axes`` holds one entry per argument:
  ``0``, ``None`` or a tuple of those for a tuple argument.
  """
  mapped = jax.vmap(fn, in_axes=in_axes)

  def over_runs(*args):
    if jax.tree.leaves(args[0])[0].shape[0] > 1:
      return mapped(*args)
    out = fn(*[_run_part(a, ax) for a, ax in zip(args, in_axes)])
    return jax.tree.map(lambda a: a[None], out)

  return over_runs


def _run_part(arg, axis):
  """The only run's part of ``arg``: leaves with a run axis lose it."""
  if isinstance(axis, tuple):
    return tuple(_run_part(part, ax) for part, ax in zip(arg, axis))
  return arg if axis is None else take(arg, 0)


@functools.partial(jax.jit, static_argnames=("num_steps", "n", "batch_size"))
def _order(keys, step0, *, num_steps, n, batch_size):
  """The rows the scan would take, ``[S, steps, batch]``."""
  return jax.vmap(lambda k: scan.batch_indices(jax.random.fold_in(k, 0), step0,
                                               num_steps=num_steps, n=n,
                                               batch_size=batch_size))(keys)


class Stepper:
  """Runs blocks of a train step for S runs at once, on resident or streamed data.

  With ``placement.stream`` the data stays on the host: each block is cut into
  pieces of ``placement.stream_steps`` steps whose batches are gathered on the
  host and sent to the devices, so device memory holds one piece at a time.
  Both ways take the same batches (``scan.batch_indices``), so they give the
  same result.
  """

  def __init__(self, step_fn: scan.StepFn, *, block_steps: int, batch_size: int,
               placement: "parallel.Placement", data_axis=None):
    self.placement, self.batch_size = placement, batch_size
    self.data_axis, self.block_steps = data_axis, block_steps
    if placement.stream:  # the batches sent are per run
      self.piece = min(placement.stream_steps, block_steps)
      self._scan = compile_runs(step_fn, num_steps=None, batch_size=None, data_axis=0,
                                batch_sharding=placement.batch_sharding)
    else:
      self._scan = compile_runs(step_fn, num_steps=block_steps, batch_size=batch_size,
                                data_axis=data_axis, batch_sharding=placement.batch_sharding)

  def __call__(self, state, data, keys, step0: int, limit) -> tuple[train.TrainState, np.ndarray]:
    """Takes ``limit [S]`` steps of each run from global step ``step0``.

    Returns:
      The new state and the mean loss over the steps taken, ``[S]`` (NaN
      where a run took no steps).
    """
    limit = np.asarray(limit, np.int32)
    if not self.placement.stream:
      state, m = self._scan(state, data, keys, jnp.asarray(step0, jnp.int32),
                            self.placement.put(limit))
      total = np.asarray(parallel.to_host(jnp.sum(m["loss"], axis=-1)), np.float64)
    else:
      leaves = self._leaves_with_axes(data)
      n = next(a.shape[0] if ax is None else a.shape[1] for a, ax in leaves)
      # The whole block's rows first, so that gathering the next piece on
      # the host overlaps the devices' work on this one (nothing below waits
      # for the devices until the loss is read at the end).
      rows = np.asarray(_order(keys, jnp.asarray(step0, jnp.int32), num_steps=self.block_steps,
                               n=n, batch_size=self.batch_size))
      sums = []
      for start in range(0, int(limit.max(initial=0)), self.piece):
        piece = rows[:, start:start + self.piece, :]
        if piece.shape[1] < self.piece:  # the block's end: pad, the steps are skipped
          piece = np.pad(piece, [(0, 0), (0, self.piece - piece.shape[1]), (0, 0)])
        batches = jax.tree.unflatten(jax.tree.structure(data),
                                     [_gather(a, ax, piece) for a, ax in leaves])
        state, m = self._scan(state, self.placement.put(batches), keys,
                              jnp.asarray(step0 + start, jnp.int32),
                              self.placement.put(np.clip(limit - start, 0, self.piece)))
        sums.append(jnp.sum(m["loss"], axis=-1))
      total = (np.sum([np.asarray(parallel.to_host(t), np.float64) for t in sums], axis=0)
               if sums else np.zeros(limit.shape, np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
      loss = np.where(limit > 0, total / np.maximum(limit, 1), np.nan)
    return state, loss

  def _leaves_with_axes(self, data) -> list:
    """``(leaf, axis)`` pairs: ``data_axis`` is one axis or a tuple matching ``data``."""
    if isinstance(self.data_axis, tuple):
      return [(a, ax) for part, ax in zip(data, self.data_axis)
              for a in jax.tree.leaves(part)]
    return [(a, self.data_axis) for a in jax.tree.leaves(data)]


def _gather(a: np.ndarray, axis: int | None, rows: np.ndarray) -> np.ndarray:
  """The batches' rows of ``a`` for every run, ``[S, steps, batch, ...]``."""
  if axis == 0:  # each run its own data
    return np.stack([a[r][rows[r]] for r in range(rows.shape[0])])
  return a[rows]
