"""What every experiment does with its data: fit, score, and fill the work directory.

A work directory ends up holding ``config.json``, ``metrics.jsonl`` (one line
per log point, written as it happens), ``autoencoder/`` (the pretrained
autoencoder, reusable with ``--config.pretrained``), ``model/`` (the trained
clustering model, read by ``jdec.load`` and ``python -m jdec.predict``),
the pictures of ``jdec.report`` (``confusion_matrix.png``, ``cluster_gallery.png``
for images, ``embedding.png``, ``training_curves.png``) and ``results.json``, plus
``kmeans_raw.json`` (the raw-input baseline). While the run goes on it holds
``checkpoints/{pretrain,kmeans,dec}/`` (every ``checkpoint_every`` epochs or
blocks, the k-means result, every ``checkpoint_every_updates`` DEC updates),
from which ``--config.resume=True`` continues an interrupted run to the
result an uninterrupted one gives; ``results.json``, written last, marks the
run finished, and the checkpoints are then removed.

Several processes (``--config.distributed=True``, one process per host, all
started with the same command) train as one data-parallel program; only
process 0 writes the work directory, which thus needs to exist on the first
host only. Every process loads the data itself and they check that they got
the same.
"""

import contextlib
import hashlib
import json
import pathlib
import platform
import time

import jax
import ml_collections
import numpy as np
from absl import logging

import jdec
from jdec import (checkpoint, data, metrics, parallel, plots, recipes, report, saving,
                  validation)
from jdec import results as results_lib
from jdec.experiments import config as experiment_config
from jdec.experiments import tables
from jdec.experiments import workdir as workdir_lib

def _same_data(x: np.ndarray, y) -> None:
  """Refuses to go on if the processes loaded different data (a collective)."""
  digest = hashlib.sha256(np.ascontiguousarray(x).tobytes())
  if y is not None:
    digest.update(np.ascontiguousarray(y).tobytes())
  differ = parallel.differing_processes(np.frombuffer(digest.digest(), np.uint8))
  if differ:
    raise data.DataError(
        f"process(es) {differ} loaded other data than process 0 (shape {x.shape} there); "
        "give every host the same dataset files (or the same tensorflow-datasets version)")




def _load_pretrained(path, meta: dict, seeds=None):
  """A saved autoencoder, after checking it was trained for this data, model and scaling.

  For a sweep, ``path`` is an earlier sweep's work directory and the result
  stacks its ``seed_<s>/autoencoder`` of every seed ``s``, in order.
  """
  if seeds:
    folders = [pathlib.Path(path) / f"seed_{s}" / "autoencoder" for s in seeds]
    missing = [str(f) for f in folders if not f.is_dir()]
    if missing:
      raise checkpoint.CheckpointError(
          f"with --config.seeds, --config.pretrained must be an earlier sweep's work "
          f"directory holding seed_<s>/autoencoder for every seed; missing: {missing[0]}")
    loaded = [_load_pretrained(f, meta) for f in folders]
    return jax.tree.map(lambda *a: np.stack(a), *loaded)
  ae_params, saved = checkpoint.load(path)
  saved = {"arch": "dense", **saved}  # autoencoders saved before conv models existed
  model_keys = (("hidden_dims",) if meta["arch"] == "dense"
                else ("conv_filters", "embed_dim", "image_shape"))
  for key in ("input_dim", "arch", *model_keys, "input_scaling"):
    if saved.get(key) != meta[key]:
      raise checkpoint.CheckpointError(
          f"{path} holds an autoencoder trained with {key}={saved.get(key)!r}, "
          f"but this run uses {key}={meta[key]!r}")
  return ae_params


def _absolute_paths(config):
  """A copy of ``config`` whose file and folder settings are absolute paths, so that
  ``config.json`` names them from anywhere (``python -m jdec.report``, a resume)."""
  config = config.copy_and_resolve_references()
  for key in workdir_lib.PATH_SETTINGS:
    if config.get(key):
      config[key] = str(pathlib.Path(config[key]).expanduser().absolute())
  return config


def _placement(config) -> parallel.Placement:
  if config.stream_steps < 1:
    raise ValueError(f"stream_steps must be >= 1, got {config.stream_steps}")
  return parallel.Placement(parallel.make_mesh(), stream=config.stream,
                            stream_steps=config.stream_steps)


def _system() -> dict:
  return {"device": str(jax.devices()[0].device_kind), "device_count": jax.device_count(),
          "process_count": jax.process_count(), "platform": jax.default_backend(),
          "host": platform.node(), "jax_version": jax.__version__,
          "jdec_version": jdec.__version__, "date": time.strftime("%Y-%m-%d")}


