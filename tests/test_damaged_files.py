"""Damaged files on disk: a model folder (``jdec.save``, an experiment's ``model/``) and a
work directory's ``config.json``, ``results.json`` and ``metrics.jsonl``. Each is either
read whole or refused with an error naming the file and what to do, and nothing is
deleted or overwritten (``jdec.load``, ``python -m jdec.predict``, ``python -m jdec.report``)."""

import itertools
import json
import logging
import pathlib
import shutil
import sys
import tempfile
import time

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jdec
from jdec import checkpoint, predict, report, trained
from tiny_training import tiny_model


@pytest.fixture(scope="module")
def folder():
  with tempfile.TemporaryDirectory(prefix="jdec-damaged-") as name:
    yield pathlib.Path(name)


@pytest.fixture(scope="module")
def model():
  return tiny_model(input_dim=6)


@pytest.fixture(scope="module")
def saved(model, folder):
  return jdec.save(model, folder / "good")


_copies = itertools.count()


def copy(saved, folder) -> pathlib.Path:
  return pathlib.Path(shutil.copytree(saved, folder / f"copy{next(_copies)}"))


def snapshot(path: pathlib.Path) -> dict:
  """Every file under ``path`` with its bytes."""
  return {p: p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def same_params(a, b) -> bool:
  return all(np.array_equal(u, v) for u, v in zip(jax.tree.leaves(a.params),
                                                  jax.tree.leaves(b.params)))


def meta_with(path, **changes):
  meta = json.loads((path / "meta.json").read_text())
  meta.update(changes)
  (path / "meta.json").write_text(json.dumps({k: v for k, v in meta.items() if v != "DROP"}))


def test_damaged_model_folders_name_the_file_and_stay_as_they_are(model, saved, folder,
                                                                  capsys):
  x = folder / "x.npy"
  np.save(x, np.ones((3, 6)))
  meta = (saved / "meta.json").read_bytes()
  damages = {
      "cut meta.json": (lambda p: (p / "meta.json").write_bytes(meta[:len(meta) // 2]),
                        r"meta.json is damaged \(.*\); save the model again"),
      "empty meta.json": (lambda p: (p / "meta.json").write_bytes(b""), "meta.json is damaged"),
      "binary meta.json": (lambda p: (p / "meta.json").write_bytes(b"\x93\xff\x00" * 9),
                           "meta.json is damaged"),
      "meta.json a list": (lambda p: (p / "meta.json").write_text("[1, 2]"),
                           "meta.json is not a jdec model description"),
      "no input_dim": (lambda p: meta_with(p, input_dim="DROP"),
                       r"meta.json lacks \['input_dim'\].*save the model again"),
      "zero width": (lambda p: meta_with(p, hidden_dims=[0, 3]),
                     r"meta.json is damaged: hidden_dims must be a list of integers >= 1"),
      "text scale": (lambda p: meta_with(p, input_scale="x"),
                     "meta.json is damaged: input_scale must be a number > 0, got 'x'"),
      "odd image": (lambda p: meta_with(p, image_shape=[2, 2, 1]),
                    r"image_shape \[2, 2, 1\] does not hold input_dim=6"),
      "no params": (lambda p: shutil.rmtree(p / "params"), "is not a jdec model folder"),
      "params a file": (lambda p: (shutil.rmtree(p / "params"), (p / "params").write_text("")),
                        "is not a jdec model folder"),
      "empty params": (lambda p: [f.unlink() for f in (p / "params").rglob("*") if f.is_file()],
                       r"cannot restore the parameters in .*params: they are damaged"),
  }
  for name, (damage, words) in damages.items():
    path = copy(saved, folder)
    damage(path)
    before = snapshot(path)
    with pytest.raises(checkpoint.CheckpointError, match=words):
      jdec.load(path)
    assert predict.main(["--model", str(path), "--input", str(x), "--output",
                         str(folder / "labels.npy"), "--no-progress"]) == 2, name
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(path) in err and err.count("\n") == 1, err
    assert snapshot(path) == before, name  # nothing deleted or overwritten
  assert not (folder / "labels.npy").exists()
  with pytest.raises(checkpoint.CheckpointError, match="is a file, not a model folder"):
    jdec.load(saved / "meta.json")
  autoencoder = copy(saved, folder)  # as --config.pretrained reads it: checkpoint.load
  (autoencoder / "meta.json").write_bytes(meta[:7])
  with pytest.raises(checkpoint.CheckpointError, match="meta.json is damaged"):
    checkpoint.load(autoencoder)

  nan = tiny_model(input_dim=6)
  nan.params["centroids"][0, 0] = np.nan
  with pytest.raises(checkpoint.CheckpointError, match="hold NaN or infinite values"):
    jdec.load(jdec.save(nan, folder / "nan"))


@settings(max_examples=30, deadline=None, derandomize=True)
@given(data=st.data())
def test_damaged_parameter_files_load_exactly_or_are_refused(model, saved, folder, data):
  """Any cut or garbage in any file under params/ either leaves the saved parameters
  readable exactly as written (orbax keeps some files twice) or is refused, naming the
  folder; never other numbers, never a traceback on stderr."""
  path = copy(saved, folder)
  files = sorted(p for p in (path / "params").rglob("*") if p.is_file())
  target = data.draw(st.sampled_from(files), label="file")
  raw = target.read_bytes()
  how = data.draw(st.sampled_from(["cut", "garbage", "flip", "delete"]), label="how")
  at = data.draw(st.integers(0, max(len(raw) - 1, 0)), label="at")
  if how == "cut":
    target.write_bytes(raw[:at])
  elif how == "garbage":
    junk = data.draw(st.binary(min_size=1, max_size=256), label="junk")
    target.write_bytes(raw[:at] + junk + raw[at + len(junk):])
  elif how == "flip" and raw:
    target.write_bytes(raw[:at] + bytes([raw[at] ^ 0xFF]) + raw[at + 1:])
  else:
    target.unlink()
  before = snapshot(path)
  try:
    loaded = jdec.load(path)
  except checkpoint.CheckpointError as e:
    assert str(path / "params") in str(e) and "save them again" in str(e), str(e)
  else:
    assert same_params(loaded, model)
  assert snapshot(path) == before


@settings(max_examples=40, deadline=None, derandomize=True)
@given(key=st.sampled_from(trained.DESCRIPTION_KEYS + ("format", "format_version")),
       value=st.recursive(st.none() | st.booleans() | st.integers(-3, 1 << 40)
                          | st.floats() | st.text(max_size=8),
                          lambda inner: st.lists(inner, max_size=4)
                          | st.dictionaries(st.text(max_size=4), inner, max_size=3),
                          max_leaves=6) | st.just("DROP"))
def test_any_meta_json_value_loads_a_working_model_or_is_refused(model, saved, folder, key,
                                                                 value):
  path = copy(saved, folder)
  meta_with(path, **{key: value})  # NaN and inf too, as Python's json writes them
  try:
    loaded = jdec.load(path)
  except checkpoint.CheckpointError as e:
    assert str(path) in str(e), str(e)
    return
  assert loaded.predict(np.ones((2, 6))).shape == (2,)


def test_no_traceback_noise_after_a_failed_restore(saved, folder, monkeypatch):
  """orbax's reads still in flight after a failed restore report to its closed event
  loop; those reports are not printed."""
  heard = []
  monkeypatch.setattr(sys, "unraisablehook", heard.append)
  path = copy(saved, folder)
  data_file = next((path / "params" / "d").iterdir())
  data_file.write_bytes(data_file.read_bytes()[:data_file.stat().st_size // 2])
  with pytest.raises(checkpoint.CheckpointError, match="save them again"):
    jdec.load(path)
  time.sleep(0.3)  # the late reports come from tensorstore's threads
  assert not heard, [str(u.exc_value) for u in heard]


# A finished work directory without training: its files written as the runner writes them.
RECORDS = [{"phase": "kmeans_raw", "seed": 0, "acc": 0.5}] + [
    {"phase": "pretrain", "epoch": e, "loss": 1.0 / e} for e in (1, 2, 3)] + [
    {"phase": "dec", "iteration": i, "loss": 0.1, "delta_label": 0.01} for i in (0, 5)]


@pytest.fixture(scope="module")
def workdir(model, saved, folder):
  path = folder / "run"
  path.mkdir()
  np.save(path / "x.npy", np.random.default_rng(0).random((40, 6), dtype=np.float32))
  (path / "config.json").write_text(json.dumps({"experiment": {
      "dataset": "custom", "data": str(path / "x.npy"), "seed": 0, "recipe": "dec_keras",
      "n_clusters": 3, "seeds": None}}))
  (path / "results.json").write_text(json.dumps({"seed": 0, "iterations": 5}))
  (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
  shutil.copytree(saved, path / "model")
  return path


def test_read_records_skips_only_a_cut_off_last_line(workdir, folder, caplog):
  good = (workdir / "metrics.jsonl").read_bytes()
  path = folder / "records"
  path.mkdir()
  (path / "metrics.jsonl").write_bytes(good + b'{"phase": "dec", "itera')
  with caplog.at_level(logging.WARNING):
    assert report.read_records(path) == RECORDS
  assert "line 7, was cut off" in caplog.text
  lines = good.split(b"\n")
  for i, bad in ((3, b'{"phase": "pretrain",, "epoch"'), (2, b"\xff\xfe garbage"),
                 (4, b"[1, 2]"), (6, b"42")):
    damaged = b"\n".join(lines[:i - 1] + [bad] + lines[i:])
    (path / "metrics.jsonl").write_bytes(damaged)
    with pytest.raises(ValueError, match=rf"metrics.jsonl, line {i}, is not (a )?JSON"):
      report.read_records(path)


def test_report_names_a_damaged_file_and_draws_over_nothing(workdir, folder, capsys):
  def damaged(name, edit):
    path = pathlib.Path(shutil.copytree(workdir, folder / f"run_{name}"))
    edit(path)
    return path

  results = (workdir / "results.json").read_bytes()
  metrics = (workdir / "metrics.jsonl").read_bytes()
  cases = [
      (damaged("cut_results", lambda p: (p / "results.json").write_bytes(results[:9])),
       "results.json is damaged"),
      (damaged("list_results", lambda p: (p / "results.json").write_text("[]")),
       "results.json is damaged: it holds a JSON list"),
      (damaged("config", lambda p: (p / "config.json").write_bytes(b"\x00garbage")),
       "config.json is damaged"),
      (damaged("no_experiment", lambda p: (p / "config.json").write_text("{}")),
       "config.json is damaged: it has no 'experiment' settings"),
      (damaged("metrics", lambda p: (p / "metrics.jsonl").write_bytes(
          metrics.replace(b'"epoch": 2', b'"epoch": 2,,'))),
       "metrics.jsonl, line 3, is not JSON"),
      (damaged("model", lambda p: (p / "model" / "meta.json").write_bytes(b'{"arch": "de')),
       "model/meta.json is damaged"),
  ]
  for path, words in cases:
    before = snapshot(path)
    assert report.main([str(path), "--map", "pca"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and words in err and err.count("\n") == 1, err
    assert snapshot(path) == before  # no picture drawn, nothing overwritten

  cut = damaged("cut_metrics", lambda p: (p / "metrics.jsonl").write_bytes(metrics + b'{"ph'))
  assert report.main([str(cut), "--map", "pca"]) == 0
  assert {p.name for p in cut.glob("*.png")} == {"embedding.png", "training_curves.png"}
  assert (cut / "metrics.jsonl").read_bytes() == metrics + b'{"ph'
