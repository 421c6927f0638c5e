"""DEC on all 70,000 MNIST digits.

  python -m jdec.experiments.mnist --workdir runs/mnist \
      --config.data_dir=/path/to/mnist --config.seed=0
"""

from absl import app, flags
from ml_collections import config_flags

from jdec.experiments import runner


def get_config():
  """MNIST with the DEC-keras recipe; every recipe setting can be overridden."""
  return runner.base_config("mnist", n_clusters=10)


FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Directory for config, metrics, checkpoints, results.")
config_flags.DEFINE_config_dict("config", get_config())


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  runner.main(FLAGS.config, FLAGS.workdir)


if __name__ == "__main__":
  flags.mark_flag_as_required("workdir")
  app.run(main)
