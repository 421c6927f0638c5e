"""Runs killed with SIGKILL in every phase resume to the uninterrupted run's result.

Each test runs a small experiment once uninterrupted, and once as a chain of
processes (``kill_worker.py``), each killed at a point of its own and the next
resuming with ``--config.resume=True``, and compares what the two leave.
"""

import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys

import jax
import numpy as np
import pytest

import jdec
import kill_worker
from jdec.experiments import runner

WORKER = pathlib.Path(__file__).with_name("kill_worker.py")
SMALL = {
    "progress": False, "n_samples": 300, "embedding_map": "pca", "kmeans.n_init": 2,
    "model.hidden_dims": [32, 32, 10], "pretrain.batch_size": 32, "dec.batch_size": 32,
    "dec.maxiter": 30, "dec.update_interval": 10,
    "checkpoint_every": 1, "checkpoint_every_updates": 1, "checkpoint_min_interval_s": 0.0,
}
# Seed 0 stops by tol at iteration 10 and leaves the stack; seed 1 trains on to 30. DEC
# checkpoints 1-3 follow its three intervals, the 4th comes when both have stopped.
SWEEP = {**SMALL, "seeds": [0, 1], "pretrain.num_epochs": 6, "dec.tol": 0.001,
         "dec.learning_rate": 0.1}
# Layer-wise: 2 pairs and fine-tuning of 4 blocks of 10 steps each, 12 blocks.
LAYERWISE = {**SMALL, "recipe": "paper", "seed": 3, "kmeans_raw": False, "dec.tol": 0.0,
             "model.hidden_dims": [32, 10],
             "pretrain.layer_steps": 40, "pretrain.finetune_steps": 40,
             "pretrain.log_every": 10, "pretrain.lr_decay_every": 30}


def worker(workdir, overrides: dict, point: str, resume: bool):
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  return subprocess.run(
      [sys.executable, str(WORKER), str(workdir), json.dumps({**overrides, "resume": resume}),
       point], capture_output=True, text=True, env=env, timeout=300)


def run_chain(workdir, overrides: dict, points: list[str], first_resumes: bool = False,
              after: dict | None = None) -> str:
  """Runs ``overrides`` into ``workdir``, killed at each of ``points`` in turn, then
  resumed to the end (the first run resumes one already there with ``first_resumes``);
  ``after[point]()`` is called once the run killed there is gone. Returns what the last
  process printed."""
  for i, point in enumerate(points):
    proc = worker(workdir, overrides, point, resume=first_resumes or i > 0)
    assert proc.returncode == -signal.SIGKILL, (
        f"not killed at {point} (exit {proc.returncode}): {proc.stderr[-3000:]}")
    (after or {}).get(point, lambda: None)()
  proc = worker(workdir, overrides, "none", resume=True)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return proc.stdout


def snapshot(folder) -> dict:
  return {f: f.read_bytes() for f in folder.rglob("*") if f.is_file()}


def refuses_a_damaged_dec_checkpoint(workdir, tmp_path):
  """A copy of ``workdir`` whose DEC checkpoint is cut short is refused on resume, with
  nothing changed."""
  copy = pathlib.Path(shutil.copytree(workdir, tmp_path / "damaged"))
  for data in (copy / "checkpoints" / "dec").rglob("state/**/d/*"):
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
  before = snapshot(copy)
  with pytest.raises(jdec.checkpoint.CheckpointError,
                     match=rf"{copy / 'checkpoints' / 'dec'}: it is damaged"):
    runner.run(kill_worker.config_from({**SWEEP, "resume": True}), copy)
  assert snapshot(copy) == before  # metrics.jsonl included: nothing moved or rewritten


def records(workdir):
  """metrics.jsonl without its clock readings."""
  lines = (workdir / "metrics.jsonl").read_text().splitlines()
  return [{k: v for k, v in json.loads(l).items() if k != "wall_s"} for l in lines]


def scores(results: dict) -> list[dict]:
  keep = ("seed", "acc", "nmi", "ari", "ae_kmeans_acc", "kmeans_raw_acc", "iterations",
          "stopped_by")
  return [{k: r.get(k) for k in keep} for r in results.get("per_seed", [results])]


