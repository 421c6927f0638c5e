"""Saving and loading parameters with orbax, with a JSON record of what they fit."""

import json
import pathlib
import time
from typing import Any

import jax
import orbax.checkpoint as ocp


class CheckpointError(RuntimeError):
  """A checkpoint is missing, incomplete, or does not fit the model."""


def save(path, params, meta: dict) -> pathlib.Path:
  """Writes ``params`` to ``path/params`` and ``meta`` to ``path/meta.json``.

  Refuses to overwrite: an existing checkpoint is never lost.
  """
  path = pathlib.Path(path).expanduser().absolute()
  if path.exists():
    raise CheckpointError(f"{path} already exists; choose another path or remove it")
  path.mkdir(parents=True)
  with ocp.StandardCheckpointer() as checkpointer:
    checkpointer.save(path / "params", jax.device_get(params))
  (path / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
  return path


def load(path) -> tuple[dict, dict]:
  """Reads ``(params, meta)`` saved by ``save``."""
  path = pathlib.Path(path).expanduser().absolute()
  if not (path / "meta.json").is_file() or not (path / "params").is_dir():
    raise CheckpointError(
        f"{path} is not a jdec checkpoint (expected {path / 'params'} and "
        f"{path / 'meta.json'}, as written into a work directory)"
    )
  meta = json.loads((path / "meta.json").read_text())
  try:
    with ocp.StandardCheckpointer() as checkpointer:
      params = checkpointer.restore(path / "params")
  except Exception as e:  # orbax raises many types; name the file instead
    raise CheckpointError(f"cannot restore the parameters in {path / 'params'}: {e}") from e
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
    self._manager = ocp.CheckpointManager(
        self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=1),
        item_handlers={"state": ocp.StandardCheckpointHandler(),
                       "info": ocp.JsonCheckpointHandler()})

  def latest_epoch(self) -> int | None:
    """The epoch of the newest complete checkpoint, or ``None``."""
    return self._manager.latest_step()

  def restore(self, template) -> tuple[int, Any, float]:
    """``(epoch, state, wall_s)`` from the newest checkpoint, or ``(0, template, 0.0)``.

    ``template`` is a freshly created state of the same model, optimiser and
    placement; the restored arrays take its structure and shardings.
    """
    epoch = self.latest_epoch()
    if epoch is None:
      return 0, template, 0.0
    abstract = _savable(template)
    self._check_fits(epoch, abstract["params"])
    try:
      restored = self._manager.restore(epoch, args=ocp.args.Composite(
          state=ocp.args.StandardRestore(abstract), info=ocp.args.JsonRestore()))
    except Exception as e:  # orbax raises many types; name the folder instead
      raise CheckpointError(
          f"cannot resume from the checkpoint of epoch {epoch} in {self.directory}: it does "
          f"not fit this model and optimiser ({type(e).__name__}: {e})") from e
    self.resumed_epoch, self.resumed_wall_s = epoch, float(restored.info["wall_s"])
    return epoch, template.replace(**restored.state), self.resumed_wall_s

  def _check_fits(self, epoch: int, params):
    """Compares the saved parameter shapes with ``params``'s, naming the first misfit."""
    saved = self._manager.item_metadata(epoch)["state"].tree["params"]
    shapes = lambda tree: {jax.tree_util.keystr(path): tuple(a.shape) for path, a in
                           jax.tree_util.tree_flatten_with_path(tree)[0]}
    want, got = shapes(params), shapes(saved)
    for name in sorted(set(want) | set(got)):
      if want.get(name) != got.get(name):
        raise CheckpointError(
            f"cannot resume from the checkpoint of epoch {epoch} in {self.directory}: it "
            f"does not fit this model: parameter {name} has shape {got.get(name)} there "
            f"and {want.get(name)} here (another model, input or number of seeds?)")

  def save(self, epoch: int, state, wall_s: float, *, final: bool = False) -> bool:
    """Saves ``state`` as of ``epoch`` when it is due or ``final``.

    The arrays are copied before this returns (the caller may donate
    ``state`` right after); writing them finishes in the background.
    """
    if not final and (epoch % self.every
                      or time.monotonic() - self._last_save < self.min_interval_s):
      return False
    if self._manager.latest_step() == epoch:
      return False
    self._manager.save(epoch, args=ocp.args.Composite(
        state=ocp.args.StandardSave(jax.tree.map(lambda a: a.copy(), _savable(state))),
        info=ocp.args.JsonSave({"epoch": epoch, "wall_s": wall_s})))
    self._last_save = time.monotonic()
    return True

  def close(self):
    """Waits for the last save to be written."""
    self._manager.wait_until_finished()
    self._manager.close()


def _savable(state) -> dict:
  """The parts of a ``TrainState`` that change in training."""
  return {"step": state.step, "params": state.params, "opt_state": state.opt_state}
