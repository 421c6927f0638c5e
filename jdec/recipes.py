"""Named training recipes as ``ml_collections.ConfigDict`` (see REFERENCES in the docs).

- ``dec_keras``: the DEC-keras recipe (end-to-end autoencoder, SGD 1.0/0.9 for
  300 epochs; DEC with SGD 0.01/0.9, update interval 140, tol 0.1%).
- ``paper``: Xie et al. 2016 (greedy layer-wise denoising pretraining with 20%
  dropout, 50k steps per layer and 100k fine-tuning, lr 0.1 / 10 every 20k;
  inputs scaled to unit mean power; update interval 160).
"""

import ml_collections

from jdec import models

RECIPES = ("dec_keras", "paper")


def get_recipe(name: str = "dec_keras") -> ml_collections.ConfigDict:
  """Returns a fresh config for the recipe ``name``."""
  if name not in RECIPES:
    raise ValueError(f"unknown recipe {name!r}; choose one of {list(RECIPES)}")
  c = ml_collections.ConfigDict()
  c.recipe = name
  # compute_dtype 'bfloat16' runs the matrix products in bfloat16 (for TPUs
  # and GPUs); the parameters stay float32.
  c.model = dict(hidden_dims=(500, 500, 2000, 10), kernel_init="dec_keras", alpha=1.0,
                 compute_dtype="float32")
  # 'none' keeps the loader's scaling (pixels / 255); 'unit_power' rescales
  # so that mean ||x||^2 / d = 1, as the paper does.
  c.input_scaling = "none"
  c.pretrain = dict(
      method="end_to_end", num_epochs=300, batch_size=256, learning_rate=1.0,
      momentum=0.9,
      # Used by method='layerwise' only.
      layer_steps=50_000, finetune_steps=100_000, lr_decay_every=20_000,
      dropout_rate=0.2, log_every=1000,
  )
  c.kmeans = dict(n_init=20, max_iter=300, tol=1e-4)
  c.dec = dict(
      batch_size=256, learning_rate=0.01, momentum=0.9, update_interval=140,
      tol=0.001, maxiter=20_000, gamma=0.0,
  )
  if name == "paper":
    c.model.kernel_init = "paper"
    c.input_scaling = "unit_power"
    c.pretrain.method = "layerwise"
    c.pretrain.learning_rate = 0.1
    c.dec.update_interval = 160
  return c


def validate(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Checks the ranges and choices of a resolved recipe; returns it unchanged.

  Raises:
    ValueError: naming the first setting that is out of range.
  """
  checks = [
      ("model.hidden_dims", len(c.model.hidden_dims) >= 1
       and all(int(w) >= 1 for w in c.model.hidden_dims), "non-empty positive widths"),
      ("model.kernel_init", c.model.kernel_init in models.KERNEL_INITS,
       f"one of {sorted(models.KERNEL_INITS)}"),
      ("model.alpha", c.model.alpha > 0, "> 0"),
      ("model.compute_dtype", c.model.compute_dtype in ("float32", "bfloat16"),
       "'float32' or 'bfloat16'"),
      ("input_scaling", c.input_scaling in ("none", "unit_power"), "'none' or 'unit_power'"),
      ("pretrain.method", c.pretrain.method in ("end_to_end", "layerwise"),
       "'end_to_end' or 'layerwise'"),
      ("pretrain.num_epochs", c.pretrain.num_epochs >= 0, ">= 0"),
      ("pretrain.batch_size", c.pretrain.batch_size >= 1, ">= 1"),
      ("pretrain.learning_rate", c.pretrain.learning_rate > 0, "> 0"),
      ("pretrain.momentum", 0 <= c.pretrain.momentum < 1, "in [0, 1)"),
      ("pretrain.layer_steps", c.pretrain.layer_steps >= 0, ">= 0"),
      ("pretrain.finetune_steps", c.pretrain.finetune_steps >= 0, ">= 0"),
      ("pretrain.lr_decay_every", c.pretrain.lr_decay_every >= 1, ">= 1"),
      ("pretrain.dropout_rate", 0 <= c.pretrain.dropout_rate < 1, "in [0, 1)"),
      ("pretrain.log_every", c.pretrain.log_every >= 1, ">= 1"),
      ("kmeans.n_init", c.kmeans.n_init >= 1, ">= 1"),
      ("kmeans.max_iter", c.kmeans.max_iter >= 1, ">= 1"),
      ("kmeans.tol", c.kmeans.tol >= 0, ">= 0"),
      ("dec.batch_size", c.dec.batch_size >= 1, ">= 1"),
      ("dec.learning_rate", c.dec.learning_rate > 0, "> 0"),
      ("dec.momentum", 0 <= c.dec.momentum < 1, "in [0, 1)"),
      ("dec.update_interval", c.dec.update_interval >= 1, ">= 1"),
      ("dec.tol", c.dec.tol >= 0, ">= 0"),
      ("dec.maxiter", c.dec.maxiter >= 0, ">= 0"),
      ("dec.gamma", c.dec.gamma >= 0, ">= 0"),
  ]
  for name, ok, want in checks:
    if not ok:
      value = c
      for part in name.split("."):
        value = value[part]
      raise ValueError(f"{name} must be {want}, got {value!r}")
  return c


# Pretraining settings that only one method reads.
METHOD_ONLY = {
    "end_to_end": ("num_epochs",),
    "layerwise": ("layer_steps", "finetune_steps", "lr_decay_every", "dropout_rate", "log_every"),
}


def check_overrides_apply(c: ml_collections.ConfigDict, overrides) -> None:
  """Raises if ``overrides`` sets a pretraining setting the chosen method never reads."""
  pretrain = (overrides or {}).get("pretrain") or {}
  for method, names in METHOD_ONLY.items():
    if method == c.pretrain.method:
      continue
    for name in names:
      if pretrain.get(name) is not None:
        raise ValueError(
            f"pretrain.{name} is only used by pretrain.method={method!r}, but this run "
            f"uses {c.pretrain.method!r}; drop it or change the method"
        )


def merge(base: ml_collections.ConfigDict, overrides) -> ml_collections.ConfigDict:
  """``base`` with every non-None entry of the nested mapping ``overrides`` set.

  Raises:
    KeyError: an override names a setting the recipe does not have.
  """
  out = ml_collections.ConfigDict(base.to_dict())
  _merge_into(out, overrides, prefix="")
  return out


def _merge_into(target, overrides, prefix):
  items = overrides.items() if hasattr(overrides, "items") else overrides
  for key, value in items:
    if value is None:
      continue
    name = f"{prefix}{key}"
    if key not in target:
      raise KeyError(f"unknown setting {name!r}; known: {sorted(target.keys())}")
    if isinstance(target[key], ml_collections.ConfigDict):
      _merge_into(target[key], value, prefix=f"{name}.")
    else:
      target[key] = value  # ConfigDict rejects a value of the wrong type
