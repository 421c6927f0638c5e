"""The pictures: the aligned confusion matrix, the gallery, the embedding map, the curves."""

import numpy as np
import pytest

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


PNG = b"\x89PNG\r\n\x1a\n"


def test_most_confident_picks_each_clusters_surest_members():
  q = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.95, 0.05], [0.45, 0.55]])
  first, second = plots.most_confident(q, per_cluster=2)
  np.testing.assert_array_equal(first, [3, 0])  # 0.95, then 0.9 (0.6 left out)
  np.testing.assert_array_equal(second, [2, 4])


def test_the_gallery_is_one_mosaic_with_blank_gaps():
  images = np.arange(2 * 2 * 2, dtype=np.float64).reshape(2, 2, 2)
  mosaic = plots.gallery_mosaic(images, [np.array([1]), np.array([0, 1])], per_cluster=2)
  assert mosaic.shape == (5, 5)  # 2 clusters x 2 images of 2x2, a blank line between
  np.testing.assert_array_equal(mosaic[:2, :2], images[1])
  np.testing.assert_array_equal(mosaic[3:, :2], images[0])
  np.testing.assert_array_equal(mosaic[3:, 3:], images[1])
  assert mosaic.mask[:2, 2:].all() and mosaic.mask[2].all()  # cluster 0 has one image
  assert not mosaic.mask[3:, 3:].any()


def test_pictures_are_written(tmp_path):
  rng = np.random.default_rng(0)
  y = np.repeat(np.arange(3), 20)
  z = rng.normal(size=(60, 4)) + 4 * y[:, None]
  q = np.eye(3)[y] * 0.8 + 0.1
  images = rng.random((60, 6, 6, 1))
  plots.save_cluster_gallery(tmp_path / "g.png", images, q, per_cluster=4)
  plots.save_embedding(tmp_path / "e.png", z, y, y, method="tsne")
  plots.save_embedding(tmp_path / "p.png", z, y, method="pca", max_points=30)
  records = [{"phase": "pretrain", "epoch": e, "loss": 1.0 / e, "seed": s}
             for s in (0, 1) for e in (1, 2, 3)]
  records += [{"phase": "dec", "iteration": i, "delta_label": d, "loss": l, "acc": a,
               "nmi": a, "seed": s, "cluster_sizes": [20, 20 - i, 20 + i]} for s in (0, 1)
              for i, d, l, a in ((0, None, None, 0.5), (10, 0.1, 0.2, 0.6), (20, 0.1, 0.1, 0.7))]
  fig = plots.training_curves_figure(records)
  sizes = fig.axes[4]  # the smallest cluster's share, and a red x where one is empty
  assert sizes.get_title() == "smallest cluster (share of rows)"
  shares = [line.get_ydata().tolist() for line in sizes.lines if line.get_label() == "seed 0"]
  assert shares == [pytest.approx([20 / 60, 10 / 60, 0.0])]
  empty = [line for line in sizes.lines if line.get_label().startswith("empty cluster")]
  assert [line.get_xdata().tolist() for line in empty] == [[20], [20]]
  plots.save_training_curves(tmp_path / "t.png", records)
  for name in ("g", "e", "p", "t"):
    assert (tmp_path / f"{name}.png").read_bytes()[:8] == PNG, name
  rows, xy = plots.embedding_map(z, "pca", max_points=30)
  assert len(rows) == 30 == len(np.unique(rows)) and xy.shape == (30, 2)


def test_importing_jdec_leaves_matplotlibs_backend_alone():
  import subprocess  # pylint: disable=import-outside-toplevel
  import sys  # pylint: disable=import-outside-toplevel
  code = ("import matplotlib; matplotlib.use('svg'); import jdec, jdec.plots, jdec.report; "
          "import jdec.experiments.runner; print(matplotlib.get_backend())")
  done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                        check=True)
  assert done.stdout.strip() == "svg"
