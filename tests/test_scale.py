"""Many seeds as one program, streamed data, bfloat16, and no recompiles."""

import jax
import numpy as np
import pytest

import jdec
from jdec import parallel, runs

SMALL = {
    "model": {"hidden_dims": (64, 64, 10)},
    "pretrain": {"num_epochs": 6, "batch_size": 64, "learning_rate": 0.1},
    "kmeans": {"n_init": 3},
    "dec": {"maxiter": 70, "update_interval": 20, "batch_size": 64, "tol": 0.02,
            "learning_rate": 0.2},
}
SEEDS = [0, 1, 2]


@pytest.fixture(scope="module")
def digits():
  x, y = jdec.data.load_digits()
  return x[:600], y[:600]


@pytest.fixture(scope="module")
def singles(digits):
  x, y = digits
  return [jdec.fit(x, 10, config=SMALL, seed=s, y=y, progress=False) for s in SEEDS]


@pytest.fixture(scope="module")
def sweep(digits):
  x, y = digits
  records = []
  result = jdec.fit(x, 10, config=SMALL, seeds=SEEDS, y=y, progress=False,
                    log_fn=records.append)
  return result, records


def test_sweep_equals_one_seed_at_a_time(sweep, singles):
  result, _ = sweep
  assert result.seeds == SEEDS and len(result.results) == len(SEEDS)
  for one, many in zip(singles, result.results):
    for a, b in zip(jax.tree.leaves(one.ae_params), jax.tree.leaves(many.ae_params)):
      np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(one.q, many.q, atol=1e-4)
    np.testing.assert_array_equal(one.labels, many.labels)
    assert (one.iterations, one.stopped_by) == (many.iterations, many.stopped_by)
    assert one.scores["acc"] == pytest.approx(many.scores["acc"])
    assert many.state.params["centroids"].shape == (10, 10)


def test_sweep_runs_stop_on_their_own(sweep):
  result, records = sweep
  # With this tolerance the seeds stop at different DEC iterations; a seed
  # that stopped logs no further updates.
  stops = [r.iterations for r in result.results]
  assert len(set(stops)) > 1, stops
  for seed, r in zip(SEEDS, result.results):
    dec_records = [h for h in records if h["phase"] == "dec" and h["seed"] == seed]
    assert dec_records[-1]["iteration"] == r.iterations
    assert r.history["dec"] == dec_records
    assert len([h for h in records if h["phase"] == "pretrain" and h["seed"] == seed]) == 6


def test_stopped_seeds_leave_the_stack(digits, sweep, monkeypatch):
  x, y = digits
  made, limits = _capture_steppers(monkeypatch), []
  call = runs.Stepper.__call__

  def recording(self, state, data, key, step0, limit):
    if isinstance(data, tuple):  # the DEC phase: (x, p)
      limits.append(np.asarray(limit).tolist())
    return call(self, state, data, key, step0, limit)

  monkeypatch.setattr(runs.Stepper, "__call__", recording)
  r = jdec.fit(x, 10, config=SMALL, seeds=SEEDS, y=y, progress=False)
  # No interval trains a seed that has stopped: every seed in the stack steps.
  assert all(min(l) > 0 for l in limits), limits
  sizes = [len(l) for l in limits]
  assert sizes == sorted(sizes, reverse=True) and sizes[0] == 3 and sizes[-1] < 3
  # The i-th longest run is in every interval whose stack holds more than i runs.
  steps = [sum(l[0] for l in limits if len(l) > i) for i in range(3)]
  assert sorted(steps) == sorted(res.iterations for res in r.results)
  # One compiled DEC program per stack size, and the same result as before.
  assert made[-1]._scan._cache_size() == len(set(sizes))
  for a, b in zip(r.results, sweep[0].results):
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.iterations == b.iterations


def test_sweep_summary(sweep):
  result, _ = sweep
  accs = np.array([r.scores["acc"] for r in result.results])
  s = result.summary["acc"]
  assert s["mean"] == pytest.approx(accs.mean())
  assert s["sd"] == pytest.approx(accs.std(ddof=1))
  assert (s["min"], s["max"]) == (accs.min(), accs.max())
  assert {"nmi", "ari", "ae_kmeans_acc"} <= set(result.summary)


@pytest.mark.parametrize("seeds, message", [
    ([], "at least one seed"), ([1, 1], "distinct"), (["a"], "list of integers")])
def test_bad_seeds(digits, seeds, message):
  x, _ = digits
  with pytest.raises(ValueError, match=message):
    jdec.fit(x, 10, config=SMALL, seeds=seeds, progress=False)


