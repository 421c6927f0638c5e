"""What ``jdec.fit`` returns: one run's ``FitResult``, a sweep's ``SweepResult``."""

import dataclasses
import functools
from typing import Any

import ml_collections
import numpy as np

from jdec import lloyd, models, train, trained


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

  def to_model(self) -> trained.TrainedModel:
    """The trained model on its own (host copies of the parameters), as
    ``jdec.save`` writes it and ``jdec.load`` reads it back."""
    return trained.TrainedModel(self.state.params, trained.describe(
        self.config.model, input_dim=self.model.autoencoder.input_dim,
        image_shape=self.image_shape, n_clusters=self.model.n_clusters,
        input_scale=self.input_scale, input_scaling=self.config.input_scaling,
        recipe=self.config.recipe))

  @functools.cached_property
  def _trained(self) -> trained.TrainedModel:
    return self.to_model()

  def embed(self, x, **kwargs) -> np.ndarray:
    """``z [m, e]`` of new rows ``x [m, d]`` (or images ``[m, h, w, c]``), scaled as in training."""
    return self._trained.embed(x, **kwargs)

  def predict_proba(self, x, **kwargs) -> np.ndarray:
    """Soft assignments ``q [m, k]`` of new rows ``x``."""
    return self._trained.predict_proba(x, **kwargs)

  def predict(self, x, **kwargs) -> np.ndarray:
    """Cluster labels ``[m]`` of new rows ``x`` (argmax of their ``q``)."""
    return self._trained.predict(x, **kwargs)


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
