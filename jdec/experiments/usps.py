"""DEC on the 9,298 USPS digits, from a local usps.npz.

  python -m jdec.experiments.usps --workdir runs/usps --config.data_dir=/path/to/usps
"""

from jdec.experiments import cli
from jdec.experiments import config as experiment_config


def get_config():
  """USPS with the DEC-keras recipe; every recipe takes its USPS settings (update
  interval 30; ``dec_keras``: 50 Adam epochs, glorot-uniform init, as DEC-keras)."""
  return experiment_config.base_config("usps", n_clusters=10)


if __name__ == "__main__":
  cli.main(get_config)
