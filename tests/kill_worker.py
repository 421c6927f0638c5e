"""A small experiment run as its own process that kills itself with SIGKILL at a
chosen point, for the kill tests (tests/test_kill.py).

    python tests/kill_worker.py WORKDIR CONFIG_JSON POINT

CONFIG_JSON holds flattened overrides of the digits experiment's config
(``{"seeds": [0, 1], "pretrain.num_epochs": 6, ...}``). POINT is where the
process dies (nothing is cleaned up, no handler runs: SIGKILL):

  ``none``                 run to the end
  ``<phase>:<n>:mid``      right after the checkpoint of position ``n`` of phase
                           ``pretrain``/``kmeans``/``dec`` is handed to orbax, while
                           it is written in the background
  ``<phase>:<n>:after``    once that checkpoint is written
  ``dec:done:mid``         right after the DEC checkpoint taken when every run stopped
  ``kmeans:running``       in k-means, before its checkpoint
  ``model:<n>:mid``        while the ``n``-th ``model/`` folder is being written
                           (its files are there, the folder is not renamed yet)
  ``pictures``             while the first pictures are being drawn
  ``results``              right after ``results.json`` is written, before the
                           checkpoints are removed
"""

import json
import os
import signal
import sys


def die():
  sys.stdout.flush()
  os.kill(os.getpid(), signal.SIGKILL)


def arm(point: str):
  """Patches jdec so that the process dies at ``point``."""
  # pylint: disable=import-outside-toplevel
  from jdec import api, checkpoint, report
  from jdec.experiments import workdir as workdir_lib

  phase, *rest = point.split(":")
  if phase in ("pretrain", "kmeans", "dec") and rest != ["running"]:
    at, when = rest
    save_tree = checkpoint.Progress.save_tree

    def save_then_die(self, epoch, tree, info, *, final=False):
      written = save_tree(self, epoch, tree, info, final=final)
      hit = info.get("done") if at == "done" else epoch == int(at)
      if written and self.directory.name == phase and hit:
        if when == "after":
          self._manager.wait_until_finished()  # pylint: disable=protected-access
        die()
      return written

    checkpoint.Progress.save_tree = save_then_die
  elif point == "kmeans:running":
    api._embed_runs = lambda *a, **k: die()  # pylint: disable=protected-access
  elif phase == "model":
    count, rename = [0], checkpoint.pathlib.Path.rename

    def rename_or_die(self, target):  # checkpoint.save renames the finished folder
      if os.path.basename(target) == "model":
        count[0] += 1
        if count[0] == int(rest[0]):
          die()
      return rename(self, target)

    checkpoint.pathlib.Path.rename = rename_or_die
  elif point == "pictures":
    report.draw = lambda *a, **k: die()
  elif point == "results":
    remove = workdir_lib.remove_checkpoints
    workdir_lib.remove_checkpoints = lambda workdir: die() or remove(workdir)
  elif point != "none":
    raise SystemExit(f"unknown kill point {point!r}")


def config_from(overrides: dict):
  """The digits experiment's config with flattened ``overrides`` (lists as tuples)."""
  from jdec.experiments import digits  # pylint: disable=import-outside-toplevel
  config = digits.get_config()
  config.update_from_flattened_dict(
      {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()})
  return config


def main(workdir: str, overrides: str, point: str):
  from jdec.experiments import runner  # pylint: disable=import-outside-toplevel
  config = config_from(json.loads(overrides))
  arm(point)
  results = runner.run(config, workdir)
  print(json.dumps({"finished": True, "resumed_from_epoch": results.get("resumed_from_epoch")}))


if __name__ == "__main__":
  main(*sys.argv[1:])
