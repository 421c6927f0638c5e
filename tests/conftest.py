"""Strict numerics for every test, and shared fixtures."""

import os
import pathlib

import jax
import numpy as np
import pytest

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
