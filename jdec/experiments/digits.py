"""DEC on scikit-learn's 1,797 bundled 8x8 digits: fully offline, a few minutes on a CPU.

  python -m jdec.experiments.digits --workdir runs/digits
"""

from jdec.experiments import cli
from jdec.experiments import config as experiment_config


def get_config():
  """The DEC-keras recipe scaled to 1,797 rows: 100 pretraining epochs, batches of 64.

  With batches of 256 an epoch here is only 7 updates; batches of 64 give four times as
  many for the same compute (ACC 0.83-0.84 over seeds 0-2 against 0.77-0.82).
  """
  config = experiment_config.base_config("digits", n_clusters=10)
  config.pretrain.num_epochs = 100
  config.pretrain.batch_size = 64
  config.dec.batch_size = 64
  return config


if __name__ == "__main__":
  cli.main(get_config)
