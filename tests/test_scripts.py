"""The helper scripts in experiments/ that BENCHMARKS.md quotes, on hand-made work directories."""

import importlib.util
import json
import pathlib

import pytest

SCRIPTS = pathlib.Path(__file__).resolve().parent.parent / "experiments"


def _script(name):
  spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _write_run(workdir, results, records, cut_last=False):
  workdir.mkdir()
  (workdir / "results.json").write_text(json.dumps(results))
  text = "".join(json.dumps(r) + "\n" for r in records)
  if cut_last:
    text += '{"phase": "dec", "se'  # a kill while the last line was written
  (workdir / "metrics.jsonl").write_text(text)


def test_time_to_accuracy_counts_from_the_start_of_pretraining(tmp_path):
  tta = _script("time_to_accuracy")
  results = {"seeds": [0, 1], "time_pretrain_s": 100.0, "time_kmeans_s": 10.0,
             "per_seed": [{"seed": 0, "acc": 0.96}, {"seed": 1, "acc": 0.91}]}
  records = [
      {"phase": "pretrain", "epoch": 1, "wall_s": 50.0, "loss": 0.1, "seed": 0},
      {"phase": "kmeans_raw", "acc": 0.99, "seed": 0},  # not DEC: never counted
      {"phase": "dec", "iteration": 0, "wall_s": 1.0, "acc": 0.85, "seed": 0},
      {"phase": "dec", "iteration": 0, "wall_s": 1.0, "acc": 0.88, "seed": 1},
      {"phase": "dec", "iteration": 140, "wall_s": 5.0, "acc": 0.92, "seed": 0},
      {"phase": "dec", "iteration": 140, "wall_s": 5.0, "acc": 0.90, "seed": 1},  # exactly
      {"phase": "dec", "iteration": 280, "wall_s": 9.0, "acc": 0.91, "seed": 0},  # dips, then
      {"phase": "dec", "iteration": 420, "wall_s": 13.0, "acc": 0.96, "seed": 0},
      {"phase": "dec", "iteration": 420, "wall_s": 13.0, "acc": None, "seed": 1},  # no labels
  ]
  _write_run(tmp_path / "run", results, records, cut_last=True)
  rows = tta.time_to_accuracy(tmp_path / "run", (0.90, 0.95))
  assert rows == [
      {"seed": 0, "final_acc": 0.96, "t_0.90": 115.0, "t_0.95": 123.0},
      {"seed": 1, "final_acc": 0.91, "t_0.90": 115.0, "t_0.95": None},
  ]


def test_time_to_accuracy_of_one_seed_and_of_unfinished_or_damaged_runs(tmp_path):
  tta = _script("time_to_accuracy")
  records = [{"phase": "dec", "iteration": 0, "wall_s": 2.0, "acc": 0.97}]
  _write_run(tmp_path / "one", {"seed": 3, "acc": 0.97, "time_pretrain_s": 7.0,
                                "time_kmeans_s": 1.0}, records)
  assert tta.time_to_accuracy(tmp_path / "one") == [
      {"seed": 3, "final_acc": 0.97, "t_0.90": 10.0, "t_0.95": 10.0}]
  (tmp_path / "one" / "results.json").unlink()
  with pytest.raises(FileNotFoundError, match="holds no results.json: the run is not finished"):
    tta.time_to_accuracy(tmp_path / "one")
  _write_run(tmp_path / "cut", {"seed": 3}, records)  # results.json without its timings
  with pytest.raises(ValueError, match=r"results.json is damaged: it lacks \['time_pretrain_s'"):
    tta.time_to_accuracy(tmp_path / "cut")
