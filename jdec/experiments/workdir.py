"""The work directory's life: refuse to overwrite, resume what was cut off, tidy up.

``prepare`` decides whether a directory starts a run or continues one;
``pretrain_progress`` gives the pretraining checkpoints that make it
resumable; ``save_once`` keeps what an interrupted run already saved.
"""

import json
import pathlib
import shutil

from jdec import checkpoint, parallel

# Settings that may change when a run is resumed: they do not affect its result.
RESUMABLE_CHANGES = ("resume", "progress", "embedding_map", "checkpoint_every",
                     "checkpoint_min_interval_s",
                     "distributed", "coordinator_address", "num_processes", "process_id")
PRETRAIN_CHECKPOINTS = pathlib.Path("checkpoints") / "pretrain"
# Settings that name files or folders: "../data" and "/abs/data" may be the same one.
PATH_SETTINGS = ("data_dir", "pretrained", "data")


def _as_json(value):
  return json.loads(json.dumps(value, sort_keys=True, default=str))


def _setting(name: str, value):
  """A setting as compared on resume: paths by the folder they name, not their spelling."""
  if name in PATH_SETTINGS and isinstance(value, str):
    return str(pathlib.Path(value).expanduser().resolve())
  return value


def prepare(workdir, config) -> tuple[pathlib.Path, bool]:
  """The work directory, made ready; ``True`` when it holds a run to continue."""
  workdir = pathlib.Path(workdir).expanduser().absolute()
  if (workdir / "results.json").exists():
    hint = (f" (reuse its autoencoder with --config.pretrained={workdir / 'autoencoder'})"
            if (workdir / "autoencoder").exists() else "")
    raise FileExistsError(f"{workdir} already holds a finished run; pick a new "
                          f"--workdir{hint}")
  started = (workdir / "config.json").exists()
  if started and not config.resume:
    raise FileExistsError(
        f"{workdir} holds an unfinished run; continue it with --config.resume=True "
        "(same settings), or pick a new --workdir")
  if not started and (workdir / "autoencoder").exists():
    raise FileExistsError(f"{workdir} already holds an autoencoder; pick a new --workdir")
  if started:
    saved = json.loads((workdir / "config.json").read_text())["experiment"]
    now = _as_json(config.to_dict())
    changed = sorted(k for k in set(saved) | set(now) if k not in RESUMABLE_CHANGES
                     and _setting(k, saved.get(k)) != _setting(k, now.get(k)))
    if changed:
      raise ValueError(
          f"cannot resume the run in {workdir}: these settings differ from the ones it "
          f"started with: {', '.join(changed)} (saved: "
          f"{ {k: saved.get(k) for k in changed} }); resume with the same settings")
  workdir.mkdir(parents=True, exist_ok=True)
  return workdir, started


def pretrain_progress(config, recipe, workdir) -> "checkpoint.Progress | None":
  """Periodic pretraining checkpoints in the work directory, when they apply."""
  if config.checkpoint_every < 0:
    raise ValueError(f"checkpoint_every must be >= 0 epochs, got {config.checkpoint_every}")
  if config.pretrained or recipe.pretrain.method != "end_to_end":
    return None
  every = config.checkpoint_every
  if not every and parallel.from_writer((workdir / PRETRAIN_CHECKPOINTS).exists):
    every = 2**31 - 1  # no new periodic saves, but resume from the one there
  if not every:
    return None
  return checkpoint.Progress(workdir / PRETRAIN_CHECKPOINTS, every,
                             config.checkpoint_min_interval_s)


def _first_free(name) -> pathlib.Path:
  """The first of ``name(1), name(2), ...`` that does not exist."""
  i = 1
  while name(i).exists():
    i += 1
  return name(i)


def restart_metrics(workdir, epoch: int):
  """Keeps the records of the work the resumed run will not redo.

  The old file is kept whole as ``metrics-before-resume-<i>.jsonl``. A last
  line cut off by the interruption (a kill while it was being written) is
  dropped: its record is redone. Any other unreadable line is refused before
  anything is moved.

  Raises:
    ValueError: a line before the last is not JSON (the file is damaged).
  """
  path = workdir / "metrics.jsonl"
  if not path.exists():
    return
  lines = path.read_text().splitlines()
  records = []
  for i, line in enumerate(lines, 1):
    try:
      records.append((line, json.loads(line)))
    except json.JSONDecodeError:
      if i < len(lines):
        raise ValueError(f"{path}, line {i}, is not JSON: the file is damaged; move it "
                         "away (the run then resumes without its earlier records)") from None
  path.rename(_first_free(lambda i: workdir / f"metrics-before-resume-{i}.jsonl"))
  keep = [line + "\n" for line, record in records
          if record.get("phase") == "kmeans_raw" or (
              record.get("phase") == "pretrain" and record.get("epoch", 0) <= epoch)]
  path.write_text("".join(keep))



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


def remove_pretrain_checkpoints(workdir):
  """Removes them once the run has finished: ``autoencoder/`` holds the same parameters."""
  shutil.rmtree(workdir / PRETRAIN_CHECKPOINTS)
  parent = workdir / PRETRAIN_CHECKPOINTS.parent
  if not any(parent.iterdir()):
    parent.rmdir()
