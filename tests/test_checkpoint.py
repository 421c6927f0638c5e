"""Saving and restoring parameters; nothing is ever overwritten."""

import os
import pathlib
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest

from jdec import checkpoint, models


def test_round_trip_and_no_overwrite(tmp_path):
  model = models.AutoEncoder(20, (8, 4))
  params = models.init_autoencoder(jax.random.key(0), model, 20)
  checkpoint.save(tmp_path / "ae", params, {"input_dim": 20})
  restored, meta = checkpoint.load(tmp_path / "ae")
  assert meta == {"input_dim": 20}
  for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(restored)):
    np.testing.assert_array_equal(a, b)
  assert jax.tree.structure(params) == jax.tree.structure(restored)
  with pytest.raises(checkpoint.CheckpointError, match="already exists"):
    checkpoint.save(tmp_path / "ae", params, {})
  # The refused save left the first checkpoint intact.
  assert checkpoint.load(tmp_path / "ae")[1] == {"input_dim": 20}


def test_not_a_checkpoint(tmp_path):
  with pytest.raises(checkpoint.CheckpointError, match="not a jdec checkpoint"):
    checkpoint.load(tmp_path)


class Interrupted(Exception):
  """Stands for a run killed mid-pretraining."""


def _digits():
  from sklearn.datasets import load_digits  # pylint: disable=import-outside-toplevel
  return load_digits().data[:400].astype(np.float32) / 16


CONFIG = {"pretrain": {"num_epochs": 5, "batch_size": 32}, "dec": {"maxiter": 40},
          "model": {"hidden_dims": [32, 16, 6]}, "kmeans": {"n_init": 2}}


def test_interrupted_pretraining_resumes_exactly(tmp_path):
  import jdec  # pylint: disable=import-outside-toplevel
  x = _digits()
  whole = jdec.fit(x, 10, config=CONFIG, progress=False)

  def stop_at_epoch_4(record):
    if record.get("epoch") == 4:  # after epoch 4's steps, before its checkpoint
      raise Interrupted

  with pytest.raises(Interrupted):
    jdec.fit(x, 10, config=CONFIG, progress=False, log_fn=stop_at_epoch_4,
             checkpoints=checkpoint.Progress(tmp_path / "ck", every=3, min_interval_s=0))
  progress = checkpoint.Progress(tmp_path / "ck", every=3, min_interval_s=0)
  assert progress.latest_epoch() == 3
  resumed = jdec.fit(x, 10, config=CONFIG, progress=False, checkpoints=progress)
  assert progress.resumed_epoch == 3 and progress.resumed_wall_s > 0
  assert [h["epoch"] for h in resumed.history["pretrain"]] == [4, 5]
  for a, b in zip(jax.tree.leaves(whole.ae_params), jax.tree.leaves(resumed.ae_params)):
    np.testing.assert_allclose(a, b, atol=1e-6)
  np.testing.assert_array_equal(whole.labels, resumed.labels)
  assert whole.iterations == resumed.iterations
  # The final epoch is saved and is the only one kept.
  assert checkpoint.Progress(tmp_path / "ck", every=3, min_interval_s=0).latest_epoch() == 5
  assert sorted(p.name for p in (tmp_path / "ck").iterdir() if p.name.isdigit()) == ["5"]


