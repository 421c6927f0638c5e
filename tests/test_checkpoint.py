"""Saving and restoring parameters; nothing is ever overwritten."""

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
