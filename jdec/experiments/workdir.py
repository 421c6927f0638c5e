"""The work directory's life: refuse to overwrite, resume what was cut off, tidy up.

``prepare`` decides whether a directory starts a run, continues one or holds
a finished one; ``run_checkpoints`` gives the checkpoints of every phase that
make it resumable; ``restart_metrics`` keeps the records of the work a resumed
run will not redo; ``save_once`` keeps what an interrupted run already saved;
``write_json`` writes a file whole or not at all.
"""

import json
import os
import pathlib
import shutil
from typing import Callable

from jdec import checkpoint, parallel, pretrain, runfiles

# Settings that may change when a run is resumed: they do not affect its result.
RESUMABLE_CHANGES = ("resume", "progress", "embedding_map", "checkpoint_every",
                     "checkpoint_every_updates", "checkpoint_min_interval_s",
                     "distributed", "coordinator_address", "num_processes", "process_id")
CHECKPOINTS = pathlib.Path("checkpoints")
# Settings that name files or folders: "../data" and "/abs/data" may be the same one.
PATH_SETTINGS = ("data_dir", "pretrained", "data")
NEW, RESUME, FINISHED = "new", "resume", "finished"
# What a DEC checkpoint's record holds (``jdec.cluster.run`` writes it).
DEC_INFO = ("order", "step", "history", "iterations", "stopped_by", "done", "loss", "empty",
            "wall_s")


def write_text(path, text: str) -> None:
  """Writes ``text`` into ``path`` through a temporary file: a kill leaves the old
  file or the new one, never a part (nor, after the next write, the temporary file)."""
  path = pathlib.Path(path)
  checkpoint.remove_stale_partials(path)  # left by a killed write
  partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
  partial.write_text(text, encoding="utf-8", errors="surrogateescape")
  os.replace(partial, path)


def write_json(path, value, **dumps_args) -> None:
  """``value`` as JSON into ``path``, whole or not at all (``write_text``)."""
  write_text(path, json.dumps(value, indent=2, sort_keys=True, **dumps_args))


def read_json(path, required: tuple = ()) -> dict:
  """A JSON object jdec wrote, holding the keys ``required``; a ``ValueError`` naming
  the file when it is damaged."""
  return runfiles.read_json(path, required,
                            advice="move it away or restore it from a copy (nothing was changed)")


def _as_json(value):
  return json.loads(json.dumps(value, sort_keys=True, default=str))


def _setting(name: str, value):
  """A setting as compared on resume: paths by the folder they name, not their spelling."""
  if name in PATH_SETTINGS and isinstance(value, str):
    return str(pathlib.Path(value).expanduser().resolve())
  return value


def prepare(workdir, config) -> tuple[pathlib.Path, str]:
  """The work directory, made ready, and what it holds: ``NEW`` (nothing yet),
  ``RESUME`` (an unfinished run to continue) or ``FINISHED`` (a finished run,
  with ``--config.resume=True``)."""
  workdir = pathlib.Path(workdir).expanduser().absolute()
  finished = (workdir / "results.json").exists()
  if finished and not config.resume:
    hint = (f" (reuse its autoencoder with --config.pretrained={workdir / 'autoencoder'})"
            if (workdir / "autoencoder").exists() else "")
    raise FileExistsError(f"{workdir} already holds a finished run; pick a new "
                          f"--workdir{hint}")
  started = (workdir / "config.json").exists()
  if started and not config.resume:
    raise FileExistsError(
        f"{workdir} holds an unfinished run; continue it with --config.resume=True "
        "(same settings), or pick a new --workdir")
  if not started and ((workdir / "autoencoder").exists() or finished):
    raise FileExistsError(f"{workdir} already holds an autoencoder or results but no "
                          "config.json; pick a new --workdir")
  if started:
    saved = read_json(workdir / "config.json", ("experiment",))["experiment"]
    if not isinstance(saved, dict):
      raise ValueError(f"{workdir / 'config.json'} is damaged: its 'experiment' is not an "
                       "object; move it away or restore it from a copy (nothing was changed)")
    now = _as_json(config.to_dict())
    changed = sorted(k for k in set(saved) | set(now) if k not in RESUMABLE_CHANGES
                     and _setting(k, saved.get(k)) != _setting(k, now.get(k)))
    if changed:
      raise ValueError(
          f"cannot resume the run in {workdir}: these settings differ from the ones it "
          f"started with: {', '.join(changed)} (saved: "
          f"{ {k: saved.get(k) for k in changed} }); resume with the same settings")
  workdir.mkdir(parents=True, exist_ok=True)
  return workdir, FINISHED if finished else RESUME if started else NEW


def run_checkpoints(config, workdir) -> "checkpoint.RunCheckpoints | None":
  """The checkpoints of every phase in ``workdir/checkpoints``, when they apply.

  With both intervals 0 there are none, except that a run resumed with them
  still continues from the checkpoints already there (taking no new ones but
  the ends of its phases).
  """
  for name in ("checkpoint_every", "checkpoint_every_updates"):
    if config[name] < 0:
      raise ValueError(f"{name} must be >= 0, got {config[name]}")
  never = 2**31 - 1
  there = parallel.from_writer((workdir / CHECKPOINTS).exists)
  if not (config.checkpoint_every or config.checkpoint_every_updates or there):
    return None
  return checkpoint.RunCheckpoints.in_folder(
      workdir / CHECKPOINTS, every=config.checkpoint_every or never,
      dec_every=config.checkpoint_every_updates or never,
      min_interval_s=config.checkpoint_min_interval_s, pretrain=not config.pretrained)


