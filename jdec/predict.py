"""Predict clusters with a saved model from the shell.

    python -m jdec.predict --model WORKDIR/model --input x.npy --output labels.npy
    python -m jdec.predict --model DIR --input x.csv --output q.npy --proba

The input is ``.npy`` (read a block of rows at a time), ``.npz`` (the
array ``x``, or its only array; read whole) or ``.csv`` (numbers, read a block
of rows at a time; a first line that is not numeric is taken as a header, so
a header of numbers only would be read as a row). Rows are ``[m, d]``, or images ``[m, h, w, c]`` in ``.npy``/``.npz``
for models trained on images. The output is ``.npy`` or ``.csv``: the labels
``[m]``, or with ``--proba`` the soft assignments ``q [m, k]``, or with
``--embed`` the embedding ``[m, e]``. Memory stays bounded by the block size,
so a million rows works.
"""

import argparse
import csv
import io
import itertools
import pathlib
import sys
from typing import Iterator

import numpy as np

from jdec import checkpoint, data, saving

BLOCK_ROWS = 65_536  # rows read from the input at a time


class InputError(ValueError):
  """The input or output file cannot be used; the message says why."""


def _npz_array(path: pathlib.Path) -> np.ndarray:
  with np.load(path, allow_pickle=False) as npz:
    names = list(npz.files)
    if "x" in names:
      return data.npz_array(npz, "x", path)
    if len(names) == 1:
      return data.npz_array(npz, names[0], path)
  raise InputError(f"{path} holds the arrays {names}; name the rows 'x'")


def _npy_blocks(path: pathlib.Path, block_rows: int):
  """``(blocks, rows)`` of a ``.npy`` file, read a block at a time (not all at once)."""
  f = open(path, "rb")
  try:
    version = np.lib.format.read_magic(f)
    read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                   (2, 0): np.lib.format.read_array_header_2_0}.get(version)
    header = read_header(f) if read_header else None
  except Exception:
    f.close()
    raise
  if header is None:  # another format version: np.load reads it
    f.close()
    return None
  shape, fortran, dtype = header
  if fortran or dtype.hasobject or not shape:
    f.close()
    return None
  row_items = int(np.prod(shape[1:], dtype=np.int64))

  def blocks():
    with f:
      for start in range(0, shape[0], block_rows):
        count = min(block_rows, shape[0] - start)
        block = np.fromfile(f, dtype=dtype, count=count * row_items)
        if block.size != count * row_items:
          raise InputError(f"{path} is truncated: it ends inside row "
                           f"{start + block.size // max(row_items, 1)} of the {shape[0]} its "
                           "header announces")
        yield block.reshape((count,) + tuple(shape[1:]))

  return blocks(), int(shape[0])


def _csv_blocks(path: pathlib.Path, block_rows: int) -> Iterator[np.ndarray]:
  """Blocks of rows ``[b, d]`` (float64) of a numeric CSV, skipping a header line."""
  try:
    yield from _csv_blocks_unchecked(path, block_rows)
  except UnicodeDecodeError as e:
    raise InputError(f"cannot read {path}: it is not UTF-8 text ({e.reason})") from None


def _csv_blocks_unchecked(path: pathlib.Path, block_rows: int) -> Iterator[np.ndarray]:
  with open(path, newline="", encoding="utf-8") as f:
    reader = csv.reader(f)
    width, line_no, header_checked = None, 0, False
    while True:
      lines = list(itertools.islice(reader, block_rows))
      if not lines:
        return
      rows = []
      for fields in lines:
        line_no += 1
        if not fields or all(not v.strip() for v in fields):
          continue  # blank line
        try:
          row = [float(v) for v in fields]
        except ValueError:
          if not header_checked and line_no == 1:
            header_checked = True
            continue  # a header
          raise InputError(f"{path}, line {line_no}: not a number in {fields[:8]}; the "
                           "CSV must hold numbers only (a header line is allowed)") from None
        header_checked = True
        if width is None:
          width = len(row)
        if len(row) != width:
          raise InputError(f"{path}, line {line_no}: {len(row)} values, but the first row "
                           f"has {width}")
        rows.append(row)
      if rows:
        yield np.asarray(rows, np.float64)


def _count_csv_rows(path: pathlib.Path) -> int | None:
  try:
    with open(path, "rb") as f:
      return sum(1 for line in f if line.strip())
  except OSError:
    return None


