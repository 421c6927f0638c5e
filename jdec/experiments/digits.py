"""DEC on scikit-learn's 1,797 bundled 8x8 digits: fully offline, a few minutes on a CPU.

  python -m jdec.experiments.digits --workdir runs/digits
"""

from jdec.experiments import cli
from jdec.experiments import config as experiment_config


def get_config():
  """Digits, 10 clusters; the recipe's digits settings (``jdec.recipes.get_recipe``)."""
  return experiment_config.base_config("digits", n_clusters=10)


if __name__ == "__main__":
  cli.main(get_config)