def _first_free(name) -> pathlib.Path:
  """The first of ``name(1), name(2), ...`` that does not exist."""
  i = 1
  while name(i).exists():
    i += 1
  return name(i)


def restart_metrics(workdir, keep: Callable[[dict], bool]):
  """Keeps the records of the work the resumed run will not redo: those ``keep``
  accepts.

  The old file is first copied whole to ``metrics-before-resume-<i>.jsonl``,
  then replaced at once by the kept records (a kill leaves one or the other).
  A last line cut off by the interruption (a kill while it was being written)
  is dropped: its record is redone. Any other unreadable line is refused before
  anything is written.

  Raises:
    ValueError: a line is not a JSON object of a jdec record, other than a
      last line cut off before its newline (the file is damaged).
  """
  path = workdir / "metrics.jsonl"
  if not path.exists():
    return
  lines, _ = runfiles.read_lines(
      path, keep=keep,
      advice="move it away (the run then resumes without its earlier records)")
  kept = [text + "\n" for text, _ in lines]
  backup = _first_free(lambda i: workdir / f"metrics-before-resume-{i}.jsonl")
  write_text(backup, path.read_text(encoding="utf-8", errors="surrogateescape"))
  write_text(path, "".join(kept))


def resume_point(checkpoints, recipe, workdir) -> tuple[dict, Callable[[dict], bool]]:
  """Where a resumed run continues (for ``results.json``) and which of the
  ``metrics.jsonl`` records it keeps: those of the work it will not redo.

  Every checkpoint and file it will read is read whole first, so that a damaged
  one stops the resume before anything is changed. Every process calls it.
  """
  ck = checkpoints or checkpoint.RunCheckpoints()
  for phase in ck:
    if phase is not None:
      phase.verify()
  epoch = ck.pretrain.latest_epoch() if ck.pretrain else None
  after_kmeans = ck.kmeans is not None and ck.kmeans.latest_epoch() is not None
  dec = ck.dec.read_info() if ck.dec else None
  missing = [k for k in DEC_INFO if k not in dec] if dec is not None else []
  if missing:
    raise checkpoint.CheckpointError(
        f"the newest checkpoint in {ck.dec.directory} is damaged: its record lacks "
        f"{missing}; move the folder away to start DEC over")
  where = {"resumed_from_epoch": epoch or 0}  # layer-wise: blocks
  if after_kmeans:
    where["resumed_after_kmeans"] = True
  if dec:
    where["resumed_from_dec_iteration"] = dec["step"]

  def raw_done() -> bool:  # damaged: refused before anything changes
    path = workdir / "kmeans_raw.json"
    if path.exists():
      read_kmeans_raw(path)
    return path.exists()

  raw = parallel.from_writer(raw_done, (ValueError,))
  p = recipe.pretrain
  blocks = (pretrain.layerwise_blocks(len(recipe.model.hidden_dims), p.layer_steps,
                                      p.finetune_steps, p.log_every)
            if p.method == "layerwise" else [])

  def position(record) -> int:  # the pretraining checkpoint position a record ends
    phase = record["phase"]
    if phase == "pretrain":
      return record["epoch"]
    stage = (len(blocks) - 1 if phase == "pretrain_finetune"
             else int(phase.removeprefix("pretrain_layer")) - 1)
    return sum(blocks[:stage]) + record["block"]

  def keep(record) -> bool:
    phase = str(record.get("phase", ""))
    if phase == "kmeans_raw":
      return raw
    if phase == "dec":
      return dec is not None and (dec["done"] or record["iteration"] < dec["step"])
    if phase.startswith("pretrain"):  # a finished pretraining has its final checkpoint
      return epoch is not None and position(record) <= epoch
    return False

  return where, keep


def read_kmeans_raw(path) -> dict:
  """``{seed: scores}`` from ``kmeans_raw.json``; a ``ValueError`` naming it when damaged."""
  raw = read_json(path)
  try:
    return {int(k): dict(v) for k, v in raw.items()}
  except (ValueError, TypeError):
    raise ValueError(f"{path} is damaged: it is not a mapping of seeds to scores; move it "
                     "away (the run then computes it again)") from None


def save_once(path, params, meta: dict, *, resuming: bool):
  """``checkpoint.save``, keeping a checkpoint an interrupted run already wrote.

  The same settings and seed made it, so it is kept, not overwritten; one cut
  off while being written (no meta.json yet) is set aside and written anew.
  """
  if resuming and path.exists():
    if (path / "meta.json").exists():
      return
    path.rename(_first_free(lambda i: path.with_name(f"{path.name}.incomplete-{i}")))
  checkpoint.save(path, params, meta)


def remove_checkpoints(workdir):
  """Removes them once the run has finished: ``autoencoder/`` and ``model/`` hold
  what they led to."""
  shutil.rmtree(workdir / CHECKPOINTS, ignore_errors=True)
