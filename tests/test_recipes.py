"""Recipes and overrides."""

import pytest

from jdec import api, recipes


def test_recipes_follow_the_references():
  keras = recipes.get_recipe("dec_keras")
  assert keras.pretrain.method == "end_to_end" and keras.pretrain.num_epochs == 300
  assert (keras.pretrain.learning_rate, keras.pretrain.momentum) == (1.0, 0.9)
  assert (keras.dec.learning_rate, keras.dec.update_interval, keras.dec.tol) == (0.01, 140, 0.001)
  assert keras.dec.maxiter == 20000 and tuple(keras.model.hidden_dims) == (500, 500, 2000, 10)
  paper = recipes.get_recipe("paper")
  assert paper.pretrain.method == "layerwise" and paper.model.kernel_init == "paper"
  assert (paper.pretrain.layer_steps, paper.pretrain.finetune_steps) == (50000, 100000)
  assert paper.pretrain.learning_rate == 0.1 and paper.dec.update_interval == 160
  assert paper.input_scaling == "unit_power" and paper.pretrain.dropout_rate == 0.2


def test_merge_skips_none_and_rejects_unknown_keys():
  base = recipes.get_recipe()
  merged = recipes.merge(base, {"dec": {"tol": 0.01, "maxiter": None}, "seed_unused": None})
  assert merged.dec.tol == 0.01 and merged.dec.maxiter == 20000
  assert base.dec.tol == 0.001  # the base is not modified
  with pytest.raises(KeyError, match="dec.tolerance"):
    recipes.merge(base, {"dec": {"tolerance": 1.0}})
  with pytest.raises(TypeError):
    recipes.merge(base, {"dec": {"maxiter": "many"}})


@pytest.mark.parametrize("override, match", [
    ({"dec": {"update_interval": 0}}, "dec.update_interval must be >= 1, got 0"),
    ({"pretrain": {"method": "greedy"}}, "pretrain.method"),
    ({"model": {"kernel_init": "he"}}, "model.kernel_init"),
    ({"dec": {"momentum": 1.5}}, r"dec.momentum must be in \[0, 1\)"),
    ({"input_scaling": "zscore"}, "input_scaling"),
])
def test_validate_names_the_bad_setting(override, match):
  with pytest.raises(ValueError, match=match):
    recipes.validate(recipes.merge(recipes.get_recipe(), override))
  recipes.validate(recipes.get_recipe("paper"))  # the recipes themselves are valid


def test_settings_the_method_ignores_are_refused():
  with pytest.raises(ValueError, match="pretrain.num_epochs is only used by"):
    api.resolve_config("paper", {"pretrain": {"num_epochs": 5}})
  with pytest.raises(ValueError, match="pretrain.layer_steps is only used by"):
    api.resolve_config("dec_keras", {"pretrain": {"layer_steps": 5}})
  # Unset placeholders (None) are fine, and so is switching the method explicitly.
  api.resolve_config("dec_keras", {"pretrain": {"layer_steps": None, "num_epochs": 3}})
  api.resolve_config("dec_keras", {"pretrain": {"method": "layerwise", "layer_steps": 5}})
