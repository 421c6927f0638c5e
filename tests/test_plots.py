"""The Hungarian-aligned confusion matrix."""

import numpy as np

from jdec import plots


def test_aligned_confusion_is_diagonal_for_a_permuted_perfect_clustering(tmp_path):
  y = np.repeat(np.arange(4), 5)
  pred = np.array([2, 0, 3, 1])[y]
  matrix, classes, clusters = plots.aligned_confusion(y, pred)
  np.testing.assert_array_equal(matrix, np.diag([5, 5, 5, 5]))
  np.testing.assert_array_equal(clusters, [2, 0, 3, 1])
  plots.save_confusion_matrix(tmp_path / "cm.png", y, pred, title="t")
  assert (tmp_path / "cm.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_extra_clusters_go_last():
  y = np.array([0, 0, 1, 1, 1])
  pred = np.array([7, 7, 5, 5, 9])
  matrix, _, clusters = plots.aligned_confusion(y, pred)
  np.testing.assert_array_equal(clusters, [7, 5, 9])
  np.testing.assert_array_equal(matrix, [[2, 0, 0], [0, 2, 1]])
