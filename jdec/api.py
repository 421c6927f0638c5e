"""High-level entry points: ``fit`` a DEC model on an array, ``predict`` new rows."""

import dataclasses
import functools
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jdec import (augment, cluster, lloyd, metrics, models, parallel, pretrain, recipes,
                  train, validation)


@dataclasses.dataclass
class FitResult:
  """What ``fit`` returns.

  Attributes:
    labels: ``[n]`` cluster of every training row (argmax of ``q``).
    q: ``[n, k]`` final soft assignments.
    state: the trained ``TrainState`` of the ``ClusteringModel``.
    model: the ``ClusteringModel`` (``state.apply_fn`` is its ``apply``).
    ae_params: the pretrained autoencoder parameters (before DEC).
    kmeans: the k-means result on the pretrained embeddings.
    history: ``{"pretrain": [...], "dec": [...]}`` log records.
    scores: final ``acc``/``nmi``/``nmi_geometric``/``ari`` (when ``y`` was given),
      plus ``ae_kmeans_*`` scores of the k-means initialisation.
    timings: seconds spent in ``pretrain``, ``kmeans`` and ``dec``.
    iterations: DEC steps taken.
    stopped_by: ``"tol"`` or ``"maxiter"``.
    input_scale: factor applied to the inputs before the model (also applied
      by ``predict``).
    config: the resolved recipe.
    image_shape: ``(h, w, c)`` of the rows when they are images (given as
      ``[n, h, w, c]`` or with ``image_shape=``), else None.
  """

  labels: np.ndarray
  q: np.ndarray
  state: train.TrainState
  model: models.ClusteringModel
  ae_params: Any
  kmeans: lloyd.KMeansResult
  history: dict
  scores: dict
  timings: dict
  iterations: int
  stopped_by: str
  input_scale: float
  config: ml_collections.ConfigDict
  image_shape: tuple | None = None


def input_scale(x: np.ndarray, scaling: str) -> float:
  """The factor the recipe applies to ``x``: 1, or ``sqrt(d / mean ||x||^2)``."""
  if scaling == "none":
    return 1.0
  if scaling == "unit_power":
    power = float(np.mean(np.square(x, dtype=np.float64)))
    if power == 0:
      raise ValueError("input_scaling='unit_power' needs data that is not all zeros")
    return float(1.0 / np.sqrt(power))
  raise ValueError(f"unknown input_scaling {scaling!r}; use 'none' or 'unit_power'")


def resolve_config(recipe: str, config=None, dataset: str | None = None
                   ) -> ml_collections.ConfigDict:
  """The recipe's settings (for ``dataset``, see ``recipes.get_recipe``) with
  ``config`` (a nested mapping) laid over them."""
  base = recipes.get_recipe(recipe, dataset)
  resolved = recipes.validate(recipes.merge(base, config) if config is not None else base)
  recipes.check_overrides_apply(resolved, config)
  return resolved


def make_augment(cfg, input_dim: int, image_shape=None) -> train.Augment:
  """The recipe's random rotation and shift of flat rows ``[b, d]``.

  The rows are images of ``image_shape``, or, without one, square
  single-channel images (``d`` a perfect square, e.g. 784 = 28 x 28).
  """
  shape = tuple(image_shape) if image_shape is not None else augment.infer_image_shape(input_dim)
  return functools.partial(augment.augment_flat, image_shape=shape,
                           max_rotation_deg=float(cfg.augment.max_rotation_deg),
                           max_shift=float(cfg.augment.max_shift))


