"""An experiment's command line: ``--workdir DIR`` and ``--config.*`` overrides,
several processes when asked, and a user's mistake ending with its message."""

import os

import jax
import ml_collections
from absl import app, flags
from ml_collections import config_flags

from jdec.experiments import runner


def start_processes(config) -> None:
  """Joins the ``jax.distributed`` job that ``config`` asks for, if any.

  Must run before anything touches JAX's devices. On CPUs the processes
  exchange gradients through gloo.
  """
  named = {k: config.get(k) for k in ("coordinator_address", "num_processes", "process_id")}
  if not config.get("distributed") and all(v is None for v in named.values()):
    return
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  try:
    jax.distributed.initialize(**{k: v for k, v in named.items() if v is not None})
  except (ValueError, TypeError, RuntimeError) as e:
    raise ValueError(
        "could not start the distributed run: on a Cloud TPU pod slice, under SLURM or "
        "Open MPI, --config.distributed=True finds the other processes by itself; "
        "elsewhere pass --config.coordinator_address=HOST0:PORT, --config.num_processes=N "
        f"and --config.process_id=I (0..N-1) to every process. JAX said: {e}") from e


def run_or_exit(config: ml_collections.ConfigDict, workdir) -> dict:
  """``run`` for the command line: a user's mistake ends with its message, no traceback."""
  try:
    start_processes(config)
    return runner.run(config, workdir)
  except runner.USER_ERRORS as e:
    if os.environ.get("JDEC_TRACEBACK"):
      raise
    message = e.args[0] if isinstance(e, KeyError) and e.args else e
    raise SystemExit(f"error: {message}\n(set JDEC_TRACEBACK=1 to see where it came from)") from None


def main(get_config, run_fn=None, default_workdir: str | None = None) -> None:
  """The command line of an experiment: ``--workdir DIR`` plus ``--config.*`` overrides.

  ``run_fn(config, workdir)`` does the work (default: ``run_or_exit``, a
  training run); without ``default_workdir`` the ``--workdir`` flag is required.
  """
  flags.DEFINE_string("workdir", default_workdir, "Directory for the run's files.")
  if default_workdir is None:
    flags.mark_flag_as_required("workdir")
  config_flags.DEFINE_config_dict("config", get_config())

  def entry(argv):
    if len(argv) > 1:
      raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    (run_fn or run_or_exit)(flags.FLAGS.config, flags.FLAGS.workdir)

  app.run(entry)
