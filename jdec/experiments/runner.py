"""What every experiment does with its data: fit, score, and fill the work directory.

A work directory ends up holding ``config.json``, ``metrics.jsonl`` (one line
per log point, written as it happens), ``autoencoder/`` (the pretrained
autoencoder, reusable with ``--config.pretrained``), ``model/`` (the trained
clustering model), ``confusion_matrix.png`` and ``results.json``.
"""

import json
import os
import pathlib
import platform
import time

import jax
from absl import app, flags, logging
from ml_collections import config_flags
import ml_collections
import numpy as np
from ml_collections import config_dict

import jdec
from jdec import api, checkpoint, data, metrics, plots, recipes

RECIPE_SECTIONS = ("model", "input_scaling", "pretrain", "kmeans", "dec")


def recipe_overrides() -> ml_collections.ConfigDict:
  """Every recipe setting as an unset placeholder: ``--config.dec.tol=...`` overrides it."""

  def placeholders(value):
    if isinstance(value, dict):
      return {k: placeholders(v) for k, v in value.items()}
    return config_dict.placeholder(type(value))

  base = recipes.get_recipe().to_dict()
  return ml_collections.ConfigDict({k: placeholders(base[k]) for k in RECIPE_SECTIONS})


def base_config(dataset: str, n_clusters: int) -> ml_collections.ConfigDict:
  """Settings common to every experiment; recipe settings default to the recipe's."""
  config = recipe_overrides()
  config.dataset = dataset
  config.recipe = "dec_keras"
  config.seed = 0
  config.n_clusters = n_clusters
  config.data_dir = config_dict.placeholder(str)
  config.n_samples = config_dict.placeholder(int)  # first n rows only (quick runs)
  config.pretrained = config_dict.placeholder(str)  # a saved autoencoder/ folder
  config.kmeans_raw = True  # score k-means on the raw input (the tutorial's baseline)
  config.progress = True
  return config


def _prepare_workdir(workdir) -> pathlib.Path:
  workdir = pathlib.Path(workdir).expanduser().absolute()
  if (workdir / "results.json").exists() or (workdir / "autoencoder").exists():
    raise FileExistsError(
        f"{workdir} already holds a run; pick a new --workdir (reuse its "
        f"autoencoder with --config.pretrained={workdir / 'autoencoder'})"
    )
  workdir.mkdir(parents=True, exist_ok=True)
  return workdir


def _load(config) -> tuple[np.ndarray, np.ndarray]:
  x, y = data.load(config.dataset, config.data_dir)
  if config.n_samples is not None:
    x, y = x[: config.n_samples], y[: config.n_samples]
  return x, y


def _load_pretrained(path, meta: dict):
  """A saved autoencoder, after checking it was trained for this data and scaling."""
  ae_params, saved = checkpoint.load(path)
  for key in ("input_dim", "hidden_dims", "input_scaling"):
    if saved.get(key) != meta[key]:
      raise checkpoint.CheckpointError(
          f"{path} holds an autoencoder trained with {key}={saved.get(key)!r}, "
          f"but this run uses {key}={meta[key]!r}")
  return ae_params


