"""DEC on all 70,000 MNIST digits.

  python -m jdec.experiments.mnist --workdir runs/mnist \
      --config.data_dir=/path/to/mnist --config.seed=0
"""

from jdec.experiments import cli
from jdec.experiments import config as experiment_config


def get_config():
  """MNIST with the DEC-keras recipe; every recipe setting can be overridden."""
  return experiment_config.base_config("mnist", n_clusters=10)


if __name__ == "__main__":
  cli.main(get_config)
