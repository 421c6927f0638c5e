"""Packs what the GPU runs of ``experiments/gpu.sh`` left into a few bounded pieces.

    python experiments/gpu_pack.py WORK OUT [--max_parts 4] [--part_mib 15]

The device tool brings back at most 8 files of 16 MiB (64 MiB in all), so
everything goes into one ``runs.tar.gz``, split into ``OUT/runs.tar.gz.partN``.
Files are taken in this order while they fit:

1. logs, configs, results, metrics and pictures (everything but parameters);
2. the checkpoints and autoencoder of each run that did not finish, smallest
   run first, so that it can resume on another machine;
3. the ``model/`` folders of the finished runs, smallest first.

What did not fit is listed in ``OUT/packed.txt``. Put the pieces back together
with ``cat runs.tar.gz.part* | tar -xz``.
"""

import argparse
import io
import pathlib
import tarfile

PARAM_DIRS = ("checkpoints", "autoencoder", "model")


def _tree_bytes(files) -> int:
  return sum(f.stat().st_size for f in files)


def plan(work: pathlib.Path, budget: int) -> tuple[list[pathlib.Path], list[str]]:
  """Returns the files to pack, in order, and a note per group left out."""
  files = [f for f in sorted(work.rglob("*")) if f.is_file()]
  def in_param_dir(f):
    return any(part in PARAM_DIRS for part in f.relative_to(work).parts[:-1])
  chosen = [f for f in files if not in_param_dir(f)]
  used, left_out = _tree_bytes(chosen), []
  runs = sorted(d for d in work.iterdir() if d.is_dir() and (d / "config.json").exists())
  unfinished = [d for d in runs if not (d / "results.json").exists()]
  finished = [d for d in runs if (d / "results.json").exists()]
  groups = []
  for names, pool in ((("checkpoints", "autoencoder"), unfinished), (("model",), finished)):
    for run in pool:
      group = [f for f in files if f.is_relative_to(run) and in_param_dir(f)
               and any(p in names for p in f.relative_to(run).parts[:-1])]
      if group:
        groups.append((run.name + "/" + "+".join(names), group))
  groups.sort(key=lambda g: (g[0].endswith("model"), _tree_bytes(g[1])))
  for name, group in groups:
    size = _tree_bytes(group)
    if used + size <= budget:
      chosen += group
      used += size
    else:
      left_out.append(f"{name}: {size / 2**20:.1f} MiB")
  return chosen, left_out


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("work", type=pathlib.Path)
  parser.add_argument("out", type=pathlib.Path)
  parser.add_argument("--max_parts", type=int, default=4)
  parser.add_argument("--part_mib", type=float, default=15.0)
  args = parser.parse_args()
  part = int(args.part_mib * 2**20)
  # Parameters barely compress, so the raw sizes bound the archive (with slack).
  files, left_out = plan(args.work, int(args.max_parts * part * 0.97))
  buffer = io.BytesIO()
  with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as tar:
    for f in files:
      tar.add(f, arcname=str(f.relative_to(args.work)))
  data = buffer.getvalue()
  args.out.mkdir(parents=True, exist_ok=True)
  pieces = [data[i:i + part] for i in range(0, len(data), part)]
  if len(pieces) > args.max_parts:
    raise SystemExit(f"packed {len(data)} bytes, more than {args.max_parts} parts")
  for i, piece in enumerate(pieces):
    (args.out / f"runs.tar.gz.part{i}").write_bytes(piece)
  note = [f"{len(files)} files, {len(data) / 2**20:.1f} MiB in {len(pieces)} parts"]
  note += [f"left out: {x}" for x in left_out]
  (args.out / "packed.txt").write_text("\n".join(note) + "\n")
  print("\n".join(note))


if __name__ == "__main__":
  main()
