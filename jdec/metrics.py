"""Clustering scores: Hungarian accuracy, NMI and ARI.

ACC is the accuracy of the best one-to-one map from clusters to classes
(Kuhn-Munkres on the contingency table, via
``scipy.optimize.linear_sum_assignment``); clusters left without a class
count as errors, so it is correct when the number of clusters and classes
differ.
"""

import numpy as np
import scipy.optimize
import sklearn.metrics

from jdec import validation


def contingency(y_true, y_pred) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Contingency table ``[n_clusters, n_classes]`` and the label values of each axis."""
  y_true = np.asarray(y_true).ravel()
  y_pred = np.asarray(y_pred).ravel()
  if y_true.shape != y_pred.shape:
    raise ValueError(
        f"y_true and y_pred differ in length: {y_true.shape[0]} vs {y_pred.shape[0]}"
    )
  classes, t = np.unique(y_true, return_inverse=True)
  clusters, p = np.unique(y_pred, return_inverse=True)
  table = np.zeros((len(clusters), len(classes)), np.int64)
  np.add.at(table, (p, t), 1)
  return table, clusters, classes


def hungarian_map(y_true, y_pred) -> dict:
  """The accuracy-maximising one-to-one map ``{cluster: class}``."""
  table, clusters, classes = contingency(y_true, y_pred)
  rows, cols = scipy.optimize.linear_sum_assignment(table, maximize=True)
  return {clusters[r].item(): classes[c].item() for r, c in zip(rows, cols)}


def cluster_acc(y_true, y_pred) -> float:
  """Unsupervised clustering accuracy in ``[0, 1]``.

  Args:
    y_true: ``[n]`` class labels.
    y_pred: ``[n]`` cluster labels (any integers; their number may differ
      from the number of classes).

  Returns:
    ``max_m mean(y_true == m(y_pred))`` over one-to-one maps ``m``.
  """
  table, _, _ = contingency(y_true, y_pred)
  if table.sum() == 0:
    raise ValueError("cluster_acc needs at least one sample")
  rows, cols = scipy.optimize.linear_sum_assignment(table, maximize=True)
  return float(table[rows, cols].sum() / table.sum())


def nmi(y_true, y_pred, average_method: str = "arithmetic") -> float:
  """Normalised mutual information (scikit-learn).

  ``average_method="geometric"`` reproduces papers from before 2019, when it
  was scikit-learn's default; ``"arithmetic"`` is today's default.
  """
  return float(
      sklearn.metrics.normalized_mutual_info_score(
          np.asarray(y_true).ravel(),
          np.asarray(y_pred).ravel(),
          average_method=average_method,
      )
  )


def ari(y_true, y_pred) -> float:
  """Adjusted Rand index (scikit-learn)."""
  return float(
      sklearn.metrics.adjusted_rand_score(
          np.asarray(y_true).ravel(), np.asarray(y_pred).ravel()
      )
  )


def scores(y_true, y_pred) -> dict[str, float]:
  """``acc``, ``nmi`` (arithmetic), ``nmi_geometric`` and ``ari`` at once."""
  y_true = validation.check_labels(y_true, len(np.asarray(y_pred)), name="y_true")
  return {
      "acc": cluster_acc(y_true, y_pred),
      "nmi": nmi(y_true, y_pred),
      "nmi_geometric": nmi(y_true, y_pred, "geometric"),
      "ari": ari(y_true, y_pred),
  }
