"""Data parallelism: 4 devices and 2 processes give the single-device result.

Each case runs ``tests/parallel_worker.py`` in fresh processes, since the
device count is fixed when JAX starts: ``XLA_FLAGS`` makes 4 CPU devices, and
two processes on 127.0.0.1 join one ``jax.distributed`` job through gloo.
"""

import os
import pathlib
import socket
import subprocess
import sys

import numpy as np
import pytest

WORKER = pathlib.Path(__file__).with_name("parallel_worker.py")


def _env(devices: int = 1) -> dict:
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  env["JAX_PLATFORMS"] = "cpu"
  if devices > 1:
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
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
