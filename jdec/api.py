"""``fit``: pretrain an autoencoder, initialise the centres by k-means, run DEC.

One path for every run: the phases below always train a stack of S runs
(``jdec.runs``), and one seed is a stack of one.
"""

import functools
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from jdec import (augment, checkpoint, cluster, inference, lloyd, metrics, models,
                  parallel, pretrain, recipes, runs, train, validation)
from jdec.results import FitResult, SweepResult, summarize


def pretrain_autoencoder(keys, x_dev, model, cfg, *, log_fn=None, progress=True,
                         placement=None, checkpoints=None, augment_fn=None):
  """Initialises and pretrains S autoencoders (``keys [S]``) on ``x_dev`` as
  ``cfg.pretrain`` says.

  ``checkpoints`` (a ``jdec.checkpoint.Progress``) makes pretraining
  resumable (epochs end to end, blocks of ``log_every`` steps layer-wise);
  ``augment_fn`` transforms the batches when ``cfg.pretrain.augment`` asks
  for it.

  Returns:
    The parameters, ``[S, ...]`` on every leaf, and the history.
  """
  init_keys, data_keys = jax.vmap(jax.random.split, out_axes=1)(keys)
  params = jax.vmap(lambda k: models.init_autoencoder(k, model, x_dev.shape[1]))(init_keys)
  p = cfg.pretrain
  batch_size = min(p.batch_size, x_dev.shape[0])
  common = dict(log_fn=log_fn, progress=progress, placement=placement)
  if p.method == "end_to_end":
    return pretrain.pretrain_end_to_end(
        data_keys, x_dev, model, params, num_epochs=p.num_epochs, batch_size=batch_size,
        learning_rate=p.learning_rate, momentum=p.momentum, optimizer=p.optimizer,
        augment=augment_fn if p.augment else None, checkpoints=checkpoints, **common,
    )
  if p.method == "layerwise":
    return pretrain.pretrain_layerwise(
        data_keys, x_dev, model, params, layer_steps=p.layer_steps,
        finetune_steps=p.finetune_steps, batch_size=batch_size,
        learning_rate=p.learning_rate, lr_decay_every=p.lr_decay_every,
        momentum=p.momentum, dropout_rate=p.dropout_rate, log_every=p.log_every,
        checkpoints=checkpoints, **common,
    )
  raise ValueError(f"unknown pretrain.method {p.method!r}; use 'end_to_end' or 'layerwise'")


def _embed_runs(model, ae_params, x, placement) -> jax.Array:
  """``z [S, n, e]``: every run's embedding of resident or streamed ``x``."""
  fn = runs.vmap(functools.partial(inference.embed, model), in_axes=(0, None))
  if not placement.stream:
    return fn(ae_params, x)
  piece = 65_536
  return jnp.concatenate([fn(ae_params, placement.put(x[i:i + piece]))
                          for i in range(0, x.shape[0], piece)], axis=-2)


