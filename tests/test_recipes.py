"""Recipes and overrides."""

import functools

import numpy as np
import pytest

from jdec import recipes
from jdec.experiments import config as experiment_config
from jdec.experiments import digits as experiment


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
    recipes.resolve("paper", {"pretrain": {"num_epochs": 5}})
  with pytest.raises(ValueError, match="pretrain.layer_steps is only used by"):
    recipes.resolve("dec_keras", {"pretrain": {"layer_steps": 5}})
  # Unset placeholders (None) are fine, and so is switching the method explicitly.
  recipes.resolve("dec_keras", {"pretrain": {"layer_steps": None, "num_epochs": 3}})
  recipes.resolve("dec_keras", {"pretrain": {"method": "layerwise", "layer_steps": 5}})


def test_family_recipes_follow_their_sources():
  idec = recipes.get_recipe("idec")
  assert idec.dec.objective == "idec" and idec.dec.kl_weight == 0.1
  assert idec.pretrain.to_dict() == recipes.get_recipe("dec_keras").pretrain.to_dict()
  dcec = recipes.get_recipe("dcec")
  assert dcec.model.arch == "conv" and tuple(dcec.model.conv_filters) == (32, 64, 128)
  assert dcec.model.kernel_init == "glorot_uniform" and dcec.model.embed_dim == 10
  assert (dcec.pretrain.optimizer, dcec.pretrain.learning_rate, dcec.pretrain.num_epochs) == (
      "adam", 0.001, 200)
  assert (dcec.dec.objective, dcec.dec.kl_weight, dcec.dec.optimizer) == ("idec", 0.1, "adam")
  assert not dcec.pretrain.augment and not dcec.dec.augment
  da = recipes.get_recipe("dec_da")
  assert da.model.arch == "dense" and da.model.kernel_init == "dec_keras"
  assert (da.pretrain.optimizer, da.pretrain.learning_rate, da.pretrain.momentum,
          da.pretrain.num_epochs) == ("sgd", 1.0, 0.9, 500)
  assert (da.dec.objective, da.dec.optimizer, da.dec.learning_rate, da.dec.momentum) == (
      "dec", "sgd", 0.01, 0.9)
  assert da.pretrain.augment and da.dec.augment
  assert (da.augment.max_rotation_deg, da.augment.max_shift) == (10.0, 0.1)
  conv_da = recipes.get_recipe("conv_dec_da")
  assert conv_da.model.arch == "conv" and conv_da.pretrain.num_epochs == 500
  assert conv_da.pretrain.optimizer == conv_da.dec.optimizer == "adam"
  assert conv_da.pretrain.augment and conv_da.dec.augment and conv_da.dec.objective == "dec"
  for name in recipes.RECIPES:
    recipes.validate(recipes.get_recipe(name))


@pytest.mark.parametrize("name", ["dec_keras", "idec", "dcec", "dec_da", "conv_dec_da"])
def test_update_interval_per_dataset(name):
  assert recipes.get_recipe(name, "mnist").dec.update_interval == 140
  assert recipes.get_recipe(name, "usps").dec.update_interval == 30
  # The recipe's default: digits is in no source.
  assert recipes.get_recipe(name, "digits").dec.update_interval == 140


@pytest.mark.parametrize("name", recipes.RECIPES)
def test_digits_scales_every_recipe_down_and_the_experiment_takes_each(name):
  digits, plain = recipes.get_recipe(name, "digits"), recipes.get_recipe(name)
  assert digits.pretrain.batch_size == digits.dec.batch_size == 64
  assert digits.pretrain.num_epochs == 100  # read by end-to-end pretraining only
  for c in (digits, plain):  # nothing else changes
    c.pretrain.batch_size = c.dec.batch_size = c.pretrain.num_epochs = 0
  assert digits.to_dict() == plain.to_dict()
  # The digits experiment's config resolves with every recipe (it refused `paper` while
  # it set pretrain.num_epochs itself).
  cfg = experiment.get_config()
  overrides = {k: cfg[k] for k in experiment_config.RECIPE_SECTIONS}
  resolved = recipes.resolve(name, overrides, cfg.dataset)
  assert resolved.pretrain.batch_size == 64
  if resolved.pretrain.method == "layerwise":  # a user's epochs there are still refused
    overrides["pretrain"] = dict(overrides["pretrain"].to_dict(), num_epochs=5)
    with pytest.raises(ValueError, match="pretrain.num_epochs is only used by"):
      recipes.resolve(name, overrides, cfg.dataset)


