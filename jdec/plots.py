"""Figures: the Hungarian-aligned confusion matrix."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np

from jdec import metrics


def aligned_confusion(y_true, y_pred) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Confusion matrix ``[n_classes, n_clusters]`` with columns ordered by the
  Hungarian map, so a perfect clustering is diagonal.

  Returns:
    ``(matrix, classes, clusters)``: the counts and the labels of rows and columns.
  """
  table, clusters, classes = metrics.contingency(y_true, y_pred)
  mapping = metrics.hungarian_map(y_true, y_pred)
  class_pos = {c: i for i, c in enumerate(classes)}
  # Matched clusters first, in the order of their class; unmatched ones last.
  order = sorted(range(len(clusters)),
                 key=lambda j: class_pos.get(mapping.get(clusters[j].item()), len(classes) + j))
  return table.T[:, order], classes, clusters[order]


def confusion_matrix_figure(y_true, y_pred, title: str = "") -> plt.Figure:
  """A heat map of ``aligned_confusion`` with every count written in its cell."""
  matrix, classes, clusters = aligned_confusion(y_true, y_pred)
  size = max(4.0, 0.6 * max(matrix.shape) + 1.5)
  fig, ax = plt.subplots(figsize=(size, size * 0.9))
  ax.imshow(matrix, cmap="Blues")
  threshold = matrix.max() / 2 if matrix.size else 0
  for (i, j), count in np.ndenumerate(matrix):
    ax.text(j, i, str(count), ha="center", va="center", fontsize=7,
            color="white" if count > threshold else "black")
  ax.set_xticks(range(len(clusters)), [str(c) for c in clusters])
  ax.set_yticks(range(len(classes)), [str(c) for c in classes])
  ax.set_xlabel("cluster (matched to classes by the Hungarian algorithm)")
  ax.set_ylabel("true class")
  acc = metrics.cluster_acc(y_true, y_pred)
  ax.set_title(f"{title} ACC {acc:.4f}".strip())
  fig.tight_layout()
  return fig


def save_confusion_matrix(path, y_true, y_pred, title: str = "") -> None:
  """Writes the aligned confusion matrix to ``path`` (PNG)."""
  fig = confusion_matrix_figure(y_true, y_pred, title)
  fig.savefig(path, dpi=120)
  plt.close(fig)