def pretrain_autoencoder(key, x_dev, model, cfg, *, log_fn=None, progress=True,
                         placement=None, checkpoints=None, augment_fn=None):
  """Initialises and pretrains ``model`` on ``x_dev`` as ``cfg.pretrain`` says.

  ``key`` is one key, or ``[S]`` keys to pretrain S autoencoders at once;
  ``checkpoints`` (a ``jdec.checkpoint.Progress``) makes end-to-end
  pretraining resumable; ``augment_fn`` transforms the batches when
  ``cfg.pretrain.augment`` asks for it.
  """
  stacked = key.ndim == 1
  init_key, data_key = (jax.vmap(jax.random.split, out_axes=1)(key) if stacked
                        else jax.random.split(key))
  init = lambda k: models.init_autoencoder(k, model, x_dev.shape[1])
  params = jax.vmap(init)(init_key) if stacked else init(init_key)
  p = cfg.pretrain
  batch_size = min(p.batch_size, x_dev.shape[0])
  common = dict(log_fn=log_fn, progress=progress, placement=placement)
  if p.method == "end_to_end":
    return pretrain.pretrain_end_to_end(
        data_key, x_dev, model, params, num_epochs=p.num_epochs, batch_size=batch_size,
        learning_rate=p.learning_rate, momentum=p.momentum, optimizer=p.optimizer,
        augment=augment_fn if p.augment else None, checkpoints=checkpoints, **common,
    )
  if checkpoints is not None and p.method == "layerwise":
    raise ValueError("resumable pretraining (checkpoints) works with pretrain.method="
                     "'end_to_end' only; 'layerwise' runs from the start")
  if p.method == "layerwise":
    return pretrain.pretrain_layerwise(
        data_key, x_dev, model, params, layer_steps=p.layer_steps,
        finetune_steps=p.finetune_steps, batch_size=batch_size,
        learning_rate=p.learning_rate, lr_decay_every=p.lr_decay_every,
        momentum=p.momentum, dropout_rate=p.dropout_rate, log_every=p.log_every, **common,
    )
  raise ValueError(f"unknown pretrain.method {p.method!r}; use 'end_to_end' or 'layerwise'")


@functools.partial(jax.jit, static_argnums=0)
def embed(model: models.AutoEncoder, ae_params, x: jax.Array) -> jax.Array:
  """Embeddings ``z [n, e]`` of all rows of ``x [n, d]``, in jitted batches."""
  return train.map_batches(
      lambda b: model.apply({"params": ae_params}, b, method=model.encode), x)


def _embed_all(model, ae_params, x, placement, stacked: bool) -> jax.Array:
  """``embed`` for one or ``[S]`` stacked parameter sets, on resident or streamed x."""
  fn = (jax.vmap(functools.partial(embed, model), in_axes=(0, None)) if stacked
        else functools.partial(embed, model))
  if not placement.stream:
    return fn(ae_params, x)
  piece = 65_536
  return jnp.concatenate([fn(ae_params, placement.put(x[i:i + piece]))
                          for i in range(0, x.shape[0], piece)], axis=-2)


@dataclasses.dataclass
class SweepResult:
  """What ``fit(..., seeds=[...])`` returns.

  Attributes:
    seeds: the seeds, in order.
    results: one ``FitResult`` per seed, each the same as ``fit(..., seed=s)``
      would give (up to float rounding); their ``timings`` are the sweep's.
    summary: for each score (``acc``, ``nmi``, ``ari``, ``ae_kmeans_acc``, ...
      when ``y`` was given): ``{"mean", "sd", "min", "max"}`` over the seeds
      (``sd`` with ``ddof=1``; 0 for one seed).
    timings: seconds spent in ``pretrain``, ``kmeans`` and ``dec`` for all
      seeds together.
  """

  seeds: list
  results: list
  summary: dict
  timings: dict


