"""DEC on the 9,298 USPS digits, from a local usps.npz.

  python -m jdec.experiments.usps --workdir runs/usps --config.data_dir=/path/to/usps
"""

from jdec.experiments import runner


def get_config():
  """USPS with the DEC-keras recipe (DEC-keras pretrains 300 epochs here too)."""
  return runner.base_config("usps", n_clusters=10)


if __name__ == "__main__":
  runner.cli(get_config)
