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
import sys
import time
from typing import Any, NamedTuple

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
  remove_stale_partials(path)
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


def remove_stale_partials(path) -> None:
  """Removes the ``.<name>.partial-<pid>`` siblings of ``path`` that killed writers left:
  those of processes no longer running (and this process's own)."""
  path = pathlib.Path(path)
  for stale in path.parent.glob(f".{path.name}.partial-*"):
    pid = stale.name.rsplit("-", 1)[-1]
    if not (pid.isascii() and pid.isdigit() and 0 < int(pid) < 2**31):
      continue  # not a name save() writes
    if int(pid) == os.getpid() or not _running(int(pid)):
      if stale.is_dir():
        shutil.rmtree(stale, ignore_errors=True)
      else:
        stale.unlink(missing_ok=True)


def _running(pid: int) -> bool:
  """Whether process ``pid`` exists; another user's process counts as running."""
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # it exists, but belongs to another user
    pass
  return True


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
  try:
    meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
  except (ValueError, OSError) as e:  # JSONDecodeError, UnicodeDecodeError
    raise CheckpointError(f"{path / 'meta.json'} is damaged ({e}); save the checkpoint "
                          "again, or rerun the training that wrote it") from None
  if not isinstance(meta, dict):
    raise CheckpointError(f"{path / 'meta.json'} is damaged: it holds a JSON "
                          f"{type(meta).__name__}, not an object; save the checkpoint again")
  previous = _quiet_closed_event_loop()
  try:
    with ocp.StandardCheckpointer(multiprocessing_options=_WRITER_ONLY) as checkpointer:
      params = checkpointer.restore(path / "params")
  except Exception as e:  # orbax raises many types; name the file instead
    # The quiet hook stays: the late reports come after this returns.
    raise CheckpointError(
        f"cannot restore the parameters in {path / 'params'}: they are damaged or "
        f"incomplete ({type(e).__name__}); save them again, or rerun the training that "
        "wrote them") from e
  sys.unraisablehook = previous
  return params, meta


def _quiet_closed_event_loop():
  """Silences the "Event loop is closed" reports that follow a failed restore.

  After orbax gives up on damaged files, tensorstore's reads still in flight
  report to the event loop orbax has closed: tracebacks of noise printed after
  jdec's own error. Returns the hook it replaced, to put back after a success
  (after a failure the quiet hook stays: the reports come later).
  """
  previous = sys.unraisablehook

  def quiet(unraisable):
    if not (isinstance(unraisable.exc_value, RuntimeError)
            and str(unraisable.exc_value) == "Event loop is closed"):
      previous(unraisable)

  quiet.quiets_closed_loop = True
  if not getattr(previous, "quiets_closed_loop", False):
    sys.unraisablehook = quiet
  return previous


