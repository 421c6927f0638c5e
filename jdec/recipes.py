"""Named training recipes as ``ml_collections.ConfigDict``, each with its source.

- ``dec_keras``: the DEC-keras recipe (end-to-end autoencoder, SGD 1.0/0.9 for
  300 epochs; DEC with SGD 0.01/0.9, update interval 140, tol 0.1%). On USPS
  it takes DEC-keras's USPS settings (``DEC.py``): 50 epochs, glorot-uniform
  init, Adam, update interval 30.
- ``paper``: Xie et al. 2016 (greedy layer-wise denoising pretraining with 20%
  dropout, 50k steps per layer and 100k fine-tuning, lr 0.1 / 10 every 20k;
  inputs scaled to unit mean power; update interval 160).
- ``idec``: Guo et al. 2017 (IJCAI), IDEC: the ``dec_keras`` autoencoder and
  pretraining (on USPS too), then the clustering loss ``MSE + 0.1 * KL`` with
  the decoder kept.
- ``dcec``: Guo et al. 2017 (ICONIP), DCEC: the convolutional autoencoder
  (``jdec.models.ConvAutoEncoder``), Adam pretraining for 200 epochs, the IDEC
  loss with weight 0.1, Adam clustering.
- ``dec_da``: Guo et al. 2018, DEC-DA (FcDEC-DA): the ``dec_keras`` autoencoder
  pretrained for 500 epochs with SGD(1.0, 0.9) on randomly shifted and rotated
  images, DEC clustering with SGD(0.01, 0.9) on augmented batches (P from the
  clean data).
- ``conv_dec_da``: Guo et al. 2018, ConvDEC-DA: the convolutional autoencoder,
  augmentation in both phases, Adam for 500 pretraining epochs and for
  clustering.

Every recipe refreshes the target every 140 steps on MNIST and every 30 on
USPS, the settings of the authors' scripts (``get_recipe(name, dataset)``).
On scikit-learn's 1,797 8x8 digits (``dataset="digits"``, in no source) jdec
scales the recipes down itself: batches of 64 in both phases (a batch of 256
would leave 7 updates an epoch) and 100 epochs of end-to-end pretraining. The
``paper`` recipe keeps its 300,000 layer-wise steps there (shorten them with
``pretrain.layer_steps`` and ``pretrain.finetune_steps``).
"""

import ml_collections
import numpy as np

from jdec import models

RECIPES = ("dec_keras", "paper", "idec", "dcec", "dec_da", "conv_dec_da")
ARCHS = ("dense", "conv")
OPTIMIZERS = ("sgd", "adam")
OBJECTIVES = ("dec", "idec")
# Update interval per dataset in the authors' scripts (DEC-keras, IDEC, DEC-DA).
UPDATE_INTERVALS = {"mnist": 140, "usps": 30}


