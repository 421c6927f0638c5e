"""Saving and loading parameters with orbax, with a JSON record of what they fit.

In a run of several processes (``jax.distributed``) every process calls these
functions at the same points, and only process 0 reads or writes the files:
the others get what it read through a broadcast. The folders thus need to
exist on the first host only, not on a shared file system.
"""

import json
import os
import pathlib
import shutil
import time
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from flax import traverse_util

from jdec import parallel

# orbax synchronises the processes that use a checkpointer; only process 0 does.
_WRITER_ONLY = ocp.options.MultiprocessingOptions(primary_host=0, active_processes={0})


class CheckpointError(RuntimeError):
  """A checkpoint is missing, incomplete, or does not fit the model."""


def save(path, params, meta: dict) -> pathlib.Path:
  """Writes ``params`` to ``path/params`` and ``meta`` to ``path/meta.json``.

  Refuses to overwrite: an existing checkpoint is never lost. With several
  processes, every one calls it and process 0 writes.
  """
  path = pathlib.Path(path).expanduser().absolute()
  params = jax.tree.map(parallel.to_host, params)
  if not parallel.is_writer():
    return path
  if path.exists():
    raise CheckpointError(f"{path} already exists; choose another path or remove it")
  try:
    text = json.dumps(meta, indent=2, sort_keys=True)
  except TypeError as e:
    raise TypeError(f"the description saved with {path} must hold JSON values: {e}") from None
  # Written into a sibling folder, renamed when complete: the folder appears whole or not
  # at all.
  partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
  shutil.rmtree(partial, ignore_errors=True)
  partial.mkdir(parents=True)
  try:
    with ocp.StandardCheckpointer(multiprocessing_options=_WRITER_ONLY) as checkpointer:
      checkpointer.save(partial / "params", params)
    (partial / "meta.json").write_text(text)
    partial.rename(path)
  except BaseException:
    shutil.rmtree(partial, ignore_errors=True)
    raise
  return path


def load(path) -> tuple[dict, dict]:
  """Reads ``(params, meta)`` saved by ``save``, as numpy arrays.

  With several processes, every one calls it: process 0 reads the files and
  the others receive the same parameters (or the same ``CheckpointError``).
  """
  if jax.process_count() == 1:
    return _read(path)
  read = {}

  def describe():
    params, meta = _read(path)
    read["flat"] = traverse_util.flatten_dict(params, sep="/")
    return {"meta": meta,
            "shapes": {k: [list(v.shape), str(v.dtype)] for k, v in read["flat"].items()}}

  info = parallel.from_writer(describe, (CheckpointError,))
  flat = read.get("flat") or {
      k: np.zeros(shape, dtype) for k, (shape, dtype) in info["shapes"].items()}
  return traverse_util.unflatten_dict(parallel.broadcast_arrays(flat), sep="/"), info["meta"]


def _read(path) -> tuple[dict, dict]:
  path = pathlib.Path(path).expanduser().absolute()
  if not (path / "meta.json").is_file() or not (path / "params").is_dir():
    raise CheckpointError(
        f"{path} is not a jdec checkpoint (expected {path / 'params'} and "
        f"{path / 'meta.json'}, as written into a work directory)"
    )
  meta = json.loads((path / "meta.json").read_text())
  try:
    with ocp.StandardCheckpointer(multiprocessing_options=_WRITER_ONLY) as checkpointer:
      params = checkpointer.restore(path / "params")
  except Exception as e:  # orbax raises many types; name the file instead
    raise CheckpointError(
        f"cannot restore the parameters in {path / 'params'}: they are damaged or "
        f"incomplete ({type(e).__name__}); save them again") from e
  return params, meta