def fit(
    x,
    n_clusters: int,
    *,
    recipe: str = "dec_keras",
    config=None,
    seed: int = 0,
    seeds=None,
    y=None,
    ae_params=None,
    log_fn: Callable[[dict], None] | None = None,
    on_pretrained: Callable[[Any], None] | None = None,
    progress: bool = True,
    placement: parallel.Placement | None = None,
    checkpoints=None,
    image_shape=None,
    dataset: str | None = None,
):
  """Pretrains an autoencoder, initialises centres by k-means and runs DEC.

  Args:
    x: data ``[n, d]``, or images ``[n, h, w, c]`` (``[n, h, w]`` for one
      channel), finite; scale it as the recipe expects (MNIST pixels in
      ``[0, 1]``; ``paper`` rescales itself).
    n_clusters: number of clusters ``k >= 1``, ``<= n``.
    recipe: one of ``jdec.recipes.RECIPES``: ``"dec_keras"``, ``"paper"``,
      ``"idec"``, ``"dcec"``, ``"dec_da"``, ``"conv_dec_da"``.
    config: nested mapping of settings laid over the recipe, e.g.
      ``{"pretrain": {"num_epochs": 50}, "dec": {"update_interval": 100}}``.
    seed: seeds the root key; streams for init, k-means and data order are
      split from it.
    seeds: a list of seeds to train as one vmapped program instead of
      ``seed`` (pretraining, k-means and DEC, each run stopping on its own);
      ``fit`` then returns a ``SweepResult``.
    y: optional ``[n]`` true labels, used only to score the run.
    ae_params: pretrained autoencoder parameters to start from (skips
      pretraining); for a sweep, one set per seed stacked on a leading axis.
    log_fn: called with every log record (pretraining epochs, DEC updates);
      a sweep's records carry their ``"seed"``.
    on_pretrained: called with the autoencoder parameters as soon as
      pretraining ends (to save them before the clustering phase); a sweep
      passes them stacked, ``[S, ...]`` on every leaf.
    progress: show progress bars.
    placement: devices and data placement (``jdec.parallel.Placement``);
      default: data parallel over all devices, data kept on them.
    checkpoints: a ``jdec.checkpoint.RunCheckpoints`` (usually
      ``RunCheckpoints.in_folder(folder)``) to save every phase as it goes
      (pretraining every few epochs, the k-means result, DEC every few
      updates) and resume from the latest after an interruption: the same
      data, seeds and settings then give the same labels, scores and
      iterations as an uninterrupted run, and ``timings`` include the earlier
      runs' seconds. A ``jdec.checkpoint.Progress`` checkpoints pretraining
      only.
    image_shape: ``(h, w, c)`` of flat rows ``x [n, h*w*c]`` that are images
      (the conv recipes need it; augmentation assumes square one-channel
      images without it).
    dataset: ``"mnist"`` or ``"usps"`` to take the recipe's settings for that
      dataset (update interval, DEC-keras's USPS pretraining), or ``"digits"``
      for jdec's scaled-down settings on scikit-learn's 8x8 digits (batches of
      64, 100 end-to-end pretraining epochs); other names change nothing.

  Returns:
    A ``FitResult``, or a ``SweepResult`` when ``seeds`` is given.
  """
  n_clusters = validation.check_n_clusters(n_clusters)
  x, image_shape = validation.check_images(x, image_shape)
  x = validation.check_data(x, n_clusters=n_clusters)
  if y is not None:
    y = validation.check_labels(y, x.shape[0])
  cfg = recipes.resolve(recipe, config, dataset)
  sweep = seeds is not None
  seeds = validation.check_seeds(seeds) if sweep else [seed]
  placement = placement or parallel.default_placement()
  scale = recipes.input_scale(x, cfg.input_scaling)
  x_dev = placement.put_data(x * np.float32(scale))
  model = models.build_autoencoder(cfg.model, x.shape[1], image_shape)
  augment_fn = None
  if cfg.pretrain.augment or cfg.dec.augment:
    augment_fn = functools.partial(
        augment.augment_flat, image_shape=image_shape or augment.infer_image_shape(x.shape[1]),
        max_rotation_deg=float(cfg.augment.max_rotation_deg),
        max_shift=float(cfg.augment.max_shift))
  keys = jnp.stack([jax.random.split(jax.random.key(s), 3) for s in seeds])  # [S, 3]
  pretrain_keys, kmeans_keys, dec_keys = keys[:, 0], keys[:, 1], keys[:, 2]
  timings, history = {}, {"pretrain": [], "dec": []}

  def run_log(record):  # a run's records name its seed
    log_fn(_with_seed(record, seeds, sweep))

  checkpoints = checkpoint.as_run_checkpoints(checkpoints)
  t0 = time.perf_counter()
  if ae_params is None:
    ae_params, history["pretrain"] = pretrain_autoencoder(
        pretrain_keys, x_dev, model, cfg, log_fn=log_fn and run_log, progress=progress,
        placement=placement, checkpoints=checkpoints.pretrain, augment_fn=augment_fn)
    if on_pretrained:
      on_pretrained(ae_params if sweep
                    else runs.take(jax.tree.map(parallel.to_host, ae_params), 0))
  elif checkpoints.pretrain is not None:
    raise ValueError("checkpoints.pretrain resumes pretraining; with ae_params there is "
                     "none to run (leave it out: RunCheckpoints.in_folder(..., "
                     "pretrain=False))")
  else:
    _check_ae_params(ae_params, model, x.shape[1], count=len(seeds) if sweep else None)
    if not sweep:
      ae_params = jax.tree.map(lambda a: np.asarray(a)[None], ae_params)
    ae_params = placement.put(ae_params)
  jax.block_until_ready(ae_params)
  timings["pretrain"] = time.perf_counter() - t0 + (
      checkpoints.pretrain.resumed_wall_s if checkpoints.pretrain is not None else 0.0)

  t0 = time.perf_counter()
  km = _kmeans_runs(kmeans_keys, model, ae_params, x_dev, n_clusters, cfg.kmeans, placement,
                    checkpoints.kmeans)
  timings["kmeans"] = time.perf_counter() - t0 + (
      checkpoints.kmeans.resumed_wall_s if checkpoints.kmeans is not None else 0.0)

  t0 = time.perf_counter()
  clustering = models.ClusteringModel(model, n_clusters, cfg.model.alpha)
  d = cfg.dec
  state = placement.put(runs.create_states(
      clustering.apply, jax.vmap(models.clustering_params)(ae_params, km.centroids),
      train.optimizer(d.optimizer, d.learning_rate, d.momentum)))
  state, history["dec"], out = cluster.run(
      dec_keys, state, x_dev, batch_size=min(d.batch_size, x.shape[0]),
      update_interval=d.update_interval, tol=d.tol, maxiter=d.maxiter,
      objective=d.objective, kl_weight=d.kl_weight,
      augment=augment_fn if d.augment else None,
      initial_labels=parallel.to_host(km.labels), y=y, log_fn=log_fn and run_log,
      progress=progress, placement=placement, names=[f"seed {s}" for s in seeds],
      checkpoints=checkpoints.dec,
  )
  jax.block_until_ready(state)
  timings["dec"] = time.perf_counter() - t0 + (
      checkpoints.dec.resumed_wall_s if checkpoints.dec is not None else 0.0)

  def result(r: int) -> FitResult:
    km_r = jax.tree.map(lambda a: parallel.to_host(a[r]), km)
    labels = out["labels"][r]
    scores = {}
    if y is not None:
      scores.update({f"ae_kmeans_{k}": v
                     for k, v in metrics.scores(y, np.asarray(km_r.labels)).items()})
      scores.update(metrics.scores(y, labels))
    hist = {phase: [_with_seed(h, seeds, sweep) for h in records if h["run"] == r]
            for phase, records in history.items()}
    return FitResult(
        labels=labels, q=np.exp(parallel.to_host(out["log_q"][r])),
        state=runs.take(state, r), model=clustering,
        ae_params=runs.take(ae_params, r), kmeans=km_r, history=hist,
        scores=scores, timings=timings, iterations=out["iterations"][r],
        stopped_by=out["stopped_by"][r], input_scale=scale, config=cfg,
        image_shape=image_shape,
    )

  if not sweep:
    return result(0)
  results = [result(r) for r in range(len(seeds))]
  return SweepResult(seeds=seeds, results=results,
                     summary=summarize([r.scores for r in results]), timings=timings)


