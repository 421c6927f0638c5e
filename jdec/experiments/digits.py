"""DEC on scikit-learn's 1,797 bundled 8x8 digits: fully offline, a few minutes on a CPU.

  python -m jdec.experiments.digits --workdir runs/digits
"""

from absl import app, flags
from ml_collections import config_flags

from jdec.experiments import runner


def get_config():
  """The DEC-keras recipe, shortened to fit the small dataset."""
  config = runner.base_config("digits", n_clusters=10)
  config.pretrain.num_epochs = 100
  return config


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
