"""``save`` and ``load``: one folder format for trained models.

A model folder holds ``params/`` (the clustering parameters, written by orbax)
and ``meta.json``: the format and its version, the jdec version that wrote it,
the autoencoder's class and the model description of
``jdec.trained.DESCRIPTION_KEYS`` (architecture, sizes, number of clusters,
recipe, input scaling, image shape). The experiments' ``model/`` folders use
it, so ``jdec.load("runs/mnist/model")`` gives a model that predicts.
"""

import json
import math
import pathlib

import jax
import numpy as np

from jdec import checkpoint, models, trained

FORMAT = "jdec.model"
FORMAT_VERSION = 1


def _version() -> str:
  from jdec import __version__  # pylint: disable=import-outside-toplevel
  return __version__


def as_model(obj) -> trained.TrainedModel:
  """The ``TrainedModel`` of a ``FitResult``, a fitted ``jdec.DEC`` or a ``TrainedModel``."""
  if isinstance(obj, trained.TrainedModel):
    return obj
  to_model = getattr(obj, "to_model", None)
  if to_model is None:
    if hasattr(obj, "results") and hasattr(obj, "seeds"):
      raise TypeError("a SweepResult holds one model per seed: save one of them, "
                      "e.g. jdec.save(sweep.results[0], path)")
    raise TypeError(f"cannot save a {type(obj).__name__}: pass a jdec.FitResult, a fitted "
                    "jdec.DEC or a jdec.TrainedModel")
  return to_model()


def meta(model: trained.TrainedModel, **extra) -> dict:
  """What ``meta.json`` holds for ``model``; ``extra`` keys (dataset, seed, ...) are kept."""
  return {**extra, **model.description, "format": FORMAT, "format_version": FORMAT_VERSION,
          "jdec_version": _version(),
          "model_class": type(model.module.autoencoder).__name__}


def save(obj, path, **extra) -> pathlib.Path:
  """Writes a trained model to the new folder ``path`` (never over an existing one).

  Args:
    obj: a ``jdec.FitResult``, a fitted ``jdec.DEC`` or a ``jdec.TrainedModel``.
    path: the folder to create.
    **extra: JSON values to keep in ``meta.json`` (e.g. ``dataset="mnist"``).

  Returns:
    The folder's absolute path.
  """
  model = as_model(obj)
  return checkpoint.save(path, model.params, meta(model, **extra))


def _count(v) -> bool:
  return isinstance(v, int) and not isinstance(v, bool) and v >= 1


def _counts(v, n: int | None = None) -> bool:
  return isinstance(v, list) and len(v) >= 1 and len(v) == (n or len(v)) and all(
      _count(w) for w in v)


def _positive(v) -> bool:
  return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0


# What each value of a description must be: (test, the words for it).
_VALUES = {
    "arch": (lambda v: v in ("dense", "conv"), "'dense' or 'conv'"),
    "input_dim": (_count, "an integer >= 1"),
    "hidden_dims": (_counts, "a list of integers >= 1"),
    "conv_filters": (lambda v: _counts(v, 3), "three integers >= 1"),
    "embed_dim": (_count, "an integer >= 1"),
    "image_shape": (lambda v: v is None or _counts(v, 3), "null or three integers >= 1"),
    "kernel_init": (lambda v: v in models.KERNEL_INITS, f"one of {sorted(models.KERNEL_INITS)}"),
    "compute_dtype": (lambda v: v in ("float32", "bfloat16"), "'float32' or 'bfloat16'"),
    "n_clusters": (_count, "an integer >= 1"),
    "alpha": (_positive, "a number > 0"),
    "input_scale": (_positive, "a number > 0"),
    "input_scaling": (lambda v: v in ("none", "unit_power"), "'none' or 'unit_power'"),
    "recipe": (lambda v: v is None or isinstance(v, str), "null or a recipe's name"),
}


def _check_values(path: pathlib.Path, description: dict) -> None:
  """Refuses a description whose values no model has (a damaged or hand-edited file)."""
  for key, (ok, want) in _VALUES.items():
    try:
      good = ok(description[key])
    except TypeError:  # an unhashable JSON value tested for membership
      good = False
    if not good:
      raise checkpoint.CheckpointError(
          f"{path / 'meta.json'} is damaged: {key} must be {want}, got "
          f"{description[key]!r}; save the model again")
  shape = description["image_shape"]
  if shape is not None and math.prod(shape) != description["input_dim"]:
    raise checkpoint.CheckpointError(
        f"{path / 'meta.json'} is damaged: image_shape {shape} does not hold input_dim="
        f"{description['input_dim']} values; save the model again")


