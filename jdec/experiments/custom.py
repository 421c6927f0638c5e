"""DEC on your own data, from a file.

  python -m jdec.experiments.custom --workdir runs/mine \
      --config.data=features.csv --config.n_clusters=5 [--config.label_column=label]
  python -m jdec.experiments.custom --workdir runs/faces \
      --config.data=faces.npy --config.n_clusters=20 --config.recipe=dcec \
      --config.image_shape=32,32,1

``data`` is a ``.npy`` (rows ``[n, d]`` or images ``[n, h, w(, c)]``), an ``.npz``
(``x`` and optional labels ``y``) or a ``.csv`` (numbers; an optional header line;
``label_column`` names the column of true classes, by header name or index, kept
out of the features and used only for scoring). ``image_shape`` makes flat rows
images, as the conv recipes need. The recipes' learning rates suit features in
[0, 1] (pixels / 255): scale your data, or pass e.g. ``--config.pretrain.optimizer=adam
--config.pretrain.learning_rate=0.001``.
"""

from ml_collections import config_dict

from jdec.experiments import cli
from jdec.experiments import config as experiment_config


def get_config():
  """Your file with the DEC-keras recipe; every recipe setting can be overridden."""
  config = experiment_config.base_config("custom", n_clusters=2)
  config.n_clusters = config_dict.placeholder(int)  # required: --config.n_clusters=K
  config.data = config_dict.placeholder(str)  # required: --config.data=FILE
  config.label_column = config_dict.placeholder(str)  # CSV: the column of true classes
  config.image_shape = ()  # e.g. 28,28,1: the rows are images
  return config


if __name__ == "__main__":
  cli.main(get_config)
