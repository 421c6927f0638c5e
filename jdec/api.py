"""High-level entry points: ``fit`` a DEC model on an array, ``predict`` new rows."""

import dataclasses
import functools
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jdec import cluster, lloyd, metrics, models, pretrain, recipes, train, validation


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


def resolve_config(recipe: str, config=None) -> ml_collections.ConfigDict:
  """The recipe's settings with ``config`` (a nested mapping) laid over them."""
  base = recipes.get_recipe(recipe)
  resolved = recipes.validate(recipes.merge(base, config) if config is not None else base)
  recipes.check_overrides_apply(resolved, config)
  return resolved


def pretrain_autoencoder(key, x_dev, model, cfg, *, log_fn=None, progress=True):
  """Initialises and pretrains ``model`` on ``x_dev`` as ``cfg.pretrain`` says."""
  init_key, data_key = jax.random.split(key)
  params = models.init_autoencoder(init_key, model, x_dev.shape[1])
  p = cfg.pretrain
  batch_size = min(p.batch_size, x_dev.shape[0])
  if p.method == "end_to_end":
    return pretrain.pretrain_end_to_end(
        data_key, x_dev, model, params, num_epochs=p.num_epochs, batch_size=batch_size,
        learning_rate=p.learning_rate, momentum=p.momentum, log_fn=log_fn, progress=progress,
    )
  if p.method == "layerwise":
    return pretrain.pretrain_layerwise(
        data_key, x_dev, model, params, layer_steps=p.layer_steps,
        finetune_steps=p.finetune_steps, batch_size=batch_size,
        learning_rate=p.learning_rate, lr_decay_every=p.lr_decay_every,
        momentum=p.momentum, dropout_rate=p.dropout_rate, log_every=p.log_every,
        log_fn=log_fn, progress=progress,
    )
  raise ValueError(f"unknown pretrain.method {p.method!r}; use 'end_to_end' or 'layerwise'")


@functools.partial(jax.jit, static_argnums=0)
def embed(model: models.AutoEncoder, ae_params, x: jax.Array) -> jax.Array:
  """Embeddings ``z [n, e]`` of all rows of ``x [n, d]``, in jitted batches."""
  return train.map_batches(
      lambda b: model.apply({"params": ae_params}, b, method=model.encode), x)


def fit(
    x,
    n_clusters: int,
    *,
    recipe: str = "dec_keras",
    config=None,
    seed: int = 0,
    y=None,
    ae_params=None,
    log_fn: Callable[[dict], None] | None = None,
    on_pretrained: Callable[[Any], None] | None = None,
    progress: bool = True,
) -> FitResult:
  """Pretrains an autoencoder, initialises centres by k-means and runs DEC.

  Args:
    x: data ``[n, d]``, finite; scale it as the recipe expects (MNIST pixels
      in ``[0, 1]`` for ``dec_keras``; ``paper`` rescales itself).
    n_clusters: number of clusters ``k >= 2``, ``<= n``.
    recipe: ``"dec_keras"`` or ``"paper"`` (see ``jdec.recipes``).
    config: nested mapping of settings laid over the recipe, e.g.
      ``{"pretrain": {"num_epochs": 50}, "dec": {"update_interval": 100}}``.
    seed: seeds the root key; streams for init, k-means and data order are
      split from it.
    y: optional ``[n]`` true labels, used only to score the run.
    ae_params: pretrained autoencoder parameters to start from (skips pretraining).
    log_fn: called with every log record (pretraining epochs, DEC updates).
    on_pretrained: called with the autoencoder parameters as soon as
      pretraining ends (to save them before the clustering phase).
    progress: show progress bars.

  Returns:
    A ``FitResult``.
  """
  n_clusters = validation.check_n_clusters(n_clusters)
  x = validation.check_data(x, n_clusters=n_clusters)
  if y is not None:
    y = validation.check_labels(y, x.shape[0])
  cfg = resolve_config(recipe, config)
  scale = input_scale(x, cfg.input_scaling)
  x_dev = jax.device_put(x * np.float32(scale))
  model = models.AutoEncoder(x.shape[1], tuple(cfg.model.hidden_dims), cfg.model.kernel_init)
  pretrain_key, kmeans_key, dec_key = jax.random.split(jax.random.key(seed), 3)
  timings, history = {}, {"pretrain": [], "dec": []}

  t0 = time.perf_counter()
  if ae_params is None:
    ae_params, history["pretrain"] = pretrain_autoencoder(
        pretrain_key, x_dev, model, cfg, log_fn=log_fn, progress=progress)
    if on_pretrained:
      on_pretrained(ae_params)
  else:
    _check_ae_params(ae_params, model, x.shape[1])
  jax.block_until_ready(ae_params)
  timings["pretrain"] = time.perf_counter() - t0

  t0 = time.perf_counter()
  z = embed(model, ae_params, x_dev)
  km = lloyd.kmeans(kmeans_key, z, n_clusters, **cfg.kmeans)
  jax.block_until_ready(km)
  timings["kmeans"] = time.perf_counter() - t0
  scores = {}
  if y is not None:
    scores.update({f"ae_kmeans_{k}": v for k, v in metrics.scores(y, np.asarray(km.labels)).items()})

  t0 = time.perf_counter()
  clustering = models.ClusteringModel(model, n_clusters, cfg.model.alpha)
  d = cfg.dec
  state = train.create_state(
      apply_fn=clustering.apply,
      params=models.clustering_params(ae_params, km.centroids),
      tx=train.sgd(d.learning_rate, d.momentum),
  )
  state, history["dec"], out = cluster.run(
      dec_key, state, x_dev, batch_size=min(d.batch_size, x.shape[0]),
      update_interval=d.update_interval, tol=d.tol, maxiter=d.maxiter, gamma=d.gamma,
      y=y, log_fn=log_fn, progress=progress,
  )
  timings["dec"] = time.perf_counter() - t0
  if y is not None:
    scores.update(metrics.scores(y, out["labels"]))
  return FitResult(
      labels=out["labels"], q=np.exp(np.asarray(out["log_q"])), state=state,
      model=clustering, ae_params=ae_params, kmeans=km, history=history, scores=scores,
      timings=timings, iterations=out["iterations"], stopped_by=out["stopped_by"],
      input_scale=scale, config=cfg,
  )


def _check_ae_params(ae_params, model, input_dim):
  expected = jax.eval_shape(lambda: models.init_autoencoder(jax.random.key(0), model, input_dim))
  got = jax.tree.map(lambda a: (tuple(a.shape)), ae_params)
  want = jax.tree.map(lambda a: (tuple(a.shape)), expected)
  if got != want:
    raise ValueError(
        "the pretrained autoencoder does not fit this data and model: expected "
        f"input_dim={input_dim}, hidden_dims={tuple(model.hidden_dims)}; "
        "pretrain a new one or pass matching data"
    )


def predict_proba(result: FitResult, x) -> np.ndarray:
  """Soft assignments ``q [m, k]`` of new rows ``x [m, d]`` under a fitted model."""
  x = validation.check_data(x, name="x")
  d = result.model.autoencoder.input_dim
  if x.shape[1] != d:
    raise ValueError(f"x has {x.shape[1]} features but the model was fitted on {d}")
  log_q = cluster.full_log_q(result.state, jnp.asarray(x * np.float32(result.input_scale)))
  return np.exp(np.asarray(log_q))


def predict(result: FitResult, x) -> np.ndarray:
  """Cluster labels ``[m]`` of new rows ``x [m, d]`` (argmax of their ``q``)."""
  return np.argmax(predict_proba(result, x), axis=1)
