"""The benchmark and the scaling experiment, on small sizes."""

import importlib.metadata
import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest

from jdec.experiments import bench, peers


def test_bench_small(tmp_path):
  cfg = bench.get_config()
  cfg.update(dict(synthetic=True, n_samples=1200, hidden_dims=(32, 32, 64, 10), epochs=2,
                  ceiling_steps=5, dec_intervals=1, sweep_seeds=2, clustpy=False))
  out = bench.run(cfg, tmp_path)
  files = list(tmp_path.glob("bench-*.json"))
  assert len(files) == 1
  saved = json.loads(files[0].read_text())
  names = {(r["name"], r["phase"]) for r in saved["rows"]}
  assert {("ceiling (bare jitted step)", "pretrain"), ("jdec", "pretrain"),
          ("jdec bfloat16 matmuls", "pretrain"), ("jdec 2 seeds at once", "pretrain"),
          ("ceiling (bare jitted step)", "dec"), ("jdec", "dec"),
          ("jdec with target refreshes", "dec")} <= names
  assert all(r["epoch_s"] > 0 for r in saved["rows"])
  assert saved["data"] == "synthetic uniform" and saved["n"] == 1200
  assert 0 < out["ratios"]["pretrain_of_ceiling"] and 0 < out["ratios"]["dec_of_ceiling"]
  assert saved["versions"]["flax"] == importlib.metadata.version("flax")
  torch_installed = "torch" in importlib.metadata.packages_distributions()
  assert ("torch" in saved["versions"]) == torch_installed
  if "torch_skipped" not in out:  # the bench extra is installed
    assert ("plain PyTorch loop", "pretrain") in names and "pretrain_x_torch" in out["ratios"]
  else:
    assert "pip install" in out["torch_skipped"]
  if importlib.util.find_spec("keras"):
    assert {("Keras 3 (JAX backend)", "pretrain"), ("Keras 3 (JAX backend)", "dec")} <= names
    assert out["ratios"]["pretrain_x_keras"] > 0 and out["ratios"]["dec_x_keras"] > 0
  else:
    assert "pip install" in out["keras_skipped"]


def test_keras_epochs_small(monkeypatch):
  monkeypatch.setenv("KERAS_BACKEND", "jax")  # else keras's first import picks TensorFlow
  pytest.importorskip("keras", reason='the Keras peer needs pip install "jdec[bench]"')
  x = np.random.default_rng(0).random((600, 20), dtype=np.float32)
  t = peers.keras_epochs(x, (16, 16, 32, 4), batch_size=64, epochs=2, n_clusters=3,
                         update_interval=5)
  assert t["pretrain_epoch_s"] > 0 and t["dec_epoch_s"] > 0


def test_bench_table():
  rows = [{"name": "jdec", "phase": "pretrain", "epoch_s": 2.0, "samples_per_s": 10.0},
          {"name": "ClustPy DEC", "phase": "pretrain", "epoch_s": 5.0, "samples_per_s": 4.0}]
  assert bench.ratios(rows) == {"pretrain_x_clustpy": 2.5}
  assert "2.50x" in bench.table(rows)
  dec_rows = [{"name": "jdec with target refreshes", "phase": "dec", "epoch_s": 4.0,
               "samples_per_s": 1.0, "vs": "jdec with target refreshes"},
              {"name": "plain PyTorch loop", "phase": "dec", "epoch_s": 6.0, "samples_per_s": 1.0,
               "vs": "jdec with target refreshes"}]
  assert bench.ratios(dec_rows) == {"dec_x_torch": 1.5}
  keras_rows = [*dec_rows, {"name": "Keras 3 (JAX backend)", "phase": "dec", "epoch_s": 8.0,
                            "samples_per_s": 1.0, "vs": "jdec with target refreshes"}]
  assert bench.ratios(keras_rows)["dec_x_keras"] == 2.0
  assert "2.00x" in bench.table(keras_rows)


def test_scaling_small(tmp_path):
  done = subprocess.run(
      [sys.executable, "-m", "jdec.experiments.scaling", f"--workdir={tmp_path}",
       "--config.sizes=3000", "--config.epochs=2", "--config.dec_intervals=2",
       "--config.stream_steps=4", "--config.hidden_dims=(32,32,64,10)",
       "--config.update_interval=10"], capture_output=True, text=True, timeout=600, check=False)
  assert done.returncode == 0, done.stderr[-3000:]
  rows = json.loads(next(tmp_path.glob("scaling-*.json")).read_text())["rows"]
  by_mode = {r["mode"]: r for r in rows}
  assert set(by_mode) == {"device", "stream"}
  for r in rows:
    assert r["n"] == 3000 and r["pretrain_epoch_s"] > 0 and r["dec_interval_s"] > 0
    assert r["peak_rss_gib"] > r["data_gib"]
  # Streaming keeps the data out of JAX's arrays.
  saved = by_mode["device"]["device_gib"] - by_mode["stream"]["device_gib"]
  assert saved == pytest.approx(by_mode["device"]["data_gib"], rel=0.2)