def run(config: ml_collections.ConfigDict, workdir) -> dict:
  """Runs the experiment ``config`` and writes everything into ``workdir``."""
  logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
  config = _absolute_paths(config)
  overrides = {k: config[k] for k in experiment_config.RECIPE_SECTIONS}
  recipe = recipes.resolve(config.recipe, overrides, config.dataset)
  seeds = validation.check_seeds(config.seeds) if config.seeds else None
  if config.embedding_map not in plots.MAP_METHODS:
    raise ValueError(f"embedding_map must be one of {list(plots.MAP_METHODS)}, got "
                     f"{config.embedding_map!r}")
  placement = _placement(config)
  writer = parallel.is_writer()
  # Everything that can fail on bad input fails before anything is written.
  x, y, image_shape = parallel.on_every_process(lambda: data.load_experiment(config),
                                                 USER_ERRORS)
  if jax.process_count() > 1:
    _same_data(x, y)
  if config.n_clusters is None:
    raise ValueError("give the number of clusters: --config.n_clusters=K")
  validation.check_n_clusters(config.n_clusters)
  if x.shape[0] < config.n_clusters:
    raise ValueError(f"the data has {x.shape[0]} rows, fewer than n_clusters="
                     f"{config.n_clusters}")
  if recipe.model.arch == "conv" and image_shape is None:
    raise ValueError(f"recipe {config.recipe!r} uses the convolutional autoencoder, which "
                     "needs images: give their shape with --config.image_shape=h,w,c, or "
                     "store the data as images [n, h, w, c]")
  meta = {"input_dim": int(x.shape[1]), "arch": recipe.model.arch,
          "hidden_dims": list(recipe.model.hidden_dims),
          "conv_filters": list(recipe.model.conv_filters), "embed_dim": recipe.model.embed_dim,
          "image_shape": list(image_shape) if image_shape else None,
          "kernel_init": recipe.model.kernel_init, "input_scaling": recipe.input_scaling,
          "compute_dtype": recipe.model.compute_dtype, "dataset": config.dataset,
          "seed": config.seed}
  ae_params = _load_pretrained(config.pretrained, meta, seeds) if config.pretrained else None

  def prepare():  # the writer's decision, shared
    path, found = workdir_lib.prepare(workdir, config)
    return str(path), found

  workdir, found = parallel.from_writer(prepare, USER_ERRORS)
  workdir = pathlib.Path(workdir)
  if found == workdir_lib.FINISHED:
    return parallel.from_writer(lambda: _finished(workdir), USER_ERRORS)
  resuming = found == workdir_lib.RESUME
  checkpoints = workdir_lib.run_checkpoints(config, workdir)
  if writer and not resuming:
    workdir_lib.write_json(workdir / "config.json", {
        "experiment": config.to_dict(), "resolved": recipe.to_dict(),
        "n_samples": int(x.shape[0])}, default=str)
  results = {"dataset": config.dataset, "recipe": config.recipe,
             "n_samples": int(x.shape[0]), "n_clusters": config.n_clusters,
             "stream": config.stream}
  if seeds:
    results["seeds"] = seeds
  else:
    results["seed"] = config.seed
  if resuming:
    where, keep = workdir_lib.resume_point(checkpoints, recipe, workdir)
    results.update(where)
    parallel.from_writer(lambda: workdir_lib.restart_metrics(workdir, keep), USER_ERRORS)

  def save(path, params, meta_):
    if writer:  # params: numpy, or replicated arrays (whose host copy is local)
      workdir_lib.save_once(path, params, meta_, resuming=resuming)

  def seed_dir(seed):
    return workdir / f"seed_{seed}" if seeds else workdir

  def save_pretrained(params):
    if not seeds:
      save(workdir / "autoencoder", params, meta)
      return
    host = jax.tree.map(parallel.to_host, params)  # local: slicing global arrays is not
    for i, seed in enumerate(seeds):
      save(seed_dir(seed) / "autoencoder", jax.tree.map(lambda a: a[i], host),
           {**meta, "seed": seed})

  if config.pretrained:
    results["pretrained_from"] = str(pathlib.Path(config.pretrained).absolute())
    save_pretrained(ae_params)  # keep it with this run

  with contextlib.ExitStack() as stack:
    log = None
    if writer:
      log = _jsonl_logger(stack.enter_context(
          open(workdir / "metrics.jsonl", "a", encoding="utf-8")))

    raw = {}
    if writer and config.kmeans_raw:  # k-means on host data runs on this host alone
      raw = _kmeans_raw(config, recipe, x, y, seeds, workdir, log)
    fitted = jdec.fit(
        x, config.n_clusters, recipe=config.recipe, config=overrides,
        seed=config.seed, seeds=seeds, y=y, ae_params=ae_params, log_fn=log,
        progress=config.progress and writer, on_pretrained=save_pretrained,
        placement=placement, checkpoints=checkpoints, image_shape=image_shape,
        dataset=config.dataset,
    )
  system = _system()
  per_seed = []
  for seed, result in zip(seeds or [config.seed], fitted.results if seeds else [fitted]):
    folder = seed_dir(seed)
    model = result.to_model()  # jdec.load(folder / "model") reads it back
    save(folder / "model", model.params,
         saving.meta(model, dataset=config.dataset, seed=seed))
    one = {**{k: v for k, v in results.items() if k != "seeds"}, "seed": seed,
           **raw.get(seed, {}), **result.scores,
           "iterations": result.iterations, "stopped_by": result.stopped_by,
           "time_pretrain_s": result.timings["pretrain"],
           "time_kmeans_s": result.timings["kmeans"], "time_dec_s": result.timings["dec"],
           **system}
    if seeds and writer:
      workdir_lib.write_json(folder / "results.json", one)
    per_seed.append(one)
  if not seeds:
    results = per_seed[0]
    table = tables.summary_table(results)
  else:
    results.update({
        "summary": results_lib.summarize(
            [{k: r[k] for k in r if k in tables.SCORED} for r in per_seed]),
        "per_seed": per_seed,
        "time_pretrain_s": fitted.timings["pretrain"],
        "time_kmeans_s": fitted.timings["kmeans"], "time_dec_s": fitted.timings["dec"],
        **system})
    table = tables.sweep_table(results)
  if writer:
    print(table)
    records = report.read_records(workdir)
    for seed, result in zip(seeds or [config.seed], fitted.results if seeds else [fitted]):
      try:  # a picture that fails costs only itself
        report.draw(seed_dir(seed), result, x, y, records, seed=seed if seeds else None,
                    map_method=config.embedding_map,
                    title=f"{config.dataset} {config.recipe} seed {seed}")
      except Exception as e:  # pylint: disable=broad-except
        logging.warning("could not draw the pictures of seed %s: %s: %s (the results are "
                        "saved; python -m jdec.report %s draws them again)", seed,
                        type(e).__name__, e, workdir)
    # results.json marks the run finished: written last, whole, and only then are
    # the checkpoints removed (a run cut off in between has nothing left to do).
    workdir_lib.write_json(workdir / "results.json", results)
    if checkpoints is not None:
      workdir_lib.remove_checkpoints(workdir)
  return results