def _description(path: pathlib.Path, saved: dict) -> dict:
  """The model description in ``saved`` (a ``meta.json``), checked."""
  if saved.get("format", FORMAT) != FORMAT:
    raise checkpoint.CheckpointError(
        f"{path} holds a {saved.get('format')!r} folder, not a jdec model")
  version = saved.get("format_version", 0)  # 0: experiments' model/ of jdec 0.1.0
  if not isinstance(version, int) or isinstance(version, bool):
    raise checkpoint.CheckpointError(f"{path / 'meta.json'} has format_version {version!r}, "
                                     "not an integer: the file is damaged")
  if version > FORMAT_VERSION:
    raise checkpoint.CheckpointError(
        f"{path} was written by jdec {saved.get('jdec_version', '?')} in model format "
        f"version {version!r}; this jdec ({_version()}) reads versions up to "
        f"{FORMAT_VERSION}: upgrade jdec to load it")
  if "n_clusters" not in saved:
    raise checkpoint.CheckpointError(
        f"{path} holds a pretrained autoencoder, not a clustering model: start a run "
        "from it with --config.pretrained (or fit(..., ae_params=...)), or load a model/ folder")
  description = {"arch": "dense", "recipe": None, **saved}
  missing = [k for k in trained.DESCRIPTION_KEYS if k not in description]
  if missing:
    raise checkpoint.CheckpointError(f"{path / 'meta.json'} lacks {missing}: it is not a "
                                     "complete jdec model description; save the model again")
  _check_values(path, description)
  return {k: description[k] for k in trained.DESCRIPTION_KEYS}


def load(path) -> trained.TrainedModel:
  """Reads a model folder written by ``save`` (or an experiment's ``model/``).

  Raises:
    FileNotFoundError: nothing at ``path``.
    jdec.checkpoint.CheckpointError: ``path`` is not a jdec model, is damaged,
      or was written in a newer format; the message names the file.
  """
  path = pathlib.Path(path).expanduser().absolute()
  if not path.exists():
    raise FileNotFoundError(f"no model at {path}: give the folder jdec.save or an "
                            "experiment wrote (e.g. WORKDIR/model)")
  if not path.is_dir():
    raise checkpoint.CheckpointError(f"{path} is a file, not a model folder: give the folder "
                                     "jdec.save or an experiment wrote (e.g. WORKDIR/model)")
  if not (path / "meta.json").is_file() or not (path / "params").is_dir():
    raise checkpoint.CheckpointError(
        f"{path} is not a jdec model folder (expected {path / 'meta.json'} and "
        f"{path / 'params'}, as jdec.save and the experiments' model/ folders hold)")
  try:
    saved = json.loads((path / "meta.json").read_text())
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise checkpoint.CheckpointError(f"{path / 'meta.json'} is damaged ({e}); "
                                     "save the model again") from None
  if not isinstance(saved, dict):
    raise checkpoint.CheckpointError(f"{path / 'meta.json'} is not a jdec model "
                                     "description (not a JSON object)")
  description = _description(path, saved)
  params, _ = checkpoint.load(path)  # names what is missing or unreadable
  try:
    model = trained.TrainedModel(params, description)
    expected = jax.eval_shape(  # shapes only: a damaged input_dim allocates nothing
        lambda x: model.module.init(jax.random.key(0), x, decode=True)["params"],
        jax.ShapeDtypeStruct((1, model.n_features_in), np.float32))
  except (ValueError, TypeError, KeyError) as e:
    raise checkpoint.CheckpointError(f"{path / 'meta.json'} describes no model jdec can "
                                     f"build: {e}") from None
  shapes = lambda tree: {jax.tree_util.keystr(p): tuple(a.shape)
                         for p, a in jax.tree_util.tree_flatten_with_path(tree)[0]}
  if shapes(expected) != shapes(model.params):
    raise checkpoint.CheckpointError(
        f"the parameters in {path / 'params'} do not fit the model {path / 'meta.json'} "
        "describes; the folder is damaged or was assembled by hand")
  if not all(np.isfinite(a).all() for a in jax.tree.leaves(model.params)):
    raise checkpoint.CheckpointError(
        f"the parameters in {path / 'params'} hold NaN or infinite values (training never "
        "saves those): the folder is damaged; save the model again or retrain it")
  return model