class Progress:
  """Periodic checkpoints of a training phase, so that a stopped run resumes.

  Wraps an orbax ``CheckpointManager`` in ``directory``: at every
  ``every``-th position (epoch, block of steps or DEC update), but not sooner
  than ``min_interval_s`` seconds after the last save (so fast hardware is not
  held up writing), and at the phase's end, it saves a pytree of arrays (a
  train state's parameters, optimiser state and step, or whatever else the
  phase needs) with a JSON ``info`` record (the seconds trained so far),
  keeping only the latest. Since batches and noise are pure functions of the
  key and the step number, a run resumed from position ``e`` continues
  exactly as the uninterrupted run would have. A save cut off by a kill
  leaves an orbax temporary folder, which is ignored: the run resumes from the
  save before it.

  Args:
    directory: where the checkpoints live (created when missing).
    every: positions between checkpoints, ``>= 1``.
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
    """The position of the newest complete checkpoint, or ``None`` (every process calls it)."""
    return parallel.from_writer(self._manager.latest_step if self._manager else None)

  def read_info(self) -> dict | None:
    """The JSON record saved with the newest checkpoint, or ``None`` without one
    (every process calls it)."""

    def read():
      epoch = self._manager.latest_step() if self._manager else None
      if epoch is None:
        return None
      return dict(self._orbax(epoch, lambda: self._manager.restore(
          epoch, args=ocp.args.Composite(info=ocp.args.JsonRestore()))).info)

    return parallel.from_writer(read, (CheckpointError,))

  def verify(self) -> None:
    """Reads the newest checkpoint whole, arrays and record, and raises a
    ``CheckpointError`` naming the folder when it is damaged (every process
    calls it): a resume checks its checkpoints before it changes anything."""

    def read():
      epoch = self._manager.latest_step() if self._manager else None
      if epoch is not None:
        self._orbax(epoch, lambda: self._manager.restore(epoch, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(), info=ocp.args.JsonRestore())))

    parallel.from_writer(read, (CheckpointError,))

  def restore(self, template) -> tuple[int, Any, float]:
    """``(epoch, state, wall_s)`` from the newest checkpoint, or ``(0, template, 0.0)``.

    ``template`` is a freshly created ``TrainState`` of the same model,
    optimiser and placement; the restored arrays take its structure and
    shardings. With several processes, process 0 reads and the others receive.
    """
    restored = self.restore_tree(savable(template))
    if restored is None:
      return 0, template, 0.0
    epoch, state, info = restored
    return epoch, template.replace(**state), float(info["wall_s"])

  def restore_tree(self, template, epoch: int | None = None, *,
                   fit_key: tuple = ("params",)) -> tuple[int, Any, dict] | None:
    """``(position, tree, info)`` of the newest checkpoint (or of ``epoch``), or ``None``.

    ``template`` gives the structure, shapes and dtypes of the saved tree:
    ``jax.Array`` leaves come back as arrays of the template leaf's sharding,
    others as numpy arrays. ``tree[fit_key]`` is compared with the saved one
    first, so that a checkpoint of another model is refused by name.
    """
    epoch = self.latest_epoch() if epoch is None else epoch
    if epoch is None:
      return None
    host = jax.tree.map(parallel.to_host, template)
    read = {}

    def read_checkpoint() -> dict:
      # A stack of one run reads a one-run checkpoint saved without the run
      # axis (by jdec before every phase trained a stack).
      target = host
      if fit_key == ("params",):
        one = jax.tree.map(lambda a: np.asarray(a)[0, ...], host)
        unstacked = all(a.shape[0] == 1 for a in jax.tree.leaves(host["params"]))
        if unstacked and self._fits(epoch, one["params"], fit_key):
          target = one
      self._check_fits(epoch, _part(target, fit_key), fit_key)
      restored = self._orbax(epoch, lambda: self._manager.restore(
          epoch, args=ocp.args.Composite(state=ocp.args.StandardRestore(target),
                                         info=ocp.args.JsonRestore())))
      read["tree"] = (restored.state if target is host
                      else jax.tree.map(lambda a: np.asarray(a)[None], restored.state))
      return dict(restored.info)

    info = parallel.from_writer(read_checkpoint, (CheckpointError,))
    tree = parallel.broadcast_arrays(read.get("tree", host))
    tree = jax.tree.map(_placed_like, tree, template)
    self.resumed_epoch, self.resumed_wall_s = epoch, float(info.get("wall_s", 0.0))
    return epoch, tree, info

  def _shapes(self, epoch: int, params, fit_key: tuple) -> tuple[dict, dict]:
    """``{name: shape}`` of ``params`` and of the saved ``tree[fit_key]``."""
    saved = _part(self._orbax(epoch, lambda: self._manager.item_metadata(epoch))["state"].tree,
                  fit_key)
    shapes = lambda tree: {jax.tree_util.keystr(path): tuple(a.shape) for path, a in
                           jax.tree_util.tree_flatten_with_path(tree)[0]}
    return shapes(params), shapes(saved)

  def _orbax(self, epoch: int, read):
    """``read()``, an orbax read of the checkpoint of ``epoch``; any failure becomes a
    ``CheckpointError`` naming the folder (orbax raises many types)."""
    previous = _quiet_closed_event_loop()
    try:
      out = read()
    except Exception as e:  # pylint: disable=broad-except
      raise CheckpointError(
          f"cannot read the checkpoint of position {epoch} in {self.directory}: it is "
          f"damaged or does not fit this run ({type(e).__name__}: {e}); move the folder "
          "away to start this phase over") from e
    sys.unraisablehook = previous
    return out

  def _fits(self, epoch: int, params, fit_key: tuple) -> bool:
    want, got = self._shapes(epoch, params, fit_key)
    return want == got

  def _check_fits(self, epoch: int, params, fit_key: tuple):
    """Compares the saved parameter shapes with ``params``'s, naming the first misfit."""
    want, got = self._shapes(epoch, params, fit_key)
    for name in sorted(set(want) | set(got)):
      if want.get(name) != got.get(name):
        raise CheckpointError(
            f"cannot resume from the checkpoint of position {epoch} in {self.directory}: "
            f"it does not fit this model: parameter {name} has shape {got.get(name)} there "
            f"and {want.get(name)} here (another model, input or number of seeds?)")

  def save(self, epoch: int, state, wall_s: float, *, final: bool = False) -> bool:
    """Saves the ``TrainState`` ``state`` as of ``epoch`` when it is due or ``final``.

    The arrays are copied to the host before this returns (the caller may
    donate ``state`` right after); writing them finishes in the background.
    Only process 0 saves; ``state`` must be replicated (as training keeps it),
    so that no other process is needed to gather it.
    """
    return self.save_tree(epoch, savable(state), {"epoch": epoch, "wall_s": wall_s},
                          final=final)

  def due(self, epoch: int) -> bool:
    """Whether a periodic save at ``epoch`` would be written now."""
    return (self._manager is not None and not epoch % self.every
            and time.monotonic() - self._last_save >= self.min_interval_s)

  def save_tree(self, epoch: int, tree, info: dict, *, final: bool = False) -> bool:
    """Saves the pytree of arrays ``tree`` and the JSON ``info`` as position ``epoch``
    when it is due or ``final`` (see ``save``); ``True`` when written."""
    if self._manager is None or not (final or self.due(epoch)):
      return False
    if self._manager.latest_step() == epoch:
      return False
    host = jax.tree.map(lambda a: np.array(parallel.to_host(a)), tree)
    self._manager.save(epoch, args=ocp.args.Composite(
        state=ocp.args.StandardSave(host), info=ocp.args.JsonSave(info)))
    self._last_save = time.monotonic()
    return True

  def close(self):
    """Waits for the last save to be written."""
    if self._manager is not None:
      self._manager.wait_until_finished()
      self._manager.close()