class Progress:
  """Periodic checkpoints of a training phase, so that a stopped run resumes.

  Wraps an orbax ``CheckpointManager`` in ``directory``: every ``every``
  epochs, but not sooner than ``min_interval_s`` seconds after the last save
  (so fast hardware is not held up writing), and at the last epoch, it saves
  the train state (parameters, optimiser state, step) with the seconds
  trained so far, keeping only the latest. Since batches and noise are pure functions of the key and the step
  number, a run resumed from epoch ``e`` continues exactly as the
  uninterrupted run would have.

  Args:
    directory: where the checkpoints live (created when missing).
    every: epochs between checkpoints, ``>= 1``.
    min_interval_s: seconds that must pass between two checkpoints, ``>= 0``.
  """

  def __init__(self, directory, every: int, min_interval_s: float = 60.0):
    if every < 1:
      raise ValueError(f"checkpoints must be taken every >= 1 epochs, got {every}")
    if min_interval_s < 0:
      raise ValueError(f"checkpoint min_interval_s must be >= 0, got {min_interval_s}")
    self.directory = pathlib.Path(directory).expanduser().absolute()
    self.every, self.min_interval_s = every, min_interval_s
    self._last_save = time.monotonic()
    self.resumed_epoch, self.resumed_wall_s = 0, 0.0  # set by ``restore``
    self._manager = None  # only the writing process touches the files
    if parallel.is_writer():
      self.directory.mkdir(parents=True, exist_ok=True)  # orbax won't with _WRITER_ONLY
      self._manager = ocp.CheckpointManager(
          self.directory, options=ocp.CheckpointManagerOptions(
              max_to_keep=1, create=False, multiprocessing_options=_WRITER_ONLY),
          item_handlers={"state": ocp.StandardCheckpointHandler(),
                         "info": ocp.JsonCheckpointHandler()})

  def latest_epoch(self) -> int | None:
    """The epoch of the newest complete checkpoint, or ``None`` (every process calls it)."""
    return parallel.from_writer(self._manager.latest_step if self._manager else None)

  def restore(self, template) -> tuple[int, Any, float]:
    """``(epoch, state, wall_s)`` from the newest checkpoint, or ``(0, template, 0.0)``.

    ``template`` is a freshly created state of the same model, optimiser and
    placement; the restored arrays take its structure and shardings. With
    several processes, process 0 reads and the others receive.
    """
    epoch = self.latest_epoch()
    if epoch is None:
      return 0, template, 0.0
    placed = _savable(template)
    host = jax.tree.map(parallel.to_host, placed)
    read = {}

    def read_checkpoint() -> float:
      # A stack of one run reads a one-run checkpoint saved without the run
      # axis (by jdec before every phase trained a stack).
      one = jax.tree.map(lambda a: np.asarray(a)[0, ...], host)
      unstacked = all(a.shape[0] == 1 for a in jax.tree.leaves(host["params"]))
      target = one if unstacked and self._fits(epoch, one["params"]) else host
      self._check_fits(epoch, target["params"])
      try:
        restored = self._manager.restore(epoch, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(target), info=ocp.args.JsonRestore()))
      except Exception as e:  # orbax raises many types; name the folder instead
        raise CheckpointError(
            f"cannot resume from the checkpoint of epoch {epoch} in {self.directory}: it "
            f"does not fit this model and optimiser ({type(e).__name__}: {e})") from e
      read["state"] = (restored.state if target is host
                       else jax.tree.map(lambda a: np.asarray(a)[None], restored.state))
      return float(restored.info["wall_s"])

    wall_s = parallel.from_writer(read_checkpoint, (CheckpointError,))
    state = parallel.broadcast_arrays(read.get("state", host))
    state = jax.tree.map(
        lambda a, t: jax.make_array_from_callback(t.shape, t.sharding, lambda i: a[i]),
        state, placed)
    self.resumed_epoch, self.resumed_wall_s = epoch, wall_s
    return epoch, template.replace(**state), wall_s

  def _shapes(self, epoch: int, params) -> tuple[dict, dict]:
    """``{name: shape}`` of ``params`` and of the saved parameters."""
    saved = self._manager.item_metadata(epoch)["state"].tree["params"]
    shapes = lambda tree: {jax.tree_util.keystr(path): tuple(a.shape) for path, a in
                           jax.tree_util.tree_flatten_with_path(tree)[0]}
    return shapes(params), shapes(saved)

  def _fits(self, epoch: int, params) -> bool:
    want, got = self._shapes(epoch, params)
    return want == got

  def _check_fits(self, epoch: int, params):
    """Compares the saved parameter shapes with ``params``'s, naming the first misfit."""
    want, got = self._shapes(epoch, params)
    for name in sorted(set(want) | set(got)):
      if want.get(name) != got.get(name):
        raise CheckpointError(
            f"cannot resume from the checkpoint of epoch {epoch} in {self.directory}: it "
            f"does not fit this model: parameter {name} has shape {got.get(name)} there "
            f"and {want.get(name)} here (another model, input or number of seeds?)")

  def save(self, epoch: int, state, wall_s: float, *, final: bool = False) -> bool:
    """Saves ``state`` as of ``epoch`` when it is due or ``final``.

    The arrays are copied to the host before this returns (the caller may
    donate ``state`` right after); writing them finishes in the background.
    Only process 0 saves; ``state`` must be replicated (as training keeps it),
    so that no other process is needed to gather it.
    """
    if self._manager is None:
      return False
    if not final and (epoch % self.every
                      or time.monotonic() - self._last_save < self.min_interval_s):
      return False
    if self._manager.latest_step() == epoch:
      return False
    host = jax.tree.map(lambda a: np.array(parallel.to_host(a)), _savable(state))
    self._manager.save(epoch, args=ocp.args.Composite(
        state=ocp.args.StandardSave(host),
        info=ocp.args.JsonSave({"epoch": epoch, "wall_s": wall_s})))
    self._last_save = time.monotonic()
    return True

  def close(self):
    """Waits for the last save to be written."""
    if self._manager is not None:
      self._manager.wait_until_finished()
      self._manager.close()


def _savable(state) -> dict:
  """The parts of a ``TrainState`` that change in training."""
  return {"step": state.step, "params": state.params, "opt_state": state.opt_state}
