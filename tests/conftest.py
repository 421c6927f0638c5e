"""Strict numerics for every test, one compilation cache for the run, and shared fixtures."""

import atexit
import os
import pathlib
import shutil
import tempfile

# Many tests (and the experiment subprocesses they start) compile the same small
# programs: XLA's persistent cache, in a folder made fresh for this test run and
# inherited by pytest-xdist's workers and every subprocess, compiles each once.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
  _cache = tempfile.mkdtemp(prefix="jdec-tests-xla-cache-")
  atexit.register(shutil.rmtree, _cache, ignore_errors=True)
  os.environ["JAX_COMPILATION_CACHE_DIR"] = _cache
  os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
  os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"

# Tests run small programs, so compiling them costs more than running them: XLA:CPU
# skips its expensive LLVM optimisations (the suite runs about a third faster).
# Inherited by the subprocesses too; tests that need other XLA flags append to these.
FAST_COMPILE_FLAGS = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
if FAST_COMPILE_FLAGS not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {FAST_COMPILE_FLAGS}".strip()

import jax  # noqa: E402 (after the cache settings it reads)
import numpy as np  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_numpy_dtype_promotion", "standard")


def _real_mnist_dir():
  for candidate in (os.environ.get("JDEC_DATA_DIR"),
                    pathlib.Path(__file__).resolve().parents[1] / ".." / "shared" / "data"):
    if candidate and (pathlib.Path(candidate) / "mnist" / "train-images-idx3-ubyte.gz").is_file():
      return pathlib.Path(candidate).resolve()
    if candidate and (pathlib.Path(candidate) / "train-images-idx3-ubyte.gz").is_file():
      return pathlib.Path(candidate).resolve()
  return None


@pytest.fixture(scope="session")
def real_mnist_dir():
  """The real MNIST files, or a skip saying how to provide them."""
  folder = _real_mnist_dir()
  if folder is None:
    pytest.skip("real MNIST files not found: set JDEC_DATA_DIR to a folder holding "
                "the four IDX .gz files to run this test")
  return folder


@pytest.fixture
def blobs():
  """Well-separated Gaussian blobs: x [600, 5], y [600] with 4 classes."""
  rng = np.random.default_rng(0)
  centres = rng.normal(size=(4, 5)) * 10
  y = rng.integers(0, 4, size=600)
  x = centres[y] + rng.normal(size=(600, 5))
  return x.astype(np.float32), y
