"""Clustering scores: invariance to relabelling and the #clusters != #classes case."""

import numpy as np
import pytest
import sklearn.metrics

from jdec import metrics


def test_perfect_clustering_under_any_permutation():
  rng = np.random.default_rng(0)
  y = rng.integers(0, 5, size=200)
  perm = rng.permutation(5)
  assert metrics.cluster_acc(y, perm[y]) == 1.0
  assert metrics.nmi(y, perm[y]) == pytest.approx(1.0)
  assert metrics.ari(y, perm[y]) == pytest.approx(1.0)


def test_hand_computed_accuracy():
  y_true = [0, 0, 0, 1, 1, 1]
  y_pred = [1, 1, 0, 0, 0, 0]  # best map 1->0, 0->1: 2 + 3 = 5 right
  assert metrics.cluster_acc(y_true, y_pred) == pytest.approx(5 / 6)


def test_more_clusters_than_classes():
  y_true = [0, 0, 1, 1, 1, 1]
  y_pred = [0, 1, 2, 2, 3, 3]  # one cluster per class at most: 0->0 (1), 2->1 (2)
  assert metrics.cluster_acc(y_true, y_pred) == pytest.approx(3 / 6)


def test_fewer_clusters_than_classes():
  y_true = [0, 1, 2, 2]
  y_pred = [5, 5, 7, 7]
  assert metrics.cluster_acc(y_true, y_pred) == pytest.approx(3 / 4)


def test_labels_need_not_be_contiguous():
  y_true = np.array([3, 3, 9, 9])
  y_pred = np.array([-1, -1, 40, 40])
  assert metrics.cluster_acc(y_true, y_pred) == 1.0
  assert metrics.hungarian_map(y_true, y_pred) == {-1: 3, 40: 9}


def test_nmi_and_ari_match_sklearn():
  rng = np.random.default_rng(1)
  y, p = rng.integers(0, 4, 300), rng.integers(0, 6, 300)
  for method in ("arithmetic", "geometric"):
    assert metrics.nmi(y, p, method) == pytest.approx(
        sklearn.metrics.normalized_mutual_info_score(y, p, average_method=method))
  assert metrics.ari(y, p) == pytest.approx(sklearn.metrics.adjusted_rand_score(y, p))
  assert metrics.nmi(y, p, "geometric") != pytest.approx(metrics.nmi(y, p, "arithmetic"))


def test_scores_and_length_mismatch():
  s = metrics.scores([0, 0, 1], [1, 1, 0])
  assert s == {"acc": 1.0, "nmi": pytest.approx(1.0), "nmi_geometric": pytest.approx(1.0),
               "ari": pytest.approx(1.0)}
  with pytest.raises(ValueError, match="differ in length"):
    metrics.cluster_acc([0, 1], [0, 1, 1])


@pytest.mark.parametrize("n_pred, n_true, n", [(10, 10, 5000), (3, 7, 200), (1, 4, 50),
                                               (5, 1, 50), (1, 1, 20)])
def test_scores_match_each_metric(n_pred, n_true, n):
  rng = np.random.default_rng(n_pred * 100 + n_true)
  y = rng.integers(0, n_true, n) * 3 + 1  # labels need not be 0..k-1
  p = np.where(rng.random(n) < 0.6, y % max(n_pred, 1), rng.integers(0, n_pred, n))
  s = metrics.scores(y, p)
  assert s["acc"] == pytest.approx(metrics.cluster_acc(y, p))
  assert s["nmi"] == pytest.approx(metrics.nmi(y, p), abs=1e-12)
  assert s["nmi_geometric"] == pytest.approx(metrics.nmi(y, p, "geometric"), abs=1e-12)
  assert s["ari"] == pytest.approx(metrics.ari(y, p), abs=1e-12)