def test_sweep_from_pretrained_autoencoders(digits, singles):
  x, y = digits
  with pytest.raises(ValueError, match="one pretrained autoencoder per seed"):
    jdec.fit(x, 10, config=SMALL, seeds=SEEDS, ae_params=singles[0].ae_params,
             progress=False)
  stacked = jax.tree.map(lambda *a: np.stack([np.asarray(v) for v in a]),
                         *[r.ae_params for r in singles])
  sweep = jdec.fit(x, 10, config=SMALL, seeds=SEEDS, ae_params=stacked, y=y, progress=False)
  for one, from_sweep in zip(singles, sweep.results):
    assert from_sweep.history["pretrain"] == []
    np.testing.assert_array_equal(from_sweep.labels, one.labels)  # k-means and DEC as alone
    assert from_sweep.iterations == one.iterations


def test_layerwise_sweep_equals_one_seed(digits):
  x, y = digits
  cfg = {"model": {"hidden_dims": (32, 32, 8)},
         "pretrain": {"layer_steps": 30, "finetune_steps": 30, "log_every": 15,
                      "batch_size": 64},
         "kmeans": {"n_init": 2}, "dec": {"maxiter": 20, "update_interval": 10}}
  sweep = jdec.fit(x, 10, recipe="paper", config=cfg, seeds=[3, 4], y=y, progress=False)
  one = jdec.fit(x, 10, recipe="paper", config=cfg, seed=4, y=y, progress=False)
  np.testing.assert_allclose(sweep.results[1].q, one.q, atol=1e-4)
  np.testing.assert_array_equal(sweep.results[1].labels, one.labels)


def _capture_steppers(monkeypatch) -> list:
  made = []

  class Recording(runs.Stepper):
    def __init__(self, *args, **kwargs):
      super().__init__(*args, **kwargs)
      made.append(self)

  monkeypatch.setattr(runs, "Stepper", Recording)
  return made


@pytest.mark.parametrize("stream", [False, True])
def test_streamed_data_gives_the_resident_result(digits, singles, monkeypatch, stream):
  x, y = digits
  made = _capture_steppers(monkeypatch)
  placement = parallel.Placement(parallel.make_mesh(), stream=stream, stream_steps=4)
  r = jdec.fit(x, 10, config=SMALL, seed=0, y=y, progress=False, placement=placement)
  np.testing.assert_allclose(r.q, singles[0].q, atol=1e-5)
  np.testing.assert_array_equal(r.labels, singles[0].labels)
  # One compiled program per phase, reused for every block: epochs, DEC
  # intervals (the last one shorter) and stream pieces alike.
  assert len(made) == 2
  assert all(s._scan._cache_size() == 1 for s in made)


def test_streamed_sweep(digits, sweep):
  x, y = digits
  placement = parallel.Placement(parallel.make_mesh(), stream=True, stream_steps=7)
  r = jdec.fit(x, 10, config=SMALL, seeds=SEEDS, y=y, progress=False, placement=placement)
  for a, b in zip(r.results, sweep[0].results):
    np.testing.assert_allclose(a.q, b.q, atol=1e-5)


def test_streaming_refuses_layerwise(digits):
  x, _ = digits
  placement = parallel.Placement(parallel.make_mesh(), stream=True)
  with pytest.raises(ValueError, match="end_to_end' only"):
    jdec.fit(x, 10, recipe="paper", config={"pretrain": {"layer_steps": 2}},
             placement=placement, progress=False)


def test_bfloat16_matmuls(digits, singles):
  x, y = digits
  cfg = {**SMALL, "model": {**SMALL["model"], "compute_dtype": "bfloat16"}}
  r = jdec.fit(x, 10, config=cfg, seed=0, y=y, progress=False)
  assert all(a.dtype == np.float32 for a in jax.tree.leaves(r.state.params))
  assert r.q.dtype == np.float32
  assert r.scores["ae_kmeans_acc"] > 0.4  # still learns a real embedding
  assert not np.allclose(r.q, singles[0].q, atol=1e-4)  # the switch does change the maths


def test_bad_compute_dtype(digits):
  x, _ = digits
  with pytest.raises(ValueError, match="model.compute_dtype must be 'float32' or 'bfloat16'"):
    jdec.fit(x, 10, config={"model": {"compute_dtype": "float16"}}, progress=False)


def test_placement_helpers():
  with pytest.raises(ValueError, match="at least one device"):
    parallel.make_mesh([])
  rows = np.arange(12.0).reshape(6, 2)
  np.testing.assert_array_equal(parallel.allgather_rows(rows), rows)
  mesh = parallel.make_mesh()
  assert mesh.axis_names == ("data",) and mesh.size == jax.device_count()
