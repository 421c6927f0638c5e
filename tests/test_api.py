"""``jdec.fit`` end to end on small data, its errors, and what a fitted model does next:
predict, save, load, and predict again in a fresh process and from the shell."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import jdec
from jdec import checkpoint, predict

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
  np.testing.assert_array_equal(fitted.predict(x), fitted.labels)
  np.testing.assert_allclose(fitted.predict_proba(x[:7]), fitted.q[:7], rtol=1e-5, atol=1e-7)
  with pytest.raises(ValueError, match="64"):
    fitted.predict(x[:, :10])


def test_save_and_load(fitted, digits, tmp_path):
  x, _ = digits
  path = jdec.save(fitted, tmp_path / "model", dataset="digits")
  model = jdec.load(path)
  assert isinstance(model, jdec.TrainedModel) and model.n_clusters == 10
  meta = json.loads((path / "meta.json").read_text())
  assert meta["format"] == "jdec.model" and meta["format_version"] == 1
  assert meta["model_class"] == "AutoEncoder" and meta["dataset"] == "digits"
  assert meta["recipe"] == "dec_keras" and meta["hidden_dims"] == [64, 64, 10]
  np.testing.assert_array_equal(model.predict(x), fitted.labels)
  np.testing.assert_array_equal(model.embed(x), fitted.embed(x))
  np.testing.assert_allclose(model.predict_proba(x), fitted.q, rtol=1e-5, atol=1e-7)
  np.testing.assert_array_equal(model.cluster_centers, np.asarray(fitted.state.params["centroids"]))
  with pytest.raises(checkpoint.CheckpointError, match="already exists"):
    jdec.save(fitted, path)  # never over a saved model
  with pytest.raises(ValueError, match=r"expects \[m, 64\]"):
    model.predict(x[:, :10])
  with pytest.raises(ValueError, match="row 3"):
    model.predict(np.where(np.arange(600)[:, None] == 3, np.nan, x))
  with pytest.raises(TypeError, match="SweepResult"):
    jdec.save(jdec.SweepResult([0], [fitted], {}, {}), tmp_path / "sweep")


def test_load_errors_name_the_problem(fitted, tmp_path):
  good = jdec.save(fitted, tmp_path / "good")
  with pytest.raises(FileNotFoundError, match="no model at"):
    jdec.load(tmp_path / "missing")
  (tmp_path / "empty").mkdir()
  with pytest.raises(checkpoint.CheckpointError, match="not a jdec model folder"):
    jdec.load(tmp_path / "empty")

  def variant(name, edit):
    path = tmp_path / name
    shutil.copytree(good, path)
    edit(path)
    return path

  damaged = variant("damaged", lambda p: (p / "meta.json").write_text('{"format": "jd'))
  with pytest.raises(checkpoint.CheckpointError, match="meta.json is damaged"):
    jdec.load(damaged)

  def meta_with(**changes):
    return lambda p: (p / "meta.json").write_text(json.dumps(
        {**json.loads((good / "meta.json").read_text()), **changes}))

  with pytest.raises(checkpoint.CheckpointError, match="upgrade jdec"):
    jdec.load(variant("future", meta_with(format_version=99)))
  with pytest.raises(checkpoint.CheckpointError, match="do not fit"):
    jdec.load(variant("other", meta_with(hidden_dims=[64, 32, 10])))
  autoencoder = variant("ae", lambda p: (p / "meta.json").write_text(json.dumps(
      {k: v for k, v in json.loads((good / "meta.json").read_text()).items()
       if k != "n_clusters"})))
  with pytest.raises(checkpoint.CheckpointError, match="pretrained autoencoder"):
    jdec.load(autoencoder)
  broken = variant("broken", lambda p: [f.unlink() for f in (p / "params").rglob("*")
                                        if f.is_file() and "manifest" in f.name])
  with pytest.raises(checkpoint.CheckpointError, match="cannot restore the parameters in "
                     ".*broken.*damaged or incomplete"):
    jdec.load(broken)
  with pytest.raises(TypeError, match="JSON values"):
    jdec.save(fitted, tmp_path / "odd", seed=np.int64(3))
  assert not (tmp_path / "odd").exists() and not list(tmp_path.glob(".odd*"))


def _python(*args, **kwargs):
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env,
                        timeout=300, check=False, **kwargs)


def test_a_fresh_process_predicts_the_same(fitted, digits, tmp_path):
  x, _ = digits
  model = jdec.save(fitted, tmp_path / "model")
  np.save(tmp_path / "x.npy", x)
  csv_path = tmp_path / "x.csv"
  np.savetxt(csv_path, x, delimiter=",", header=",".join(f"p{i}" for i in range(64)),
             comments="")
  done = _python("-c", "import sys, numpy as np, jdec; m = jdec.load(sys.argv[1]); "
                 "np.save(sys.argv[3], m.predict_proba(np.load(sys.argv[2])))",
                 str(model), str(tmp_path / "x.npy"), str(tmp_path / "q.npy"))
  assert done.returncode == 0, done.stderr
  np.testing.assert_array_equal(np.load(tmp_path / "q.npy"), fitted.predict_proba(x))
  for source, target in (("x.npy", "labels.npy"), ("x.csv", "labels.csv")):
    done = _python("-m", "jdec.predict", "--model", str(model), "--input",
                   str(tmp_path / source), "--output", str(tmp_path / target))
    assert done.returncode == 0, done.stderr
    assert "wrote 600 rows" in done.stderr
  np.testing.assert_array_equal(np.load(tmp_path / "labels.npy"), fitted.labels)
  np.testing.assert_array_equal(np.loadtxt(tmp_path / "labels.csv", dtype=np.int64),
                                fitted.labels)


def test_predict_command_line_errors(fitted, digits, tmp_path):
  x, _ = digits
  model = jdec.load(jdec.save(fitted, tmp_path / "model"))
  np.save(tmp_path / "narrow.npy", x[:, :10])
  (tmp_path / "words.csv").write_text("a,b\n1,2\nthree,4\n")
  (tmp_path / "taken.npy").write_bytes(b"mine")
  for source, target, match in (
      ("narrow.npy", "out.npy", r"narrow.npy: x has shape \(600, 10\); this model expects"),
      ("words.csv", "out.npy", "line 3: not a number"),
      ("missing.npy", "out.npy", "no input file"),
      ("narrow.npy", "taken.npy", "exists; choose another"),
      ("narrow.npy", "out.txt", "ending in .npy or .csv")):
    with pytest.raises(predict.InputError, match=match):
      predict.predict_file(model, tmp_path / source, tmp_path / target, progress=False)
  assert (tmp_path / "taken.npy").read_bytes() == b"mine"
  assert not list(tmp_path.glob("out*"))  # nothing half written
  done = _python("-m", "jdec.predict", "--model", str(tmp_path / "nope"), "--input",
                 str(tmp_path / "narrow.npy"), "--output", str(tmp_path / "o.npy"))
  assert done.returncode == 2 and "error: no model at" in done.stderr
  assert "Traceback" not in done.stderr


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
    (np.ones((20, 2)), 0, ValueError, ">= 1"),
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
  np.testing.assert_array_equal(r.predict(x), r.labels)
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
  np.testing.assert_array_equal(r.predict(images), r.labels)
  np.testing.assert_array_equal(r.predict(x), r.labels)
  with pytest.raises(ValueError, match=r"images of shape \(4, 16, 1\)"):
    r.predict(x.reshape(-1, 4, 16, 1))  # the model takes (8, 8, 1)
  # The estimator on flat rows with their image shape trains the same model.
  dec = jdec.DEC(10, recipe=recipe, config=TINY_CONV, random_state=0,
                 image_shape=(8, 8, 1)).fit(x)
  np.testing.assert_array_equal(dec.labels_, r.labels)
  assert dec.n_features_in_ == 64
  np.testing.assert_array_equal(dec.predict(images), r.labels)
  np.testing.assert_array_equal(dec.transform(images), r.embed(x))
  with pytest.raises(ValueError, match=r"images of shape \(4, 16, 1\)"):
    dec.predict(x.reshape(-1, 4, 16, 1))


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
