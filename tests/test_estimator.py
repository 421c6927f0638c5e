"""``jdec.DEC``: scikit-learn's own estimator checks, pipelines, pickling, images, saving."""

import pickle

import joblib
import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import jdec
from jdec import estimator

# Tiny and quick: scikit-learn's checks fit it on arbitrary unscaled data, where
# Adam is steadier than DEC-keras's SGD at learning rate 1.
TINY = dict(pretrain_epochs=3, batch_size=16, maxiter=20, update_interval=5,
            config={"model": {"hidden_dims": (16, 4)}, "kmeans": {"n_init": 2},
                    "pretrain": {"optimizer": "adam", "learning_rate": 0.01}})


@parametrize_with_checks([jdec.DEC(n_clusters=3, random_state=0, **TINY)],
                         expected_failed_checks=lambda _: estimator.EXPECTED_FAILED_CHECKS)
def test_sklearn_estimator_checks(estimator, check):
  check(estimator)


@pytest.fixture(scope="module")
def blobs3():
  x, y = make_blobs(n_samples=240, centers=3, n_features=6, random_state=0)
  return x, y


@pytest.fixture(scope="module")
def pipeline(blobs3):
  x, _ = blobs3
  return make_pipeline(StandardScaler(), jdec.DEC(3, random_state=0, **TINY)).fit(x)


def test_in_a_pipeline_after_a_scaler(pipeline, blobs3):
  x, y = blobs3
  dec = pipeline[-1]
  assert adjusted_rand_score(y, dec.labels_) > 0.9  # three well separated blobs
  np.testing.assert_array_equal(pipeline.predict(x), dec.labels_)
  q = pipeline.predict_proba(x)
  assert q.shape == (240, 3) and np.allclose(q.sum(1), 1, atol=1e-5)
  assert pipeline.transform(x).shape == (240, 4)
  assert dec.n_features_in_ == 6 and dec.cluster_centers_.shape == (3, 4)
  assert dec.stopped_by_ in ("tol", "maxiter") and 1 <= dec.n_iter_ <= 20
  assert len(dec.history_["pretrain"]) == 3


def test_pickle_joblib_and_save_round_trips(pipeline, blobs3, tmp_path):
  x, _ = blobs3
  expected = pipeline.predict(x)
  np.testing.assert_array_equal(pickle.loads(pickle.dumps(pipeline)).predict(x), expected)
  joblib.dump(pipeline, tmp_path / "p.joblib")
  np.testing.assert_array_equal(joblib.load(tmp_path / "p.joblib").predict(x), expected)
  dec = pipeline[-1]
  jdec.save(dec, tmp_path / "model")
  loaded = jdec.load(tmp_path / "model")
  scaled = pipeline[0].transform(x)
  np.testing.assert_array_equal(loaded.predict(scaled), expected)
  np.testing.assert_array_equal(loaded.transform(scaled), dec.transform(scaled))


def test_settings_reach_the_recipe_and_config_is_not_changed():
  config = {"dec": {"tol": 0.5}}
  dec = jdec.DEC(2, config=config, tol=0.25, maxiter=7, alpha=2.0, pretrain_epochs=1)
  overrides = dec._overrides()  # pylint: disable=protected-access
  assert overrides["dec"] == {"tol": 0.25, "maxiter": 7}
  assert overrides["model"] == {"alpha": 2.0} and overrides["pretrain"] == {"num_epochs": 1}
  assert config == {"dec": {"tol": 0.5}}
  with pytest.raises(ValueError, match="unknown recipe"):
    jdec.DEC(2, recipe="nope").fit(np.random.default_rng(0).random((20, 3)))
  with pytest.raises(TypeError, match="config must be a mapping"):
    jdec.DEC(2, config=[1]).fit(np.random.default_rng(0).random((20, 3)))


def test_conv_recipe_needs_images():
  # Image-shaped input to the conv recipes: tests/test_api.py::test_conv_recipe_takes_images.
  x, _ = jdec.data.load_digits()
  with pytest.raises(ValueError, match="needs images"):
    jdec.DEC(10, recipe="dcec").fit(x[:128])
