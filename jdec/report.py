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
import json
import pathlib
import sys

import numpy as np

from jdec import checkpoint, data, plots, saving

PICTURES = ("confusion_matrix.png", "cluster_gallery.png", "embedding.png",
            "training_curves.png")


def read_records(workdir) -> list[dict]:
  """The records of ``workdir/metrics.jsonl`` (an unreadable line is named)."""
  path = pathlib.Path(workdir) / "metrics.jsonl"
  records = []
  for i, line in enumerate(path.read_text().splitlines(), 1):
    if not line.strip():
      continue
    try:
      records.append(json.loads(line))
    except json.JSONDecodeError:
      raise ValueError(f"{path}, line {i}, is not JSON: the file is damaged") from None
  return records


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
  config = json.loads(config_path.read_text())["experiment"]
  dataset = config.get("dataset")
  x, y, _ = data.load_experiment(config)
  records = read_records(workdir)
  seeds = list(config.get("seeds") or [])
  written = []
  for seed in seeds or [config.get("seed", 0)]:
    folder = workdir / f"seed_{seed}" if seeds else workdir
    model = saving.load(folder / "model")
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
  except (FileNotFoundError, ValueError, KeyError, data.DataError,
          checkpoint.CheckpointError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  for path in written:
    print(path)
  return 0


if __name__ == "__main__":
  sys.exit(main())
