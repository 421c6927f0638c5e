"""The pictures of a work directory, drawn after a run or again later from the shell.

    python -m jdec.report WORKDIR [--map pca]

writes into the work directory (into each ``seed_<s>/`` of a sweep):

- ``confusion_matrix.png``: true classes against clusters (when labels are known);
- ``cluster_gallery.png``: for images, each cluster's most confident members;
- ``embedding.png``: a t-SNE (or PCA) map of the embedding of up to 5,000 rows,
  by cluster and by true class;
- ``training_curves.png``: the pretraining loss, and per DEC update the loss,
  the fraction of changed labels and ACC/NMI, from ``metrics.jsonl``.

Redrawing needs the run's data (the dataset and ``data_dir`` in its
``config.json``) for all but the training curves.
"""

import argparse
import pathlib
import sys

import numpy as np
from absl import logging

from jdec import checkpoint, data, plots, runfiles, saving

PICTURES = ("confusion_matrix.png", "cluster_gallery.png", "embedding.png",
            "training_curves.png")


def read_records(workdir) -> list[dict]:
  """The records of ``workdir/metrics.jsonl``.

  A last line cut off by a kill while it was written (no newline after it) is
  left out with a warning.

  Raises:
    ValueError: any other line is not a JSON object (the message names the
      file and the line).
  """
  path = pathlib.Path(workdir) / "metrics.jsonl"
  lines, cut = runfiles.read_lines(path, advice="repair or remove that line")
  if cut is not None:
    logging.warning("%s, line %d, was cut off (the run was stopped while writing it): it "
                    "is left out", path, cut)
  return [record for _, record in lines]


def _read_json(path: pathlib.Path) -> dict:
  """A work directory's ``config.json`` or ``results.json``, or a ValueError naming it."""
  return runfiles.read_json(path, advice="restore it, or run the experiment again into a "
                            "new --workdir")


def draw(folder, model, x, y=None, records=(), *, seed=None, title: str = "",
         map_method: str = "tsne") -> list[pathlib.Path]:
  """Writes the pictures of one trained model into ``folder``.

  Args:
    folder: where the PNGs go.
    model: a ``jdec.TrainedModel`` (or a ``FitResult``).
    x: the data it clustered, as given to it (rows or images).
    y: true labels, or None.
    records: log records (``metrics.jsonl``); those of other seeds are left out.
    seed: this run's seed in a sweep's records (None: every record).
    title: put on each picture.
    map_method: ``"tsne"`` or ``"pca"`` for the embedding map.

  Returns:
    The paths written.
  """
  folder = pathlib.Path(folder)
  model = saving.as_model(model)
  q, z = model.assign(x)  # one pass over the data
  labels = q.argmax(1)
  written = []
  if y is not None:
    plots.save_confusion_matrix(folder / "confusion_matrix.png", y, labels, title=title)
    written.append(folder / "confusion_matrix.png")
  if model.image_shape is not None:
    images = np.asarray(x).reshape((-1, *model.image_shape))
    plots.save_cluster_gallery(folder / "cluster_gallery.png", images, q, title=title)
    written.append(folder / "cluster_gallery.png")
  plots.save_embedding(folder / "embedding.png", z, labels, y, method=map_method,
                       title=title)
  written.append(folder / "embedding.png")
  mine = [r for r in records if seed is None or r.get("seed") in (None, seed)]
  plots.save_training_curves(folder / "training_curves.png", mine, title=title)
  written.append(folder / "training_curves.png")
  return written


def redraw(workdir, map_method: str = "tsne") -> list[pathlib.Path]:
  """Draws the pictures of a finished work directory again (every seed of a sweep)."""
  workdir = pathlib.Path(workdir).expanduser().absolute()
  config_path = workdir / "config.json"
  if not config_path.is_file() or not (workdir / "results.json").is_file():
    raise FileNotFoundError(f"{workdir} holds no finished run (no config.json and "
                            "results.json): give the --workdir of a run that has ended")
  config = _read_json(config_path).get("experiment")
  if not isinstance(config, dict):
    raise ValueError(f"{config_path} is damaged: it has no 'experiment' settings; restore "
                     "it, or run the experiment again into a new --workdir")
  _read_json(workdir / "results.json")  # a finished run's, whole
  records = read_records(workdir)
  seeds = list(config.get("seeds") or [])
  runs = [(seed, workdir / f"seed_{seed}" if seeds else workdir)
          for seed in seeds or [config.get("seed", 0)]]
  # Every file is read before the first picture is drawn over.
  models = [saving.load(folder / "model") for _, folder in runs]
  x, y, _ = data.load_experiment(config)
  dataset = config.get("dataset")
  written = []
  for (seed, folder), model in zip(runs, models):
    written += draw(folder, model, x, y, records, seed=seed if seeds else None,
                    title=f"{dataset} {config.get('recipe')} seed {seed}",
                    map_method=map_method)
  return written


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog="python -m jdec.report",
                                   description="Draw a finished run's pictures again.")
  parser.add_argument("workdir", help="the --workdir of a finished experiment")
  parser.add_argument("--map", choices=plots.MAP_METHODS, default="tsne",
                      help="how to map the embedding to 2-D (default: tsne)")
  args = parser.parse_args(argv)
  try:
    written = redraw(args.workdir, args.map)
  except (OSError, ValueError, KeyError, TypeError, data.DataError,
          checkpoint.CheckpointError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  for path in written:
    print(path)
  return 0


if __name__ == "__main__":
  sys.exit(main())