def run(config: ml_collections.ConfigDict, workdir) -> dict:
  """Runs the experiment ``config`` and writes everything into ``workdir``."""
  logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
  overrides = {k: config[k] for k in RECIPE_SECTIONS}
  recipe = api.resolve_config(config.recipe, overrides)
  # Everything that can fail on bad input fails before anything is written.
  x, y = _load(config)
  meta = {"input_dim": int(x.shape[1]), "hidden_dims": list(recipe.model.hidden_dims),
          "kernel_init": recipe.model.kernel_init, "input_scaling": recipe.input_scaling,
          "dataset": config.dataset, "seed": config.seed}
  ae_params = _load_pretrained(config.pretrained, meta) if config.pretrained else None
  workdir = _prepare_workdir(workdir)
  (workdir / "config.json").write_text(json.dumps(
      {"experiment": config.to_dict(), "resolved": recipe.to_dict(),
       "n_samples": int(x.shape[0])}, indent=2, sort_keys=True, default=str))
  results = {"dataset": config.dataset, "recipe": config.recipe, "seed": config.seed,
             "n_samples": int(x.shape[0]), "n_clusters": config.n_clusters}
  if config.pretrained:
    results["pretrained_from"] = str(config.pretrained)
    checkpoint.save(workdir / "autoencoder", ae_params, meta)  # keep it with this run

  with open(workdir / "metrics.jsonl", "a", encoding="utf-8") as metrics_file:

    def log(record):
      metrics_file.write(json.dumps(record) + "\n")
      metrics_file.flush()

    if config.kmeans_raw:
      t0 = time.perf_counter()
      raw = jdec.kmeans(jax.random.key(config.seed), x, config.n_clusters, **recipe.kmeans)
      results["kmeans_raw_acc"] = metrics.cluster_acc(y, np.asarray(raw.labels))
      results["kmeans_raw_nmi"] = metrics.nmi(y, np.asarray(raw.labels))
      results["time_kmeans_raw_s"] = time.perf_counter() - t0
      log({"phase": "kmeans_raw", "acc": results["kmeans_raw_acc"]})
    result = jdec.fit(
        x, config.n_clusters, recipe=config.recipe, config=overrides, seed=config.seed,
        y=y, ae_params=ae_params, log_fn=log, progress=config.progress,
        on_pretrained=lambda p: checkpoint.save(workdir / "autoencoder", p, meta),
    )
  checkpoint.save(workdir / "model", result.state.params,
                  {**meta, "n_clusters": config.n_clusters, "alpha": recipe.model.alpha,
                   "input_scale": result.input_scale})
  plots.save_confusion_matrix(workdir / "confusion_matrix.png", y, result.labels,
                              title=f"{config.dataset} {config.recipe} seed {config.seed}")
  results.update(result.scores)
  results.update({
      "iterations": result.iterations, "stopped_by": result.stopped_by,
      "time_pretrain_s": result.timings["pretrain"],
      "time_kmeans_s": result.timings["kmeans"], "time_dec_s": result.timings["dec"],
      "device": str(jax.devices()[0].device_kind), "platform": jax.default_backend(),
      "host": platform.node(), "jax_version": jax.__version__,
      "jdec_version": jdec.__version__, "date": time.strftime("%Y-%m-%d"),
  })
  (workdir / "results.json").write_text(json.dumps(results, indent=2, sort_keys=True))
  print(summary_table(results))
  return results


USER_ERRORS = (data.DataError, checkpoint.CheckpointError, FileExistsError, KeyError,
               TypeError, ValueError, FloatingPointError)


def main(config: ml_collections.ConfigDict, workdir) -> dict:
  """``run`` for the command line: a user's mistake ends with its message, no traceback."""
  try:
    return run(config, workdir)
  except USER_ERRORS as e:
    if os.environ.get("JDEC_TRACEBACK"):
      raise
    message = e.args[0] if isinstance(e, KeyError) and e.args else e
    raise SystemExit(f"error: {message}\n(set JDEC_TRACEBACK=1 to see where it came from)") from None


def cli(get_config) -> None:
  """The command line of an experiment: ``--workdir DIR`` plus ``--config.*`` overrides."""
  flags.DEFINE_string("workdir", None, "Directory for config, metrics, checkpoints, results.")
  flags.mark_flag_as_required("workdir")
  config_flags.DEFINE_config_dict("config", get_config())

  def entry(argv):
    if len(argv) > 1:
      raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    main(flags.FLAGS.config, flags.FLAGS.workdir)

  app.run(entry)


def summary_table(results: dict) -> str:
  """A short plain-text table of the scores and timings."""
  rows = [("k-means on raw input ACC", results.get("kmeans_raw_acc")),
          ("AE + k-means ACC", results.get("ae_kmeans_acc")),
          ("DEC ACC", results.get("acc")), ("DEC NMI (arithmetic)", results.get("nmi")),
          ("DEC NMI (geometric)", results.get("nmi_geometric")),
          ("DEC ARI", results.get("ari")),
          ("DEC iterations", results.get("iterations")),
          ("stopped by", results.get("stopped_by")),
          ("pretraining (s)", results.get("time_pretrain_s")),
          ("k-means (s)", results.get("time_kmeans_s")),
          ("DEC (s)", results.get("time_dec_s"))]
  lines = [f"{results['dataset']} | recipe {results['recipe']} | seed {results['seed']} "
           f"| n={results['n_samples']} | {results.get('device')}"]
  for name, value in rows:
    if value is not None:
      lines.append(f"  {name:<26} {value:.4f}" if isinstance(value, float) else f"  {name:<26} {value}")
  return "\n".join(lines)
