"""Data parallelism: 4 devices and 2 processes give the single-device result.

Each case runs ``tests/parallel_worker.py`` in fresh processes, since the
device count is fixed when JAX starts: ``XLA_FLAGS`` makes 4 CPU devices, and
two processes on 127.0.0.1 join one ``jax.distributed`` job through gloo. The
experiments' command line is run the same way, as two "hosts" of which only
process 0 may touch a work directory.
"""

import json
import os
import pathlib
import socket
import subprocess
import sys

import numpy as np
import pytest

from jdec import checkpoint
from conftest import FAST_COMPILE_FLAGS

WORKER = pathlib.Path(__file__).with_name("parallel_worker.py")


def _env(devices: int = 1) -> dict:
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": FAST_COMPILE_FLAGS}
  if devices > 1:
    env["XLA_FLAGS"] += f" --xla_force_host_platform_device_count={devices}"
  return env


def _run(out, *args, devices=1):
  return subprocess.Popen([sys.executable, str(WORKER), str(out), *map(str, args)],
                          env=_env(devices), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)


def _finish(proc, timeout=300):
  try:
    output, _ = proc.communicate(timeout=timeout)
  except subprocess.TimeoutExpired:
    proc.kill()
    output, _ = proc.communicate()
    pytest.fail(f"worker timed out:\n{output[-3000:]}")
  assert proc.returncode == 0, output[-3000:]
  return output


@pytest.fixture(scope="module")
def single(tmp_path_factory):
  out = tmp_path_factory.mktemp("single") / "q.npz"
  _finish(_run(out))
  result = np.load(out)
  assert int(result["devices"]) == 1
  return result


def _assert_same_run(got, want):
  np.testing.assert_allclose(got["kernel"], want["kernel"], atol=1e-3)
  np.testing.assert_allclose(got["q"], want["q"], atol=5e-3)
  np.testing.assert_array_equal(got["labels"], want["labels"])


def test_four_devices_match_one(single, tmp_path):
  out = tmp_path / "q.npz"
  _finish(_run(out, devices=4))
  got = np.load(out)
  assert int(got["devices"]) == 4
  _assert_same_run(got, single)


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def test_two_processes_match_one(single, tmp_path):
  out, port = tmp_path / "q.npz", _free_port()
  procs = [_run(out, rank, 2, port) for rank in range(2)]
  outputs = [_finish(p) for p in procs]
  got = np.load(out)
  assert int(got["processes"]) == 2 and int(got["devices"]) == 2, outputs[0][-2000:]
  _assert_same_run(got, single)


# The experiments' command line, as two processes (one per "host").

SWEEP_FLAGS = [
    "--config.progress=False", "--config.n_samples=300", "--config.seeds=0,1",
    "--config.checkpoint_every=2", "--config.checkpoint_min_interval_s=0.0",
    "--config.pretrain.num_epochs=6", "--config.pretrain.batch_size=32",
    "--config.dec.batch_size=32", "--config.dec.maxiter=30", "--config.dec.update_interval=10",
    "--config.kmeans.n_init=2", "--config.model.hidden_dims=(32,32,10)",
    "--config.embedding_map=pca", "--config.dec.learning_rate=0.1",
]


