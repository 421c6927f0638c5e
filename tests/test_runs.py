"""Runs stacked on a leading axis: each run of a stack trains as it would alone."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdec import parallel, runs, train
from jdec.scan import compile_scan
from tiny_training import TX, tiny_problem


@pytest.fixture
def tiny():
  return tiny_problem()


def test_stack_and_take_round_trip():
  trees = [{"w": jnp.full((2, 3), float(i)), "b": jnp.arange(3) + i} for i in range(4)]
  stacked = runs.stack(trees)
  assert stacked["w"].shape == (4, 2, 3) and stacked["b"].shape == (4, 3)
  for i, tree in enumerate(trees):
    jax.tree.map(np.testing.assert_array_equal, runs.take(stacked, i), tree)


def test_fold_in_folds_every_key():
  keys = jnp.stack([jax.random.key(0), jax.random.key(5)])
  folded = runs.fold_in(keys, 3)
  for k, f in zip(keys, folded):
    np.testing.assert_array_equal(jax.random.key_data(f),
                                  jax.random.key_data(jax.random.fold_in(k, 3)))


@pytest.mark.parametrize("stream", [False, True])
def test_stepper_trains_each_run_as_one_scan_alone(tiny, stream):
  x, model, params = tiny
  other = jax.tree.map(lambda a: a * 0.5, params)
  keys = jnp.stack([jax.random.key(1), jax.random.key(2)])
  placement = parallel.Placement(parallel.make_mesh(), stream=stream, stream_steps=4)
  stepper = runs.Stepper(train.reconstruction_step, block_steps=6, batch_size=16,
                         placement=placement)
  state = runs.create_states(model.apply, runs.stack([params, other]), TX)
  data = np.asarray(x) if stream else x
  state, loss = stepper(state, data, keys, 6, [6, 4])  # the second run takes 4 steps
  assert loss.shape == (2,)
  scan = compile_scan(train.reconstruction_step, num_steps=6, batch_size=16)
  for r, (start, limit) in enumerate([(params, 6), (other, 4)]):
    alone = train.create_state(model.apply, jax.tree.map(jnp.copy, start), TX)
    alone, m = scan(alone, x, keys[r], jnp.asarray(6), jnp.asarray(limit))
    assert loss[r] == pytest.approx(float(m["loss"][:limit].mean()), rel=1e-5)
    assert int(state.step[r]) == limit
    for a, b in zip(jax.tree.leaves(runs.take(state, r).params), jax.tree.leaves(alone.params)):
      np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