def assert_same_run(got, want, seeds):
  """``got`` (resumed) left what the uninterrupted ``want`` left, bit for bit."""
  results = json.loads((got / "results.json").read_text())
  assert scores(results) == scores(json.loads((want / "results.json").read_text()))
  assert records(got) == records(want)  # every record once, none lost
  for folder in ([f"seed_{s}" for s in seeds] if len(seeds) > 1 else ["."]):
    for name in ("model", "autoencoder"):
      a, b = (jdec.checkpoint.load(w / folder / name)[0] for w in (got, want))
      assert jax.tree.all(jax.tree.map(np.array_equal, a, b)), f"{folder}/{name} differs"
  assert not (got / "checkpoints").exists()
  assert not list(got.rglob(".*partial*")), "a partial file was left behind"
  return results


@pytest.fixture
def uninterrupted(tmp_path, monkeypatch):
  """Runs ``overrides`` in this process, without pictures (they are not compared)."""

  def run(overrides: dict):
    workdir = tmp_path / "whole"
    monkeypatch.setattr(runner.report, "draw", lambda *a, **k: None)
    runner.run(kill_worker.config_from({**overrides, "resume": False}), workdir)
    return workdir

  return run


def test_a_sweep_killed_in_every_phase_resumes_to_the_same_result(tmp_path, uninterrupted):
  want = uninterrupted(SWEEP)
  got = tmp_path / "killed"
  first = worker(got, SWEEP, "pretrain:3:mid", resume=False)  # pretraining, mid-save
  assert first.returncode == -signal.SIGKILL, first.stderr[-3000:]
  # Neither a plain rerun nor a resume with other settings touches the cut run.
  before = snapshot(got)
  with pytest.raises(FileExistsError, match="--config.resume=True"):
    runner.run(kill_worker.config_from({**SWEEP, "resume": False}), got)
  with pytest.raises(ValueError, match="settings differ .*: dec "):
    runner.run(kill_worker.config_from({**SWEEP, "resume": True, "dec.tol": 0.5}), got)
  assert snapshot(got) == before

  last = run_chain(got, SWEEP, [
      "kmeans:1:mid",     # while the k-means result is being written
      "dec:2:after",      # DEC, seed 0 stopped, seed 1 after its second interval
      "dec:done:mid",     # while the checkpoint of the stopped runs (the 4th) is written
      "model:2:mid",      # writing seed 1's model/ folder, seed 0's written
      "results",          # results.json written, checkpoints not yet removed
  ], first_resumes=True,
      after={"dec:2:after": lambda: refuses_a_damaged_dec_checkpoint(got, tmp_path)})
  assert "holds a finished run" in last  # the last resume trained nothing
  results = assert_same_run(got, want, SWEEP["seeds"])
  assert [(r["iterations"], r["stopped_by"]) for r in results["per_seed"]] == [
      (10, "tol"), (30, "maxiter")]
  assert len(list(got.glob("metrics-before-resume-*.jsonl"))) == 5
  lines = [json.loads(l) for l in (got / "metrics.jsonl").read_text().splitlines()]
  for seed in SWEEP["seeds"]:  # each epoch logged once
    assert [l["epoch"] for l in lines if l["phase"] == "pretrain" and l["seed"] == seed] == [
        1, 2, 3, 4, 5, 6]


def test_one_seed_killed_in_layerwise_pretraining_and_later_resumes(tmp_path, uninterrupted):
  want = uninterrupted(LAYERWISE)
  got = tmp_path / "killed"
  run_chain(got, LAYERWISE, [
      "pretrain:6:after",   # the second layer pair, after its second block
      "pretrain:9:mid",     # fine-tuning's first block, while it is written
      "kmeans:running",     # k-means, before its result is saved
      "dec:1:mid",          # DEC's first update, while it is written
      "pictures",           # drawing the pictures: results.json not written yet
  ])
  assert_same_run(got, want, [LAYERWISE["seed"]])
