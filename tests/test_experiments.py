"""The experiment entry points, end to end on tiny data, as a user runs them."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

import jdec
from jdec import checkpoint, data, metrics, recipes, report
from jdec.experiments import custom, digits, mnist, runner
from test_data import write_mnist

TINY = [
    "--config.progress=False", "--config.pretrain.num_epochs=2",
    "--config.pretrain.batch_size=32", "--config.dec.batch_size=32",
    "--config.dec.maxiter=30", "--config.dec.update_interval=10",
    "--config.kmeans.n_init=2", "--config.model.hidden_dims=(32,32,10)",
    "--config.embedding_map=pca",
]
RESULT_KEYS = {"acc", "nmi", "nmi_geometric", "ari", "n_samples", "kmeans_raw_acc",
               "ae_kmeans_acc", "iterations", "stopped_by", "time_pretrain_s",
               "time_kmeans_s", "time_dec_s", "device", "jax_version", "seed", "recipe"}


# The conv recipes read conv_filters, not hidden_dims.
TINY_CONV = [a for a in TINY if "hidden_dims" not in a] + [
    "--config.model.conv_filters=(4,8,8)", "--config.model.embed_dim=6"]


def run(module, workdir, *args, tiny=TINY):
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  env.pop("JDEC_DATA_DIR", None)
  return subprocess.run([sys.executable, "-m", f"jdec.experiments.{module}",
                         f"--workdir={workdir}", *tiny, *args],
                        capture_output=True, text=True, env=env, timeout=600)


def check_workdir(workdir, n_samples, pictures=report.PICTURES):
  for name in ("config.json", "metrics.jsonl", "results.json", "autoencoder/meta.json",
               "model/meta.json", *pictures):
    assert (workdir / name).exists(), name
  results = json.loads((workdir / "results.json").read_text())
  assert RESULT_KEYS <= set(results)
  assert results["n_samples"] == n_samples and results["stopped_by"] in ("tol", "maxiter")
  lines = [json.loads(l) for l in (workdir / "metrics.jsonl").read_text().splitlines()]
  assert {l["phase"] for l in lines} >= {"kmeans_raw", "dec"}
  config = json.loads((workdir / "config.json").read_text())
  assert config["resolved"]["dec"]["maxiter"] == 30
  recipe = recipes.get_recipe(results["recipe"])
  assert config["resolved"]["dec"]["learning_rate"] == recipe.dec.learning_rate  # default kept
  return results, lines


def test_digits_experiment(tmp_path):
  proc = run("digits", tmp_path / "run", "--config.n_samples=300",
             "--config.embedding_map=tsne")
  assert proc.returncode == 0, proc.stderr[-3000:]
  results, lines = check_workdir(tmp_path / "run", 300)
  assert results["dataset"] == "digits"
  assert sum(l["phase"] == "pretrain" for l in lines) == 2
  assert "DEC ACC" in proc.stdout
  # The model predicts from the work directory, and the pictures can be drawn again.
  x, y = data.load_digits()
  model = jdec.load(tmp_path / "run" / "model")
  assert metrics.cluster_acc(y[:300], model.predict(x[:300])) == results["acc"]
  for name in report.PICTURES:
    (tmp_path / "run" / name).unlink()
  assert report.main([str(tmp_path / "run"), "--map", "pca"]) == 0
  assert all((tmp_path / "run" / name).exists() for name in report.PICTURES)
  assert report.main([str(tmp_path / "nothing")]) == 2


def test_mnist_experiment_local_files_and_reuse(tmp_path):
  write_mnist(tmp_path / "data", n_train=150, n_test=50)
  proc = run("mnist", tmp_path / "run1", f"--config.data_dir={tmp_path / 'data'}")
  assert proc.returncode == 0, proc.stderr[-3000:]
  check_workdir(tmp_path / "run1", 200)

  # Reusing the pretrained autoencoder skips pretraining.
  proc = run("mnist", tmp_path / "run2", f"--config.data_dir={tmp_path / 'data'}",
             f"--config.pretrained={tmp_path / 'run1' / 'autoencoder'}", "--config.seed=1")
  assert proc.returncode == 0, proc.stderr[-3000:]
  results, lines = check_workdir(tmp_path / "run2", 200)
  assert not any(l["phase"] == "pretrain" for l in lines)
  assert results["pretrained_from"].endswith("autoencoder") and results["seed"] == 1

  # IDEC pretrains as DEC-keras does, so it starts from the same autoencoder (run in
  # this process: the command line is the one above).
  def mnist_config(**changes):
    config = mnist.get_config()
    config.update_from_flattened_dict({
        "progress": False, "pretrain.num_epochs": 2, "pretrain.batch_size": 32,
        "dec.batch_size": 32, "dec.maxiter": 30, "dec.update_interval": 10,
        "kmeans.n_init": 2, "model.hidden_dims": (32, 32, 10), "embedding_map": "pca",
        "data_dir": str(tmp_path / "data"), **changes})
    return config

  autoencoder = str(tmp_path / "run1" / "autoencoder")
  runner.run(mnist_config(pretrained=autoencoder, recipe="idec"), tmp_path / "run_idec")
  results, _ = check_workdir(tmp_path / "run_idec", 200)
  config = json.loads((tmp_path / "run_idec" / "config.json").read_text())
  assert config["resolved"]["dec"]["objective"] == "idec" and results["recipe"] == "idec"
  # A dense autoencoder cannot start a conv recipe: refused, naming why.
  proc = run("mnist", tmp_path / "run_dcec", f"--config.data_dir={tmp_path / 'data'}",
             f"--config.pretrained={autoencoder}", "--config.recipe=dcec", tiny=TINY_CONV)
  assert proc.returncode == 1 and "arch='dense'" in proc.stderr, proc.stderr[-3000:]
  assert "Traceback" not in proc.stderr and not (tmp_path / "run_dcec").exists()

  # An autoencoder trained for other inputs is refused, naming the mismatch.
  with pytest.raises(checkpoint.CheckpointError, match="input_scaling='none'"):
    runner.run(mnist_config(pretrained=autoencoder, input_scaling="unit_power"),
               tmp_path / "run3")
  assert not (tmp_path / "run3").exists()

  # A finished work directory is never overwritten.
  before = (tmp_path / "run1" / "results.json").read_text()
  with pytest.raises(FileExistsError, match="already holds a finished run"):
    runner.run(mnist_config(), tmp_path / "run1")
  assert (tmp_path / "run1" / "results.json").read_text() == before


def test_conv_recipe_experiment_on_images(tmp_path):
  proc = run("digits", tmp_path / "run", "--config.n_samples=300", "--config.recipe=dcec",
             tiny=TINY_CONV)
  assert proc.returncode == 0, proc.stderr[-3000:]
  results, lines = check_workdir(tmp_path / "run", 300)
  assert results["recipe"] == "dcec"
  meta = json.loads((tmp_path / "run" / "autoencoder" / "meta.json").read_text())
  assert meta["arch"] == "conv" and meta["image_shape"] == [8, 8, 1]
  config = json.loads((tmp_path / "run" / "config.json").read_text())
  resolved = config["resolved"]
  assert resolved["dec"]["objective"] == "idec" and resolved["dec"]["optimizer"] == "adam"
  assert resolved["pretrain"]["optimizer"] == "adam" and not resolved["pretrain"]["augment"]
  first = next(l for l in lines if l["phase"] == "dec")
  assert first["delta_label"] is not None and first["delta_label"] < 0.05


def test_usps_experiment(tmp_path):
  rng = np.random.default_rng(0)
  np.savez_compressed(tmp_path / "usps.npz", x=rng.uniform(-1, 1, (120, 256)).astype(np.float32),
                      y=rng.integers(0, 10, 120).astype(np.uint8))
  proc = run("usps", tmp_path / "run", f"--config.data_dir={tmp_path}")
  assert proc.returncode == 0, proc.stderr[-3000:]
  results, _ = check_workdir(tmp_path / "run", 120)
  assert results["dataset"] == "usps"


def test_mnist_experiment_missing_data_says_how(tmp_path):
  proc = run("mnist", tmp_path / "run", f"--config.data_dir={tmp_path / 'empty'}")
  assert proc.returncode != 0
  assert "no MNIST files in" in proc.stderr and "train-images-idx3-ubyte.gz" in proc.stderr


def test_unknown_override_is_rejected(tmp_path):
  proc = run("digits", tmp_path / "run", "--config.dec.update_intervall=3")
  assert proc.returncode != 0 and "update_intervall" in proc.stderr


def test_seed_sweep_experiment(tmp_path):
  proc = run("digits", tmp_path / "sweep", "--config.n_samples=300", "--config.seeds=0,1,2",
             "--config.stream=true", "--config.stream_steps=3")
  assert proc.returncode == 0, proc.stderr[-3000:]
  workdir = tmp_path / "sweep"
  results = json.loads((workdir / "results.json").read_text())
  assert results["seeds"] == [0, 1, 2] and results["stream"] is True
  assert [r["seed"] for r in results["per_seed"]] == [0, 1, 2]
  accs = [r["acc"] for r in results["per_seed"]]
  assert results["summary"]["acc"]["mean"] == np.mean(accs)
  assert results["summary"]["acc"]["min"] == min(accs)
  for seed in (0, 1, 2):
    for name in ("autoencoder/meta.json", "model/meta.json", "confusion_matrix.png"):
      assert (workdir / f"seed_{seed}" / name).exists(), (seed, name)
    one = json.loads((workdir / f"seed_{seed}" / "results.json").read_text())
    assert RESULT_KEYS <= set(one) and one["seed"] == seed
  lines = [json.loads(l) for l in (workdir / "metrics.jsonl").read_text().splitlines()]
  assert {l["seed"] for l in lines if l["phase"] == "pretrain"} == {0, 1, 2}
  assert "mean" in proc.stdout and "seed 2" in proc.stdout

  # IDEC pretrains as DEC-keras does: a sweep of it starts from this sweep's autoencoders
  # (this and the next run in this process: the command line is the one above).
  def digits_config(**changes):
    config = digits.get_config()
    config.update_from_flattened_dict({
        "progress": False, "n_samples": 300, "pretrain.num_epochs": 2,
        "pretrain.batch_size": 32, "dec.batch_size": 32, "dec.maxiter": 30,
        "dec.update_interval": 10, "kmeans.n_init": 2, "model.hidden_dims": (32, 32, 10),
        "embedding_map": "pca", **changes})
    return config

  runner.run(digits_config(seeds=(0, 2), recipe="idec", pretrained=str(workdir)),
             tmp_path / "idec")
  idec = json.loads((tmp_path / "idec" / "results.json").read_text())
  assert idec["pretrained_from"] == str(workdir) and idec["recipe"] == "idec"
  idec_lines = (tmp_path / "idec" / "metrics.jsonl").read_text()
  assert '"phase": "pretrain"' not in idec_lines and '"phase": "dec"' in idec_lines
  assert (tmp_path / "idec" / "seed_2" / "autoencoder" / "meta.json").exists()

  # The sweep's seed-1 run is the one-seed run of seed 1.
  runner.run(digits_config(seed=1), tmp_path / "one")
  single = json.loads((tmp_path / "one" / "results.json").read_text())
  assert single["acc"] == results["per_seed"][1]["acc"]
  assert single["iterations"] == results["per_seed"][1]["iterations"]


def test_seed_sweep_pretrained_needs_a_sweeps_autoencoders(tmp_path):
  proc = run("digits", tmp_path / "run", "--config.seeds=0,1",
             f"--config.pretrained={tmp_path / 'ae'}")
  assert proc.returncode != 0 and "seed_<s>/autoencoder for every seed" in proc.stderr
  assert str(tmp_path / "ae" / "seed_0" / "autoencoder") in proc.stderr
  assert not (tmp_path / "run").exists()


def tiny_sweep_config(**changes):
  config = digits.get_config()
  config.update_from_flattened_dict({
      "progress": False, "n_samples": 300, "seeds": (0, 1), "checkpoint_every": 2,
      "checkpoint_min_interval_s": 0.0,
      "pretrain.num_epochs": 6, "pretrain.batch_size": 32, "dec.batch_size": 32,
      "dec.maxiter": 30, "dec.update_interval": 10, "kmeans.n_init": 2,
      "model.hidden_dims": (32, 32, 10), "embedding_map": "pca",
      "dec.learning_rate": 0.1,  # seed 0 stops by tol at iteration 10, seed 1 runs to 30
      **changes})
  return config


@pytest.fixture(scope="module")
def full_sweep(tmp_path_factory):
  """``tiny_sweep_config`` run once, uninterrupted: ``(results, workdir)``."""
  workdir = tmp_path_factory.mktemp("full") / "run"
  return runner.run(tiny_sweep_config(), workdir), workdir


def _records(workdir):
  """metrics.jsonl without its clock readings."""
  lines = [json.loads(l) for l in (workdir / "metrics.jsonl").read_text().splitlines()]
  return [{k: v for k, v in l.items() if k != "wall_s"} for l in lines]


def test_a_rerun_is_bit_identical(full_sweep, tmp_path):
  want, first = full_sweep
  got = runner.run(tiny_sweep_config(), tmp_path / "again")
  timeless = lambda r: {k: v for k, v in r.items() if not k.startswith("time_")}
  assert [timeless(r) for r in got["per_seed"]] == [timeless(r) for r in want["per_seed"]]
  assert _records(tmp_path / "again") == _records(first)
  x, _ = data.load_digits()
  for seed in (0, 1):
    a, b = (jdec.load(w / f"seed_{seed}" / "model") for w in (first, tmp_path / "again"))
    assert jax.tree.all(jax.tree.map(np.array_equal, a.params, b.params))
    np.testing.assert_array_equal(a.predict(x[:300]), b.predict(x[:300]))


def test_a_resumed_run_keeps_the_checkpoints_an_interrupted_one_saved(tmp_path):
  from jdec.experiments import workdir as workdir_lib  # pylint: disable=g-import-not-at-top
  params = {"w": np.arange(3.0)}
  complete, cut = tmp_path / "seed_0" / "model", tmp_path / "seed_1" / "model"
  checkpoint.save(complete, params, {"seed": 0})
  checkpoint.save(cut, params, {"seed": 1})
  (cut / "meta.json").unlink()  # as a save cut off by an older jdec left it
  kept = (complete / "meta.json").stat().st_mtime_ns
  for path in (complete, cut):
    workdir_lib.save_once(path, {"w": np.zeros(3)}, {"again": True}, resuming=True)
  assert (complete / "meta.json").stat().st_mtime_ns == kept  # not rewritten
  np.testing.assert_array_equal(checkpoint.load(complete)[0]["w"], params["w"])
  assert checkpoint.load(cut)[1] == {"again": True}
  assert (tmp_path / "seed_1" / "model.incomplete-1" / "params").is_dir()  # set aside


def test_distributed_without_a_cluster_says_what_to_pass(tmp_path):
  proc = run("digits", tmp_path / "run", "--config.distributed=True")
  assert proc.returncode == 1
  assert "--config.coordinator_address=HOST0:PORT" in proc.stderr
  assert "Traceback" not in proc.stderr
  assert not (tmp_path / "run").exists()


def test_resume_names_the_data_folder_by_what_it_is(tmp_path, monkeypatch):
  from jdec.experiments import workdir as workdir_lib  # pylint: disable=g-import-not-at-top
  (tmp_path / "data").mkdir()
  started = mnist.get_config()
  started.data_dir = str(tmp_path / "data")
  run_dir = tmp_path / "run"
  run_dir.mkdir()
  (run_dir / "config.json").write_text(json.dumps({"experiment": started.to_dict()}))
  monkeypatch.chdir(tmp_path / "data")
  again = mnist.get_config()
  again.update_from_flattened_dict({"data_dir": "../data", "resume": True})
  assert workdir_lib.prepare(run_dir, again) == (run_dir, workdir_lib.RESUME)  # same folder
  again.data_dir = "../other"
  with pytest.raises(ValueError, match="data_dir"):
    workdir_lib.prepare(run_dir, again)


def test_custom_data_from_the_command_line(tmp_path):
  x, y = data.load_digits()
  with open(tmp_path / "mine.csv", "w", encoding="utf-8") as f:
    f.write(",".join([f"p{i}" for i in range(64)] + ["digit"]) + "\n")
    for row, label in zip(x[:200], y[:200]):
      f.write(",".join(f"{v:.4f}" for v in row) + f",d{label}\n")
  proc = run("custom", tmp_path / "csv", f"--config.data={tmp_path / 'mine.csv'}",
             "--config.n_clusters=10", "--config.label_column=digit")
  assert proc.returncode == 0, proc.stderr[-3000:]
  results, _ = check_workdir(tmp_path / "csv", 200, pictures=[  # rows, not images
      p for p in report.PICTURES if p != "cluster_gallery.png"])
  assert results["dataset"] == "custom" and 0 < results["acc"] <= 1
  assert jdec.load(tmp_path / "csv" / "model").n_features_in == 64

  # Images in an .npz without labels: no scores, and no confusion matrix.
  np.savez(tmp_path / "mine.npz", x=x[:200].reshape(-1, 8, 8))
  config = custom.get_config()
  config.update_from_flattened_dict({
      "data": str(tmp_path / "mine.npz"), "n_clusters": 10, "progress": False,
      "pretrain.num_epochs": 2, "pretrain.batch_size": 32, "dec.batch_size": 32,
      "dec.maxiter": 30, "dec.update_interval": 10, "kmeans.n_init": 2,
      "model.hidden_dims": (32, 32, 10), "embedding_map": "pca"})
  results = runner.run(config, tmp_path / "npz")
  assert "acc" not in results and results["iterations"] > 0
  pictures = {p.name for p in (tmp_path / "npz").glob("*.png")}
  assert pictures == set(report.PICTURES) - {"confusion_matrix.png"}

  # Bad files are refused before anything is written, naming the problem.
  (tmp_path / "words.csv").write_text("a,b\n1,2\n3,x\n")
  bad = custom.get_config()
  bad.update_from_flattened_dict({"data": str(tmp_path / "words.csv"), "n_clusters": 2})
  with pytest.raises(data.DataError, match=r"line 3, column 1 \('b'\): 'x' is not a number"):
    runner.run(bad, tmp_path / "bad")
  assert not (tmp_path / "bad").exists()
  unnamed = custom.get_config()
  unnamed.data = str(tmp_path / "mine.npz")
  with pytest.raises(ValueError, match="--config.n_clusters=K"):
    runner.run(unnamed, tmp_path / "nok")
  assert not (tmp_path / "nok").exists()


def test_resume_drops_a_cut_off_last_metrics_line_and_refuses_a_damaged_one(tmp_path):
  from jdec.experiments import workdir as workdir_lib  # pylint: disable=g-import-not-at-top

  lines = [{"phase": "kmeans_raw", "seed": 0}] + [
      {"phase": "pretrain", "epoch": e, "loss": 1.0} for e in (1, 2, 3)]
  text = "".join(json.dumps(l) + "\n" for l in lines)
  (tmp_path / "metrics.jsonl").write_text(text + '{"phase": "pretr')  # killed mid-write
  workdir_lib.restart_metrics(tmp_path, lambda r: r.get("epoch", 0) <= 2)
  kept = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert kept == lines[:3]
  assert (tmp_path / "metrics-before-resume-1.jsonl").read_text().endswith('"phase": "pretr')

  for damaged, says in (
      (text.replace('"epoch": 2', '"epoch": 2,,', 1), "is not JSON"),
      (text.replace(json.dumps(lines[2]), "[2]", 1), "is not a JSON object"),
      (text.replace('"epoch": 2', '"epoch": "2"', 1), "is not a record of this run"),
      (text.replace('"epoch": 2', '"epoch": 2, "x": "\xff"', 1), "is not JSON")):  # Latin-1
    damaged = damaged.encode("latin-1")
    (tmp_path / "metrics.jsonl").write_bytes(damaged)
    with pytest.raises(ValueError, match=rf"metrics.jsonl, line 3, {says}"):
      workdir_lib.restart_metrics(tmp_path, lambda r: r.get("epoch", 0) <= 2)
    assert (tmp_path / "metrics.jsonl").read_bytes() == damaged  # nothing moved or lost
    assert not (tmp_path / "metrics-before-resume-2.jsonl").exists()
  assert not list(tmp_path.glob(".*partial*"))