def test_resumes_a_one_run_checkpoint_saved_without_the_run_axis(tmp_path):
  """Checkpoints of one run written before every phase trained a stack still resume."""
  import jdec  # pylint: disable=import-outside-toplevel
  from jdec import recipes, runs, train  # pylint: disable=import-outside-toplevel
  x = _digits()
  whole = jdec.fit(x, 10, config=CONFIG, progress=False)
  with pytest.raises(Interrupted):
    jdec.fit(x, 10, config=CONFIG, progress=False,
             log_fn=lambda r: r.get("epoch") == 4 and (_ for _ in ()).throw(Interrupted),
             checkpoints=checkpoint.Progress(tmp_path / "ck", every=3, min_interval_s=0))
  cfg = recipes.resolve("dec_keras", CONFIG)
  model = models.build_autoencoder(cfg.model, 64, None)
  params = runs.stack([models.init_autoencoder(jax.random.key(0), model, 64)])
  template = runs.create_states(model.apply, params, train.optimizer("sgd", 1.0, 0.9))
  stacked = checkpoint.Progress(tmp_path / "ck", every=3, min_interval_s=0)
  epoch, state, wall_s = stacked.restore(template)
  stacked.close()
  assert epoch == 3 and state.params["encoder"]["dense_0"]["kernel"].shape == (1, 64, 32)
  old = checkpoint.Progress(tmp_path / "old", every=3, min_interval_s=0)
  old.save(3, runs.take(state, 0), wall_s, final=True)  # [64, 32]: no run axis
  old.close()
  resumed = jdec.fit(x, 10, config=CONFIG, progress=False,
                     checkpoints=checkpoint.Progress(tmp_path / "old", every=3,
                                                     min_interval_s=0))
  assert [h["epoch"] for h in resumed.history["pretrain"]] == [4, 5]
  for a, b in zip(jax.tree.leaves(whole.ae_params), jax.tree.leaves(resumed.ae_params)):
    np.testing.assert_allclose(a, b, atol=1e-6)
  np.testing.assert_array_equal(whole.labels, resumed.labels)


def test_resume_refuses_another_model(tmp_path):
  import jdec  # pylint: disable=import-outside-toplevel
  x = _digits()
  jdec.fit(x, 10, config=CONFIG, progress=False,
           checkpoints=checkpoint.Progress(tmp_path / "ck", every=2, min_interval_s=0))
  other = {**CONFIG, "model": {"hidden_dims": [32, 16, 4]}}
  with pytest.raises(checkpoint.CheckpointError, match="does not fit this model"):
    jdec.fit(x, 10, config=other, progress=False,
             checkpoints=checkpoint.Progress(tmp_path / "ck", every=2, min_interval_s=0))
  longer_done = {**CONFIG, "pretrain": {"num_epochs": 3, "batch_size": 32}}
  with pytest.raises(checkpoint.CheckpointError, match="past this run's 3 epochs"):
    jdec.fit(x, 10, config=longer_done, progress=False,
             checkpoints=checkpoint.Progress(tmp_path / "ck", every=2, min_interval_s=0))


def test_progress_bad_settings(tmp_path):
  import jdec  # pylint: disable=import-outside-toplevel
  with pytest.raises(ValueError, match="every >= 1 epochs"):
    checkpoint.Progress(tmp_path / "ck", every=0)
  with pytest.raises(ValueError, match="min_interval_s must be >= 0"):
    checkpoint.Progress(tmp_path / "ck", every=1, min_interval_s=-1)
  with pytest.raises(TypeError, match="checkpoints must be a jdec.checkpoint.RunCheckpoints"):
    jdec.fit(_digits(), 10, progress=False, checkpoints=str(tmp_path / "ck"))


def test_checkpoints_keep_a_minimum_interval(tmp_path):
  import jdec  # pylint: disable=import-outside-toplevel
  saved = []
  progress = checkpoint.Progress(tmp_path / "ck", every=1, min_interval_s=3600)
  save = progress.save
  progress.save = lambda epoch, *a, **k: saved.append((epoch, save(epoch, *a, **k)))
  jdec.fit(_digits(), 10, config=CONFIG, progress=False, checkpoints=progress)
  # Due every epoch, but an hour apart: only the final epoch is written.
  assert [e for e, written in saved if written] == [5]
  assert checkpoint.Progress(tmp_path / "ck", every=1).latest_epoch() == 5


RUN_CONFIG = {**CONFIG, "dec": {"maxiter": 40, "update_interval": 10, "tol": 0.0}}


def _in_folder(folder):
  return checkpoint.RunCheckpoints.in_folder(folder, every=1, dec_every=1, min_interval_s=0)


@pytest.fixture(scope="module")
def finished_checkpoints(tmp_path_factory):
  """A fit that kept every phase's checkpoints (the runner removes them when done)."""
  import jdec  # pylint: disable=import-outside-toplevel
  folder = tmp_path_factory.mktemp("run") / "ck"
  return jdec.fit(_digits(), 10, config=RUN_CONFIG, progress=False,
                  checkpoints=_in_folder(folder)), folder