class RunCheckpoints(NamedTuple):
  """The checkpoints of every phase of ``jdec.fit``; a phase without one starts over.

  Attributes:
    pretrain: end-to-end epochs, or layer-wise blocks of ``log_every`` steps.
    kmeans: the k-means result (saved once, when k-means ends).
    dec: DEC updates: the states, the iteration, the last labels and the
      history (P is recomputed from the states); saved once more when every
      run has stopped, so a run cut off while writing its results does not
      train again.
  """

  pretrain: Progress | None = None
  kmeans: Progress | None = None
  dec: Progress | None = None

  @classmethod
  def in_folder(cls, directory, *, every: int = 10, dec_every: int = 5,
                min_interval_s: float = 60.0, pretrain: bool = True) -> "RunCheckpoints":
    """Every phase's checkpoints in ``directory/{pretrain,kmeans,dec}``.

    ``every`` counts pretraining epochs (or layer-wise blocks), ``dec_every``
    DEC updates; no two saves of a phase come closer than ``min_interval_s``.
    ``pretrain=False`` leaves pretraining out (a run given its autoencoder).
    """
    directory = pathlib.Path(directory)
    return cls(
        pretrain=Progress(directory / "pretrain", every, min_interval_s) if pretrain else None,
        kmeans=Progress(directory / "kmeans", 1, 0.0),
        dec=Progress(directory / "dec", dec_every, min_interval_s))


def as_run_checkpoints(checkpoints) -> RunCheckpoints:
  """``RunCheckpoints`` from ``fit``'s argument: a ``Progress`` is pretraining's only."""
  if checkpoints is None:
    return RunCheckpoints()
  if isinstance(checkpoints, Progress):
    return RunCheckpoints(pretrain=checkpoints)
  if isinstance(checkpoints, RunCheckpoints):
    return checkpoints
  raise TypeError("checkpoints must be a jdec.checkpoint.RunCheckpoints or Progress, got "
                  f"{type(checkpoints).__name__}")


def _part(tree, keys: tuple):
  for k in keys:
    tree = tree[k]
  return tree


def _placed_like(a, template):
  """``a`` (numpy) as an array of ``template``'s sharding, or numpy for a numpy template."""
  if not isinstance(template, jax.Array):
    return np.asarray(a)
  return jax.make_array_from_callback(template.shape, template.sharding, lambda i: a[i])


def savable(state) -> dict:
  """The parts of a ``TrainState`` that change in training: what ``Progress`` saves."""
  return {"step": state.step, "params": state.params, "opt_state": state.opt_state}
