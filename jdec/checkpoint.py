"""Saving and loading parameters with orbax, with a JSON record of what they fit."""

import json
import pathlib

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