def get_recipe(name: str = "dec_keras", dataset: str | None = None) -> ml_collections.ConfigDict:
  """Returns a fresh config for the recipe ``name``, adjusted for ``dataset`` when
  the recipe's source sets that dataset apart (``"mnist"``, ``"usps"``), or
  scaled down for scikit-learn's digits (``"digits"``, see the module docstring)."""
  if name not in RECIPES:
    raise ValueError(f"unknown recipe {name!r}; choose one of {list(RECIPES)}")
  c = ml_collections.ConfigDict()
  c.recipe = name
  # arch 'dense' is the d-500-500-2000-10 autoencoder (hidden_dims); 'conv' the
  # DCEC convolutional one (conv_filters, then a dense embedding of embed_dim).
  # compute_dtype 'bfloat16' runs the matrix products in bfloat16 (for TPUs
  # and GPUs); the parameters stay float32.
  c.model = dict(arch="dense", hidden_dims=(500, 500, 2000, 10), kernel_init="dec_keras",
                 conv_filters=(32, 64, 128), embed_dim=10, alpha=1.0,
                 compute_dtype="float32")
  # 'none' keeps the loader's scaling (pixels / 255); 'unit_power' rescales
  # so that mean ||x||^2 / d = 1, as the paper does.
  c.input_scaling = "none"
  # Random rotation and shift of the images (DEC-DA), in the phases that ask.
  c.augment = dict(max_rotation_deg=10.0, max_shift=0.1)
  c.pretrain = dict(
      method="end_to_end", num_epochs=300, batch_size=256, optimizer="sgd",
      learning_rate=1.0, momentum=0.9, augment=False,
      # Used by method='layerwise' only.
      layer_steps=50_000, finetune_steps=100_000, lr_decay_every=20_000,
      dropout_rate=0.2, log_every=1000,
  )
  c.kmeans = dict(n_init=20, max_iter=300, tol=1e-4)
  c.dec = dict(
      objective="dec", kl_weight=0.1, batch_size=256, optimizer="sgd", learning_rate=0.01,
      momentum=0.9, augment=False, update_interval=140, tol=0.001, maxiter=20_000,
  )
  adam = dict(optimizer="adam", learning_rate=0.001, momentum=0.0)  # Keras's defaults
  if name == "paper":
    c.model.kernel_init = "paper"
    c.input_scaling = "unit_power"
    c.pretrain.method = "layerwise"
    c.pretrain.learning_rate = 0.1
    c.dec.update_interval = 160
  elif name == "idec":
    c.dec.objective = "idec"
  elif name == "dcec":
    c.model.update(arch="conv", kernel_init="glorot_uniform")
    c.pretrain.update(num_epochs=200, **adam)
    c.dec.update(objective="idec", **adam)
  elif name == "dec_da":
    c.pretrain.update(num_epochs=500, augment=True)
    c.dec.augment = True
  elif name == "conv_dec_da":
    c.model.update(arch="conv", kernel_init="glorot_uniform")
    c.pretrain.update(num_epochs=500, augment=True, **adam)
    c.dec.update(augment=True, **adam)
  if dataset in UPDATE_INTERVALS and name != "paper":
    c.dec.update_interval = UPDATE_INTERVALS[dataset]
  if dataset == "usps" and name in ("dec_keras", "idec"):  # IDEC starts from DEC-keras's AE
    c.model.kernel_init = "glorot_uniform"
    c.pretrain.update(num_epochs=50, **adam)
  if dataset == "digits":  # layer-wise pretraining (paper) does not read num_epochs
    c.pretrain.batch_size = c.dec.batch_size = 64
    c.pretrain.num_epochs = 100
  return c


