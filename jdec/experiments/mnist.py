"""DEC on all 70,000 MNIST digits.

  python -m jdec.experiments.mnist --workdir runs/mnist \
      --config.data_dir=/path/to/mnist --config.seed=0
"""

from jdec.experiments import runner


def get_config():
  """MNIST with the DEC-keras recipe; every recipe setting can be overridden."""
  return runner.base_config("mnist", n_clusters=10)


if __name__ == "__main__":
  runner.cli(get_config)