def _finished(workdir) -> dict:
  """The results of the finished run in ``workdir`` (resumed once more): its
  checkpoints, if a cut left them, are removed; nothing else is touched."""
  path = workdir / "results.json"
  results = workdir_lib.read_json(path)
  try:
    table = tables.sweep_table(results) if "per_seed" in results else tables.summary_table(
        results)
  except (KeyError, TypeError, ValueError, AttributeError):
    raise ValueError(f"{path} is damaged: it is not the results of a jdec run; move it "
                     "away or restore it from a copy (nothing was changed)") from None
  workdir_lib.remove_checkpoints(workdir)
  print(f"{workdir} holds a finished run; its results:")
  print(table)
  return results


def _jsonl_logger(file):
  """A ``log_fn`` appending each record to ``file`` as one JSON line, flushed."""

  def log(record):
    file.write(json.dumps(record) + "\n")
    file.flush()

  return log


def _kmeans_raw(config, recipe, x, y, seeds, workdir, log) -> dict:
  """k-means on the raw input per seed: the baseline, kept in ``kmeans_raw.json``."""
  path = workdir / "kmeans_raw.json"
  if path.exists():  # a resumed run: computed before the interruption
    return workdir_lib.read_kmeans_raw(path)
  raw = {}
  for seed in seeds or [config.seed]:
    t0 = time.perf_counter()
    km = jdec.kmeans(jax.random.key(seed), x, config.n_clusters, **recipe.kmeans)
    labels = np.asarray(km.labels)
    raw[seed] = {"time_kmeans_raw_s": time.perf_counter() - t0}
    if y is not None:  # scores need the true classes
      raw[seed].update({"kmeans_raw_acc": metrics.cluster_acc(y, labels),
                        "kmeans_raw_nmi": metrics.nmi(y, labels)})
    log({"phase": "kmeans_raw", "seed": seed, "acc": raw[seed].get("kmeans_raw_acc")})
  workdir_lib.write_json(path, raw)
  return raw


USER_ERRORS = (data.DataError, checkpoint.CheckpointError, FileExistsError, KeyError,
               TypeError, ValueError, FloatingPointError)