def read_blocks(path) -> tuple[Iterator[np.ndarray], int | None]:
  """``(blocks, total_rows)``: the input's rows in blocks, and how many there are."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise InputError(f"no input file {path}")
  suffix = path.suffix.lower()
  try:
    if suffix in (".npy", ".npz"):
      data.check_array_file(path)  # before np.load takes garbage for a pickle
    if suffix == ".npy":
      streamed = _npy_blocks(path, BLOCK_ROWS)
      if streamed is not None:
        return streamed
      x = np.load(path, mmap_mode="r", allow_pickle=False)
    elif suffix == ".npz":
      x = _npz_array(path)
    elif suffix == ".csv":
      return _csv_blocks(path, BLOCK_ROWS), _count_csv_rows(path)
    else:
      raise InputError(f"{path}: unknown input type {suffix!r}; give .npy, .npz or .csv")
  except data.DataError as e:
    raise InputError(str(e)) from None
  except data.READ_ERRORS as e:
    if isinstance(e, InputError):
      raise
    raise InputError(data.read_error(path, e)) from None
  if x.ndim == 0:
    raise InputError(f"{path} holds a scalar, not rows")
  return iter([x]), int(x.shape[0])


def _writer(path: pathlib.Path):
  """``(write(block), close())`` appending blocks of results to ``path``."""
  if path.suffix.lower() == ".csv":
    f = open(path, "w", encoding="utf-8")

    def write_csv(block):
      buf = io.StringIO()
      np.savetxt(buf, block.reshape(len(block), -1),
                 fmt="%d" if block.dtype.kind == "i" else "%.7g", delimiter=",")
      f.write(buf.getvalue())

    return write_csv, f.close
  parts = []  # labels and q are small next to the input: kept, then saved at once
  return parts.append, lambda: np.save(path, np.concatenate(parts) if parts else
                                       np.zeros((0,), np.int64))


def predict_file(model, input_path, output_path, *, output: str = "labels",
                 progress: bool | None = None, overwrite: bool = False) -> int:
  """Writes the labels (or ``q``, or the embedding) of every row in ``input_path``.

  Returns:
    The number of rows predicted.
  """
  from tqdm import tqdm  # pylint: disable=import-outside-toplevel

  output_path = pathlib.Path(output_path)
  if output_path.suffix.lower() not in (".npy", ".csv"):
    raise InputError(f"{output_path}: give an output ending in .npy or .csv")
  if output_path.exists() and not overwrite:
    raise InputError(f"{output_path} exists; choose another --output or pass --overwrite")
  blocks, total = read_blocks(input_path)
  method = {"labels": model.predict, "proba": model.predict_proba,
            "embed": model.embed}[output]
  output_path.parent.mkdir(parents=True, exist_ok=True)
  partial = output_path.with_name(output_path.name + ".partial" + output_path.suffix)
  write, close = _writer(partial)
  n = 0
  try:
    with tqdm(total=total, unit="rows", disable=(None if progress is None else not progress),
              desc="predict") as bar:
      for block in blocks:
        try:
          out = method(block, progress=bar.update)
        except (ValueError, TypeError) as e:
          raise InputError(f"{input_path}: {e}") from None
        write(out)
        n += len(block)
    close()
  except BaseException:
    close()
    partial.unlink(missing_ok=True)
    raise
  if n == 0:
    partial.unlink(missing_ok=True)
    raise InputError(f"{input_path} holds no rows to predict")
  partial.replace(output_path)  # appears whole or not at all
  return n


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(
      prog="python -m jdec.predict",
      description="Cluster labels (or q, or embeddings) of new rows with a saved jdec model.")
  parser.add_argument("--model", required=True,
                      help="a model folder (jdec.save, or an experiment's WORKDIR/model)")
  parser.add_argument("--input", required=True, help="rows: .npy, .npz (array x) or .csv")
  parser.add_argument("--output", required=True, help="where to write: .npy or .csv")
  what = parser.add_mutually_exclusive_group()
  what.add_argument("--proba", action="store_true", help="write q [m, k] instead of labels")
  what.add_argument("--embed", action="store_true", help="write the embedding [m, e]")
  parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
  parser.add_argument("--no-progress", action="store_true", help="no progress bar")
  args = parser.parse_args(argv)
  try:
    model = saving.load(args.model)
    n = predict_file(model, args.input, args.output,
                     output="proba" if args.proba else "embed" if args.embed else "labels",
                     progress=False if args.no_progress else None, overwrite=args.overwrite)
  except (InputError, checkpoint.CheckpointError, OSError, ValueError, TypeError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print(f"wrote {n} rows to {args.output}", file=sys.stderr)
  return 0


if __name__ == "__main__":
  sys.exit(main())
