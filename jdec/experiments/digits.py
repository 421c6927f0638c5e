"""DEC on scikit-learn's 1,797 bundled 8x8 digits: fully offline, a few minutes on a CPU.

  python -m jdec.experiments.digits --workdir runs/digits
"""

from jdec.experiments import runner


def get_config():
  """The DEC-keras recipe with 100 pretraining epochs (300 is for 70,000 images)."""
  config = runner.base_config("digits", n_clusters=10)
  config.pretrain.num_epochs = 100
  return config


if __name__ == "__main__":
  runner.cli(get_config)
