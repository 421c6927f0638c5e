"""The settings every experiment shares: ``base_config`` and the recipe's placeholders."""

import ml_collections
from ml_collections import config_dict

from jdec import recipes

RECIPE_SECTIONS = ("model", "input_scaling", "augment", "pretrain", "kmeans", "dec")


def recipe_overrides() -> ml_collections.ConfigDict:
  """Every recipe setting as an unset placeholder: ``--config.dec.tol=...`` overrides it."""

  def placeholders(value):
    if isinstance(value, dict):
      return {k: placeholders(v) for k, v in value.items()}
    return config_dict.placeholder(type(value))

  base = recipes.get_recipe().to_dict()
  return ml_collections.ConfigDict({k: placeholders(base[k]) for k in RECIPE_SECTIONS})


def base_config(dataset: str, n_clusters: int) -> ml_collections.ConfigDict:
  """Settings common to every experiment; recipe settings default to the recipe's."""
  config = recipe_overrides()
  config.dataset = dataset
  config.recipe = "dec_keras"
  config.seed = 0
  config.seeds = ()  # e.g. --config.seeds=0,1,2: train all at once (overrides seed)
  config.n_clusters = n_clusters
  config.data_dir = config_dict.placeholder(str)
  config.n_samples = config_dict.placeholder(int)  # first n rows only (quick runs)
  config.pretrained = config_dict.placeholder(str)  # a saved autoencoder/ folder
  config.kmeans_raw = True  # score k-means on the raw input (the tutorial's baseline)
  config.progress = True
  config.embedding_map = "tsne"  # embedding.png: 'tsne' or 'pca' (quicker)
  config.stream = False  # keep the data on the host and send batches (large data)
  config.stream_steps = 64  # steps per block sent when streaming
  config.checkpoint_every = 10  # pretraining epochs (layer-wise: blocks) between checkpoints
  config.checkpoint_every_updates = 5  # DEC updates between checkpoints (both 0: none)
  config.checkpoint_min_interval_s = 60.0  # ... and at least this many seconds apart
  config.resume = False  # continue the unfinished run in --workdir (or start one)
  # Several processes (hosts): jax.distributed.initialize() before anything else.
  config.distributed = False  # True: find the others (TPU pod slice, SLURM, Open MPI)
  config.coordinator_address = config_dict.placeholder(str)  # or name them: "host0:1234",
  config.num_processes = config_dict.placeholder(int)  # ... how many there are,
  config.process_id = config_dict.placeholder(int)  # ... and which this one is (0 writes)
  return config
