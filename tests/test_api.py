"""``jdec.fit`` / ``jdec.predict`` end to end on small data, and its errors."""

import numpy as np
import pytest

import jdec

SMALL = {
    "model": {"hidden_dims": (64, 64, 10)},
    "pretrain": {"num_epochs": 8, "batch_size": 64, "learning_rate": 0.1},
    "kmeans": {"n_init": 3},
    "dec": {"maxiter": 60, "update_interval": 20, "batch_size": 64},
}


@pytest.fixture(scope="module")
def digits():
  x, y = jdec.data.load_digits()
  return x[:600], y[:600]


@pytest.fixture(scope="module")
def fitted(digits):
  x, y = digits
  return jdec.fit(x, 10, config=SMALL, seed=0, y=y, progress=False)


def test_fit_result(fitted, digits):
  x, y = digits
  r = fitted
  assert r.labels.shape == (600,) and r.q.shape == (600, 10)
  np.testing.assert_allclose(r.q.sum(1), 1.0, rtol=1e-5)
  np.testing.assert_array_equal(r.labels, r.q.argmax(1))
  assert r.stopped_by in ("tol", "maxiter") and 0 < r.iterations <= 60
  assert set(r.timings) == {"pretrain", "kmeans", "dec"}
  assert len(r.history["pretrain"]) == 8
  assert r.history["pretrain"][-1]["loss"] < r.history["pretrain"][0]["loss"]
  assert r.history["dec"][0]["iteration"] == 0 and "acc" in r.history["dec"][0]
  assert r.scores["acc"] == pytest.approx(jdec.metrics.cluster_acc(y, r.labels))
  assert r.scores["ae_kmeans_acc"] > 0.4  # a real embedding, far above chance (0.1)
  assert r.config.pretrain.num_epochs == 8 and r.config.dec.learning_rate == 0.01


def test_predict_matches_training_labels(fitted, digits):
  x, _ = digits
  np.testing.assert_array_equal(jdec.predict(fitted, x), fitted.labels)
  np.testing.assert_allclose(jdec.predict_proba(fitted, x[:7]), fitted.q[:7], rtol=1e-5, atol=1e-7)
  with pytest.raises(ValueError, match="64"):
    jdec.predict(fitted, x[:, :10])


def test_same_seed_same_result_and_pretrained_reuse(fitted, digits):
  x, y = digits
  again = jdec.fit(x, 10, config=SMALL, seed=0, ae_params=fitted.ae_params, progress=False)
  assert again.history["pretrain"] == []  # pretraining skipped
  np.testing.assert_array_equal(again.labels, fitted.labels)
  np.testing.assert_allclose(np.asarray(again.kmeans.centroids),
                             np.asarray(fitted.kmeans.centroids), rtol=1e-5)


def test_pretrained_that_does_not_fit(fitted, digits):
  x, _ = digits
  with pytest.raises(ValueError, match="does not fit"):
    jdec.fit(x[:, :32], 10, config=SMALL, ae_params=fitted.ae_params, progress=False)


@pytest.mark.parametrize("x, k, error, match", [
    (np.full((20, 3), np.nan), 2, ValueError, "NaN"),
    (np.array([[1.0, np.inf]] * 20), 2, ValueError, "infinite"),
    (np.ones((20, 3, 3, 1, 1)), 2, ValueError, "2-D.*flatten"),
    (np.ones(20), 2, ValueError, "2-D"),
    (np.ones((3, 2)), 4, ValueError, "fewer than n_clusters"),
    (np.ones((20, 2)), 1, ValueError, ">= 2"),
    (np.ones((20, 2)), 2.5, TypeError, "integer"),
    (np.array([["a", "b"]] * 20), 2, TypeError, "numeric"),
])
def test_bad_input(x, k, error, match):
  with pytest.raises(error, match=match):
    jdec.fit(x, k, progress=False)


def test_bad_labels_and_config(digits):
  x, y = digits
  with pytest.raises(ValueError, match="labels but the data has"):
    jdec.fit(x, 10, y=y[:5], progress=False)
  with pytest.raises(KeyError, match="num_epoch"):
    jdec.fit(x, 10, config={"pretrain": {"num_epoch": 3}}, progress=False)
  with pytest.raises(ValueError, match="unknown recipe"):
    jdec.fit(x, 10, recipe="keras", progress=False)