def validate(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Checks the ranges and choices of a resolved recipe; returns it unchanged.

  Raises:
    ValueError: naming the first setting that is out of range.
  """
  checks = [
      ("model.arch", c.model.arch in ARCHS, f"one of {list(ARCHS)}"),
      ("model.hidden_dims", len(c.model.hidden_dims) >= 1
       and all(int(w) >= 1 for w in c.model.hidden_dims), "non-empty positive widths"),
      ("model.kernel_init", c.model.kernel_init in models.KERNEL_INITS,
       f"one of {sorted(models.KERNEL_INITS)}"),
      ("model.conv_filters", len(c.model.conv_filters) == 3
       and all(int(w) >= 1 for w in c.model.conv_filters), "three positive widths"),
      ("model.embed_dim", c.model.embed_dim >= 1, ">= 1"),
      ("model.kernel_init", c.model.arch == "dense" or c.model.kernel_init == "glorot_uniform",
       "'glorot_uniform' with model.arch='conv' (the initialiser of the Keras CAE)"),
      ("model.alpha", c.model.alpha > 0, "> 0"),
      ("model.compute_dtype", c.model.compute_dtype in ("float32", "bfloat16"),
       "'float32' or 'bfloat16'"),
      ("input_scaling", c.input_scaling in ("none", "unit_power"), "'none' or 'unit_power'"),
      ("pretrain.method", c.pretrain.method in ("end_to_end", "layerwise"),
       "'end_to_end' or 'layerwise'"),
      ("pretrain.method", c.pretrain.method == "end_to_end" or c.model.arch == "dense",
       "'end_to_end' with model.arch='conv' (layer-wise pretraining is for dense layers)"),
      ("pretrain.method", c.pretrain.method == "end_to_end" or c.pretrain.optimizer == "sgd",
       "'end_to_end' with pretrain.optimizer='adam' (layer-wise pretraining uses SGD)"),
      ("pretrain.method", c.pretrain.method == "end_to_end" or not c.pretrain.augment,
       "'end_to_end' with pretrain.augment=True (layer-wise pretraining does not augment)"),
      ("pretrain.optimizer", c.pretrain.optimizer in OPTIMIZERS, f"one of {list(OPTIMIZERS)}"),
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
      ("augment.max_rotation_deg", 0 <= c.augment.max_rotation_deg <= 180, "in [0, 180]"),
      ("augment.max_shift", 0 <= c.augment.max_shift < 1, "in [0, 1)"),
      ("dec.objective", c.dec.objective in OBJECTIVES, f"one of {list(OBJECTIVES)}"),
      ("dec.kl_weight", c.dec.kl_weight > 0, "> 0"),
      ("dec.optimizer", c.dec.optimizer in OPTIMIZERS, f"one of {list(OPTIMIZERS)}"),
      ("dec.batch_size", c.dec.batch_size >= 1, ">= 1"),
      ("dec.learning_rate", c.dec.learning_rate > 0, "> 0"),
      ("dec.momentum", 0 <= c.dec.momentum < 1, "in [0, 1)"),
      ("dec.update_interval", c.dec.update_interval >= 1, ">= 1"),
      ("dec.tol", c.dec.tol >= 0, ">= 0"),
      ("dec.maxiter", c.dec.maxiter >= 0, ">= 0"),
  ]
  for name, ok, want in checks:
    if not ok:
      value = c
      for part in name.split("."):
        value = value[part]
      raise ValueError(f"{name} must be {want}, got {value!r}")
  return c


# Settings that only one choice of another setting reads: (section, chooser,
# {choice: names read only under that choice}).
READ_ONLY_BY = (
    ("pretrain", "method", {
        "end_to_end": ("num_epochs",),
        "layerwise": ("layer_steps", "finetune_steps", "lr_decay_every", "dropout_rate",
                      "log_every"),
    }),
    ("model", "arch", {"dense": ("hidden_dims",), "conv": ("conv_filters", "embed_dim")}),
    ("pretrain", "optimizer", {"sgd": ("momentum",)}),
    ("dec", "optimizer", {"sgd": ("momentum",)}),
    ("dec", "objective", {"idec": ("kl_weight",)}),
)


def check_overrides_apply(c: ml_collections.ConfigDict, overrides) -> None:
  """Raises if ``overrides`` sets a setting that the run's choices never read
  (say ``pretrain.num_epochs`` with layer-wise pretraining)."""
  for section, chooser, only in READ_ONLY_BY:
    given = (overrides or {}).get(section) or {}
    for choice, names in only.items():
      if choice == c[section][chooser]:
        continue
      for name in names:
        if given.get(name) is not None:
          raise ValueError(
              f"{section}.{name} is only used by {section}.{chooser}={choice!r}, but this "
              f"run uses {c[section][chooser]!r}; drop it or change {section}.{chooser}")


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


def resolve(recipe: str, config=None, dataset: str | None = None) -> ml_collections.ConfigDict:
  """The recipe's settings (for ``dataset``, see ``get_recipe``) with ``config``
  (a nested mapping) laid over them, checked."""
  base = get_recipe(recipe, dataset)
  resolved = validate(merge(base, config) if config is not None else base)
  check_overrides_apply(resolved, config)
  return resolved


def input_scale(x: np.ndarray, scaling: str) -> float:
  """The factor the recipe applies to ``x``: 1, or ``sqrt(d / mean ||x||^2)``."""
  if scaling == "none":
    return 1.0
  if scaling == "unit_power":
    power = float(np.mean(np.square(x, dtype=np.float64)))
    if power == 0:
      raise ValueError("input_scaling='unit_power' needs data that is not all zeros")
    return float(1.0 / np.sqrt(power))
  raise ValueError(f"unknown input_scaling {scaling!r}; use 'none' or 'unit_power'")