def _cli(module, workdirs, *flags, port=None):
  """``python -m jdec.experiments.<module>`` as 2 processes; their outputs and exit codes."""
  port = port or _free_port()
  procs = [subprocess.Popen(
      [sys.executable, "-m", f"jdec.experiments.{module}", f"--workdir={workdir}", *flags,
       f"--config.coordinator_address=127.0.0.1:{port}", "--config.num_processes=2",
       f"--config.process_id={rank}"],
      env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
      for rank, workdir in enumerate(workdirs)]
  outputs = []
  for proc in procs:
    try:
      outputs.append(proc.communicate(timeout=300)[0])
    except subprocess.TimeoutExpired:
      for p in procs:
        p.kill()
      pytest.fail(f"a process timed out:\n{proc.communicate()[0][-3000:]}")
  return outputs, [p.returncode for p in procs]


def _assert_same_sweep(got, want):
  for a, b in zip(got["per_seed"], want["per_seed"]):
    assert (a["seed"], a["iterations"]) == (b["seed"], b["iterations"])
    assert a["acc"] == pytest.approx(b["acc"], abs=1e-6)
    assert a["ae_kmeans_acc"] == pytest.approx(b["ae_kmeans_acc"], abs=1e-6)


class Interrupted(Exception):
  """Stands for a run killed right after a DEC checkpoint."""


def cut_after_first_dec_update(workdir, monkeypatch):
  """Runs ``tiny_sweep_config`` into ``workdir``, "killed" once the checkpoint of its
  first DEC update is written."""
  from jdec.experiments import runner  # pylint: disable=g-import-not-at-top
  from test_experiments import tiny_sweep_config  # pylint: disable=g-import-not-at-top
  save_tree = checkpoint.Progress.save_tree

  def save_then_stop(self, epoch, tree, info, *, final=False):
    written = save_tree(self, epoch, tree, info, final=final)
    if written and self.directory.name == "dec" and epoch == 1:
      self.close()
      raise Interrupted
    return written

  with monkeypatch.context() as patch:
    patch.setattr(checkpoint.Progress, "save_tree", save_then_stop)
    with pytest.raises(Interrupted):
      runner.run(tiny_sweep_config(checkpoint_every_updates=1), workdir)


def test_two_process_command_line_sweep_matches_one_and_resumes(tmp_path, monkeypatch):
  from jdec.experiments import runner  # pylint: disable=g-import-not-at-top
  from test_experiments import tiny_sweep_config  # pylint: disable=g-import-not-at-top

  want = runner.run(tiny_sweep_config(), tmp_path / "single")

  # Two processes: process 0 writes the work directory, process 1 never creates its own
  # (on separate hosts it may not even share a file system with process 0).
  outputs, codes = _cli("digits", [tmp_path / "two", tmp_path / "never"], *SWEEP_FLAGS)
  assert codes == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
  assert not (tmp_path / "never").exists()
  assert "DEC" in outputs[0] and "DEC" not in outputs[1]
  got = json.loads((tmp_path / "two" / "results.json").read_text())
  assert got["process_count"] == 2 and got["device_count"] == 2
  _assert_same_sweep(got, want)

  # A run cut in DEC is resumed by two processes: process 0 reads the checkpoints of every
  # phase and sends them to process 1.
  cut = tmp_path / "cut"
  cut_after_first_dec_update(cut, monkeypatch)
  # Seed 0 stops at the next update and seed 1 trains on: process 0 alone then saves DEC
  # checkpoints holding seed 0's final q.
  outputs, codes = _cli("digits", [cut, tmp_path / "never"], *SWEEP_FLAGS,
                        "--config.resume=True", "--config.checkpoint_every_updates=1")
  assert codes == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
  resumed = json.loads((cut / "results.json").read_text())
  assert resumed["resumed_from_dec_iteration"] == 10 and resumed["process_count"] == 2
  assert [(r["iterations"], r["stopped_by"]) for r in resumed["per_seed"]] == [
      (10, "tol"), (30, "maxiter")]
  _assert_same_sweep(resumed, want)
  lines = [json.loads(l) for l in (cut / "metrics.jsonl").read_text().splitlines()]
  assert [l["epoch"] for l in lines if l["phase"] == "pretrain" and l["seed"] == 1] == [
      1, 2, 3, 4, 5, 6]
  dec = [(l["seed"], l["iteration"]) for l in lines if l["phase"] == "dec"]
  assert len(dec) == len(set(dec)) and (1, 10) in dec  # each update once
  assert not (tmp_path / "never").exists()

  # Refusals reach every process: none goes on alone into a collective.
  outputs, codes = _cli("digits", [cut, tmp_path / "never"], *SWEEP_FLAGS)
  assert codes == [1, 1]
  assert "already holds a finished run" in outputs[0]
  assert "process 0:" in outputs[1] and "already holds a finished run" in outputs[1]


def _mnist_on_two_hosts(tmp_path, data_dirs):
  port = _free_port()
  procs = [subprocess.Popen(
      [sys.executable, "-m", "jdec.experiments.mnist", f"--workdir={tmp_path / f'w{rank}'}",
       f"--config.data_dir={data}", "--config.progress=False",
       f"--config.coordinator_address=127.0.0.1:{port}", "--config.num_processes=2",
       f"--config.process_id={rank}"],
      env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
      for rank, data in enumerate(data_dirs)]
  outputs = [p.communicate(timeout=300)[0] for p in procs]
  assert [p.returncode for p in procs] == [1, 1], outputs
  assert "Traceback" not in outputs[0] + outputs[1]
  assert not (tmp_path / "w0").exists() and not (tmp_path / "w1").exists()
  return outputs


def test_two_processes_refuse_missing_or_different_data(tmp_path):
  from test_data import write_mnist  # pylint: disable=g-import-not-at-top

  write_mnist(tmp_path / "data", n_train=60, n_test=20)
  outputs = _mnist_on_two_hosts(tmp_path, [tmp_path / "data", tmp_path / "missing"])
  assert "process 1: no MNIST files" in outputs[0]
  assert "no MNIST files" in outputs[1]

  write_mnist(tmp_path / "other", n_train=70, n_test=20)
  outputs = _mnist_on_two_hosts(tmp_path, [tmp_path / "data", tmp_path / "other"])
  for output in outputs:
    assert "process(es) [1] loaded other data than process 0" in output


def test_two_processes_take_a_pretrained_autoencoder_from_process_0(tmp_path):
  from jdec.experiments import runner  # pylint: disable=g-import-not-at-top
  from test_experiments import tiny_sweep_config  # pylint: disable=g-import-not-at-top

  first = tiny_sweep_config(seeds=(), **{"pretrain.num_epochs": 2})
  runner.run(first, tmp_path / "first")
  autoencoder = tmp_path / "first" / "autoencoder"
  want = runner.run(tiny_sweep_config(seeds=(), pretrained=str(autoencoder)), tmp_path / "one")
  flags = [f for f in SWEEP_FLAGS if not f.startswith("--config.seeds")]
  port = _free_port()
  procs = [subprocess.Popen(  # only process 0 can read the autoencoder: it sends it
      [sys.executable, "-m", "jdec.experiments.digits", f"--workdir={tmp_path / f'w{rank}'}",
       *flags, f"--config.pretrained={path}",
       f"--config.coordinator_address=127.0.0.1:{port}", "--config.num_processes=2",
       f"--config.process_id={rank}"],
      env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
      for rank, path in enumerate([autoencoder, tmp_path / "not-on-this-host"])]
  outputs = [p.communicate(timeout=300)[0] for p in procs]
  assert [p.returncode for p in procs] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
  got = json.loads((tmp_path / "w0" / "results.json").read_text())
  assert got["pretrained_from"] == str(autoencoder) and not (tmp_path / "w1").exists()
  assert (got["iterations"], got["acc"]) == (want["iterations"], pytest.approx(want["acc"], abs=1e-6))