def test_paper_recipe_layerwise_runs(digits):
  x, y = digits
  config = {
      "model": {"hidden_dims": (32, 32, 5)},
      "pretrain": {"layer_steps": 20, "finetune_steps": 30, "log_every": 10,
                   "lr_decay_every": 15, "batch_size": 64},
      "kmeans": {"n_init": 2},
      "dec": {"maxiter": 20, "update_interval": 10, "batch_size": 64},
  }
  r = jdec.fit(x, 10, recipe="paper", config=config, y=y, progress=False)
  phases = [h["phase"] for h in r.history["pretrain"]]
  assert phases.count("pretrain_layer1") == 2 and phases.count("pretrain_finetune") == 3
  assert {f"pretrain_layer{i}" for i in (1, 2, 3)} <= set(phases)
  # Inputs were rescaled to unit mean power, and predict applies the same factor.
  assert r.input_scale == pytest.approx(1 / np.sqrt(np.mean(np.square(x, dtype=np.float64))))
  np.testing.assert_array_equal(jdec.predict(r, x), r.labels)
  # The paper's N(0, 0.01^2) initialiser was used: trained weights are small.
  assert float(np.std(np.asarray(r.ae_params["encoder"]["dense_2"]["kernel"]))) < 0.1


TINY_CONV = {
    "model": {"conv_filters": (4, 8, 8), "embed_dim": 6},
    "pretrain": {"num_epochs": 3, "batch_size": 64},
    "kmeans": {"n_init": 2},
    "dec": {"maxiter": 20, "update_interval": 10, "batch_size": 64},
}


def test_conv_recipe_takes_images(digits):
  x, y = digits[0][:300], digits[1][:300]
  images = x.reshape(-1, 8, 8, 1)
  recipe = "conv_dec_da"  # conv, augmentation and Adam; the experiments' test runs dcec
  r = jdec.fit(images, 10, recipe=recipe, config=TINY_CONV, y=y, progress=False)
  assert r.image_shape == (8, 8, 1) and r.labels.shape == (300,)
  assert isinstance(r.model.autoencoder, jdec.models.ConvAutoEncoder)
  assert r.history["pretrain"][-1]["loss"] < r.history["pretrain"][0]["loss"]
  # Flat rows with their image shape are the same data; images predict as rows.
  np.testing.assert_array_equal(jdec.predict(r, images), r.labels)
  np.testing.assert_array_equal(jdec.predict(r, x), r.labels)
  with pytest.raises(ValueError, match=r"images of shape \(4, 16, 1\)"):
    jdec.predict(r, x.reshape(-1, 4, 16, 1))  # the model takes (8, 8, 1)
  flat = jdec.fit(x, 10, recipe=recipe, config=TINY_CONV, image_shape=(8, 8, 1), y=y,
                  progress=False)
  np.testing.assert_array_equal(flat.labels, r.labels)


def test_conv_recipe_needs_an_image_shape(digits):
  x, _ = digits
  with pytest.raises(ValueError, match=r"needs images: pass x as \[n, height, width, channels\]"):
    jdec.fit(x, 10, recipe="dcec", config=TINY_CONV, progress=False)
  with pytest.raises(ValueError, match="image_shape"):
    jdec.fit(x, 10, recipe="dcec", config=TINY_CONV, image_shape=(8, 9, 1), progress=False)


def test_augmented_recipe_on_flat_rows(digits):
  x, y = digits
  config = {**SMALL, "pretrain": {**SMALL["pretrain"], "num_epochs": 3}}
  r = jdec.fit(x, 10, recipe="dec_da", config=config, y=y, progress=False)
  assert r.image_shape is None and r.config.pretrain.augment and r.config.dec.augment
  # 64 = 8 x 8 is square, so the rows were augmented as 8x8 images. The first
  # update compares with the k-means labels: before any DEC step the nearest
  # centre of each row is (nearly always) its k-means cluster.
  assert r.history["dec"][0]["delta_label"] < 0.05
  with pytest.raises(ValueError, match="not a perfect square"):
    jdec.fit(x[:, :60], 10, recipe="dec_da", config=config, progress=False)