def summarize(scores: list[dict]) -> dict:
  """``{name: {"mean", "sd", "min", "max"}}`` over a list of score dicts."""
  out = {}
  for name in scores[0] if scores else []:
    v = np.asarray([s[name] for s in scores], np.float64)
    out[name] = {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
                 "min": float(v.min()), "max": float(v.max())}
  return out


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
    n_clusters: number of clusters ``k >= 2``, ``<= n``.
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
    checkpoints: a ``jdec.checkpoint.Progress`` to save pretraining every
      few epochs and resume it from there after an interruption (the same
      data, seeds and settings give the same result as an uninterrupted run;
      ``timings["pretrain"]`` then includes the earlier runs' seconds).
      End-to-end pretraining only.
    image_shape: ``(h, w, c)`` of flat rows ``x [n, h*w*c]`` that are images
      (the conv recipes need it; augmentation assumes square one-channel
      images without it).
    dataset: ``"mnist"`` or ``"usps"`` to take the recipe's settings for that
      dataset (update interval, DEC-keras's USPS pretraining).

  Returns:
    A ``FitResult``, or a ``SweepResult`` when ``seeds`` is given.
  """
  n_clusters = validation.check_n_clusters(n_clusters)
  x, image_shape = validation.check_images(x, image_shape)
  x = validation.check_data(x, n_clusters=n_clusters)
  if y is not None:
    y = validation.check_labels(y, x.shape[0])
  cfg = resolve_config(recipe, config, dataset)
  stacked = seeds is not None
  if stacked:
    seeds = validation.check_seeds(seeds)
  placement = placement or parallel.default_placement()
  scale = input_scale(x, cfg.input_scaling)
  x_dev = placement.put_data(x * np.float32(scale))
  model = models.build_autoencoder(cfg.model, x.shape[1], image_shape)
  augment_fn = (make_augment(cfg, x.shape[1], image_shape)
                if cfg.pretrain.augment or cfg.dec.augment else None)
  root = [jax.random.key(s) for s in (seeds if stacked else [seed])]
  keys = jnp.stack([jax.random.split(k, 3) for k in root])  # [S, 3]
  pretrain_key, kmeans_key, dec_key = (keys[:, i] if stacked else keys[0, i] for i in range(3))
  timings, history = {}, {"pretrain": [], "dec": []}
  run_log = log_fn
  if stacked and log_fn:
    run_log = lambda r: log_fn({**{k: v for k, v in r.items() if k != "run"},
                                "seed": seeds[r["run"]]})

  t0 = time.perf_counter()
  if ae_params is None:
    ae_params, history["pretrain"] = pretrain_autoencoder(
        pretrain_key, x_dev, model, cfg, log_fn=run_log, progress=progress,
        placement=placement, checkpoints=checkpoints, augment_fn=augment_fn)
    if on_pretrained:
      on_pretrained(ae_params)
  elif checkpoints is not None:
    raise ValueError("checkpoints resume pretraining; with ae_params there is none to run")
  else:
    _check_ae_params(ae_params, model, x.shape[1], runs=len(seeds) if stacked else None)
    ae_params = placement.put(ae_params)
  jax.block_until_ready(ae_params)
  timings["pretrain"] = time.perf_counter() - t0 + (
      checkpoints.resumed_wall_s if checkpoints is not None else 0.0)

  t0 = time.perf_counter()
  z = _embed_all(model, ae_params, x_dev, placement, stacked)
  kmeans = lambda k, z_: lloyd.kmeans(k, z_, n_clusters, **cfg.kmeans)
  km = jax.vmap(kmeans)(kmeans_key, z) if stacked else kmeans(kmeans_key, z)
  jax.block_until_ready(km)
  timings["kmeans"] = time.perf_counter() - t0

  t0 = time.perf_counter()
  clustering = models.ClusteringModel(model, n_clusters, cfg.model.alpha)
  d = cfg.dec
  state = placement.put(train.create_state(
      apply_fn=clustering.apply,
      params=models.clustering_params(ae_params, km.centroids),
      tx=train.optimizer(d.optimizer, d.learning_rate, d.momentum), stacked=stacked,
  ))
  state, history["dec"], out = cluster.run(
      dec_key, state, x_dev, batch_size=min(d.batch_size, x.shape[0]),
      update_interval=d.update_interval, tol=d.tol, maxiter=d.maxiter,
      objective=d.objective, kl_weight=d.kl_weight,
      augment=augment_fn if d.augment else None,
      initial_labels=parallel.to_host(km.labels), y=y, log_fn=run_log, progress=progress,
      placement=placement,
  )
  jax.block_until_ready(state)
  timings["dec"] = time.perf_counter() - t0

  def result(r: int) -> FitResult:
    pick = (lambda a: a[r]) if stacked else (lambda a: a)
    km_r = jax.tree.map(lambda a: parallel.to_host(pick(a)), km)
    labels = out["labels"][r] if stacked else out["labels"]
    scores = {}
    if y is not None:
      scores.update({f"ae_kmeans_{k}": v
                     for k, v in metrics.scores(y, np.asarray(km_r.labels)).items()})
      scores.update(metrics.scores(y, labels))
    hist = {phase: [{**{k: v for k, v in h.items() if k != "run"}, "seed": seeds[r]}
                    if stacked else h for h in records if not stacked or h.get("run") == r]
            for phase, records in history.items()}
    return FitResult(
        labels=labels, q=np.exp(parallel.to_host(pick(out["log_q"]))),
        state=jax.tree.map(pick, state), model=clustering,
        ae_params=jax.tree.map(pick, ae_params), kmeans=km_r, history=hist,
        scores=scores, timings=timings,
        iterations=out["iterations"][r] if stacked else out["iterations"],
        stopped_by=out["stopped_by"][r] if stacked else out["stopped_by"],
        input_scale=scale, config=cfg, image_shape=image_shape,
    )

  if not stacked:
    return result(0)
  results = [result(r) for r in range(len(seeds))]
  return SweepResult(seeds=seeds, results=results,
                     summary=summarize([r.scores for r in results]), timings=timings)


def _check_ae_params(ae_params, model, input_dim, runs: int | None = None):
  """Raises unless ``ae_params`` fit ``model`` (with a leading ``[runs]`` axis if given)."""
  expected = jax.eval_shape(lambda: models.init_autoencoder(jax.random.key(0), model, input_dim))
  got = jax.tree.map(lambda a: (tuple(a.shape)), ae_params)
  want = jax.tree.map(lambda a: ((runs,) if runs else ()) + tuple(a.shape), expected)
  same_tree = jax.tree.structure(ae_params) == jax.tree.structure(expected)
  if runs and same_tree and got != want:
    raise ValueError(f"a sweep of {runs} seeds needs one pretrained autoencoder per seed, "
                     "stacked on a leading axis of every parameter (as fit(..., seeds=...) "
                     "returns them); these parameters do not have it")
  if got != want:
    raise ValueError(
        "the pretrained autoencoder does not fit this data and model: expected "
        f"input_dim={input_dim} and the parameter shapes of {model!r}; "
        "pretrain a new one or pass matching data"
    )


def predict_proba(result: FitResult, x) -> np.ndarray:
  """Soft assignments ``q [m, k]`` of new rows ``x [m, d]`` (or images
  ``[m, h, w, c]``) under a fitted model."""
  x, _ = validation.check_images(x, result.image_shape)  # refuses other image shapes
  x = validation.check_data(x, name="x")
  d = result.model.autoencoder.input_dim
  if x.shape[1] != d:
    raise ValueError(f"x has {x.shape[1]} features but the model was fitted on {d}")
  where = jax.tree.leaves(result.state.params)[0].sharding
  log_q = cluster.full_log_q(result.state,
                             jax.device_put(x * np.float32(result.input_scale), where))
  return np.exp(np.asarray(log_q))


def predict(result: FitResult, x) -> np.ndarray:
  """Cluster labels ``[m]`` of new rows ``x [m, d]`` (argmax of their ``q``)."""
  return np.argmax(predict_proba(result, x), axis=1)