def test_dec_keras_on_usps_takes_dec_keras_usps_settings():
  usps = recipes.get_recipe("dec_keras", "usps")
  assert usps.pretrain.num_epochs == 50 and usps.model.kernel_init == "glorot_uniform"
  assert (usps.pretrain.optimizer, usps.pretrain.learning_rate) == ("adam", 0.001)
  assert (usps.dec.optimizer, usps.dec.learning_rate, usps.dec.momentum) == ("sgd", 0.01, 0.9)
  assert usps.dec.update_interval == 30
  idec = recipes.get_recipe("idec", "usps")  # pretrains as dec_keras does, here too
  assert idec.pretrain.to_dict() == usps.pretrain.to_dict() and idec.dec.objective == "idec"
  mnist = recipes.get_recipe("dec_keras", "mnist")
  assert mnist.pretrain.num_epochs == 300 and mnist.pretrain.optimizer == "sgd"
  # Only DEC-keras's own recipe changes on USPS; DEC-DA keeps its 500 SGD epochs.
  da = recipes.get_recipe("dec_da", "usps")
  assert da.pretrain.num_epochs == 500 and da.pretrain.optimizer == "sgd"


@pytest.mark.parametrize("recipe, override, match", [
    ("dcec", {"model": {"hidden_dims": (100, 10)}}, "model.hidden_dims is only used by model.arch='dense'"),
    ("dec_keras", {"model": {"conv_filters": (8, 8, 8)}}, "model.conv_filters is only used by"),
    ("dcec", {"pretrain": {"momentum": 0.5}}, "pretrain.momentum is only used by pretrain.optimizer='sgd'"),
    ("dec_keras", {"dec": {"kl_weight": 0.5}}, "dec.kl_weight is only used by dec.objective='idec'"),
])
def test_settings_the_choices_ignore_are_refused(recipe, override, match):
  with pytest.raises(ValueError, match=match):
    recipes.resolve(recipe, override)


@pytest.mark.parametrize("override, match", [
    ({"dec": {"objective": "kl"}}, "dec.objective"),
    ({"dec": {"optimizer": "rmsprop"}}, "dec.optimizer"),
    ({"model": {"arch": "conv"}}, "model.kernel_init must be 'glorot_uniform'"),
    ({"model": {"arch": "resnet"}}, "model.arch"),
    ({"augment": {"max_shift": 1.5}}, "augment.max_shift"),
    ({"pretrain": {"method": "layerwise", "augment": True}}, "pretrain.method must be 'end_to_end' with pretrain.augment"),
])
def test_validate_names_the_bad_family_setting(override, match):
  with pytest.raises(ValueError, match=match):
    recipes.validate(recipes.merge(recipes.get_recipe(), override))


# The standard deviation each initialiser gives a kernel of this fan-in and fan-out.
INIT_STD = {
    "dec_keras": lambda fan_in, fan_out: (1.0 / fan_in) ** 0.5 / 3**0.5,  # U(+-sqrt(1/fan_in))
    "paper": lambda fan_in, fan_out: 0.01,  # N(0, 0.01^2)
    "glorot_uniform": lambda fan_in, fan_out: (2.0 / (fan_in + fan_out)) ** 0.5,
}


@functools.lru_cache(maxsize=None)
def _kernels(arch: str, kernel_init: str, side: int) -> list:
  """The kernels of a freshly initialised autoencoder (recipes that share one share this)."""
  import jax  # pylint: disable=g-import-not-at-top
  from jdec import models  # pylint: disable=g-import-not-at-top

  c = recipes.get_recipe("dcec" if arch == "conv" else "dec_keras")
  c.model.kernel_init = kernel_init
  model = models.build_autoencoder(c.model, side * side, (side, side, 1))
  params = jax.jit(functools.partial(models.init_autoencoder, model=model,
                                     input_dim=side * side))(jax.random.key(0))
  return [np.asarray(k) for path, k in jax.tree_util.tree_leaves_with_path(params)
          if "kernel" in jax.tree_util.keystr(path)]


@pytest.mark.parametrize("recipe,dataset,want", [
    ("dec_keras", "mnist", "dec_keras"), ("dec_keras", "usps", "glorot_uniform"),
    ("paper", "mnist", "paper"), ("idec", "mnist", "dec_keras"),
    ("idec", "usps", "glorot_uniform"), ("dcec", "mnist", "glorot_uniform"),
    ("dec_da", "mnist", "dec_keras"), ("conv_dec_da", "usps", "glorot_uniform"),
])
def test_each_recipe_initialises_its_kernels_as_it_names(recipe, dataset, want):
  c = recipes.get_recipe(recipe, dataset)
  assert c.model.kernel_init == want
  big = [k for k in _kernels(c.model.arch, c.model.kernel_init, {"mnist": 28, "usps": 16}[dataset])
         if k.size >= 20_000]  # enough weights for a sharp estimate
  assert big
  for k in big:
    receptive = int(np.prod(k.shape[:-2])) if k.ndim > 2 else 1
    fan_in, fan_out = receptive * k.shape[-2], receptive * k.shape[-1]
    stds = {name: f(fan_in, fan_out) for name, f in INIT_STD.items()}
    # The measured spread matches the named initialiser and none of the others.
    closest = min(stds, key=lambda name: abs(np.log(k.std() / stds[name])))
    assert closest == want, (k.shape, k.std(), stds)
    assert k.std() == pytest.approx(stds[want], rel=0.05)
    excess_kurtosis = ((k - k.mean())**4).mean() / k.var()**2 - 3
    assert excess_kurtosis == pytest.approx(0.0 if want == "paper" else -1.2, abs=0.15)