def _kmeans_runs(keys, model, ae_params, x_dev, n_clusters: int, kmeans_cfg, placement,
                 checkpoints) -> lloyd.KMeansResult:
  """Every run's k-means on its embedding, ``[S, ...]`` on every field; read from
  ``checkpoints`` (a ``jdec.checkpoint.Progress``) when it holds the result,
  saved into it otherwise."""
  count, n = keys.shape[0], x_dev.shape[0]
  kmeans = lambda k, z_: lloyd.kmeans(k, z_, n_clusters, **kmeans_cfg)
  if checkpoints is not None:
    shapes = jax.eval_shape(kmeans, keys[0], jax.ShapeDtypeStruct((n, model.embed_dim),
                                                                  jnp.float32))
    template = {k: np.zeros((count, *a.shape), a.dtype) for k, a in shapes._asdict().items()}
    restored = checkpoints.restore_tree(template, fit_key=("centroids",))
    if restored is not None:
      checkpoints.close()
      return placement.put(lloyd.KMeansResult(**restored[1]))
  t0 = time.perf_counter()
  z = _embed_runs(model, ae_params, x_dev, placement)
  km = runs.vmap(kmeans, in_axes=(0, 0))(keys, z)
  jax.block_until_ready(km)
  if checkpoints is not None:
    checkpoints.save_tree(1, km._asdict(), {"wall_s": time.perf_counter() - t0}, final=True)
    checkpoints.close()
  return km


def _check_ae_params(ae_params, model, input_dim, count: int | None = None):
  """Raises unless ``ae_params`` fit ``model`` (with a leading ``[count]`` axis if given)."""
  expected = jax.eval_shape(lambda: models.init_autoencoder(jax.random.key(0), model, input_dim))
  got = jax.tree.map(lambda a: (tuple(a.shape)), ae_params)
  want = jax.tree.map(lambda a: ((count,) if count else ()) + tuple(a.shape), expected)
  same_tree = jax.tree.structure(ae_params) == jax.tree.structure(expected)
  if count and same_tree and got != want:
    raise ValueError(f"a sweep of {count} seeds needs one pretrained autoencoder per seed, "
                     "stacked on a leading axis of every parameter (as fit(..., seeds=...) "
                     "returns them); these parameters do not have it")
  if got != want:
    raise ValueError(
        "the pretrained autoencoder does not fit this data and model: expected "
        f"input_dim={input_dim} and the parameter shapes of {model!r}; "
        "pretrain a new one or pass matching data"
    )


def _with_seed(record: dict, seeds: list, sweep: bool) -> dict:
  """A log record of the run stack as the user sees it: a sweep's records name
  their ``"seed"``; one run's carry neither seed nor run."""
  out = {k: v for k, v in record.items() if k != "run"}
  if sweep:
    out["seed"] = seeds[record["run"]]
  return out