def test_a_finished_fit_resumes_from_its_last_checkpoints_without_training(
    finished_checkpoints, tmp_path):
  import jdec  # pylint: disable=import-outside-toplevel
  whole, kept = finished_checkpoints
  assert sorted(p.name for p in kept.iterdir()) == ["dec", "kmeans", "pretrain"]
  folder = pathlib.Path(shutil.copytree(kept, tmp_path / "ck"))
  # A save a kill cut off is left as orbax's temporary folder: it is ignored.
  latest = max(int(p.name) for p in (folder / "dec").iterdir())
  cut = shutil.copytree(folder / "dec" / str(latest),
                        folder / "dec" / f"{latest + 1}.orbax-checkpoint-tmp-7")
  for data in pathlib.Path(cut).rglob("state/**/d/*"):
    data.write_bytes(data.read_bytes()[:10])
  assert checkpoint.RunCheckpoints.in_folder(folder).dec.latest_epoch() == latest
  again = jdec.fit(_digits(), 10, config=RUN_CONFIG, progress=False,
                   checkpoints=_in_folder(folder))
  assert again.history["pretrain"] == []  # nothing trained: read from the checkpoints
  assert again.history["dec"] == whole.history["dec"]  # the DEC history comes with them
  np.testing.assert_array_equal(again.labels, whole.labels)
  np.testing.assert_array_equal(again.q, whole.q)
  np.testing.assert_array_equal(again.kmeans.labels, whole.kmeans.labels)
  assert (again.iterations, again.stopped_by) == (40, "maxiter")
  for a, b in zip(jax.tree.leaves(whole.state.params), jax.tree.leaves(again.state.params)):
    np.testing.assert_array_equal(a, b)


def _damage(folder, how):
  if how == "truncated data":  # every file of array data cut in half
    for target in folder.rglob("state/**/d/*"):
      target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
  else:  # the JSON record saved with the arrays
    next(folder.rglob("info/metadata")).write_text('{"step": 3, "hist')


@pytest.mark.parametrize("phase", ["pretrain", "kmeans", "dec"])
@pytest.mark.parametrize("how", ["truncated data", "garbled info"])
def test_a_damaged_checkpoint_is_named_and_left_as_it_is(finished_checkpoints, tmp_path,
                                                          phase, how):
  import jdec  # pylint: disable=import-outside-toplevel
  folder = tmp_path / "ck"
  shutil.copytree(finished_checkpoints[1], folder)
  _damage(folder / phase, how)
  before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
  with pytest.raises(checkpoint.CheckpointError,
                     match=rf"{folder / phase}.*damaged.*move the folder away"):
    jdec.fit(_digits(), 10, config=RUN_CONFIG, progress=False, checkpoints=_in_folder(folder))
  assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before


def test_remove_stale_partials_keeps_live_writers(tmp_path):
  """A killed writer's ``.<name>.partial-<pid>`` goes (folder or file); a running
  process's stays, and so do names save() never writes."""
  dead = subprocess.Popen([sys.executable, "-c", "pass"])
  dead.wait()  # reaped: no zombie left to count as running
  live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
  try:
    if checkpoint._running(dead.pid):
      pytest.skip("the dead writer's pid was reused already")
    stale = tmp_path / f".model.partial-{dead.pid}"
    stale_file = tmp_path / f".model.partial-{os.getpid()}"  # this process's own
    kept = [tmp_path / f".model.partial-{live.pid}", tmp_path / ".other.partial-1",
            tmp_path / ".model.partial-abc", tmp_path / ".model.partial-99999999999",
            tmp_path / ".model.partial-0"]
    for folder in (stale, *kept):
      folder.mkdir()
    stale_file.write_text("half a checkpoint")
    checkpoint.remove_stale_partials(tmp_path / "model")
    assert not stale.exists() and not stale_file.exists()
    assert all(folder.is_dir() for folder in kept)
  finally:
    live.kill()
    live.wait()


def test_another_users_writer_counts_as_running(tmp_path, monkeypatch):
  def denied(pid, sig):
    raise PermissionError(1, "Operation not permitted")
  monkeypatch.setattr(os, "kill", denied)
  assert checkpoint._running(12345)
  folder = tmp_path / ".model.partial-12345"
  folder.mkdir()
  checkpoint.remove_stale_partials(tmp_path / "model")
  assert folder.is_dir()
