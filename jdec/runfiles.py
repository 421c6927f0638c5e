"""Reading the files a run writes: JSON objects and ``metrics.jsonl`` records.

Every damaged file is refused with a ``ValueError`` naming it (and the line),
followed by ``advice``: what the caller's user can do about it.
"""

import json
import pathlib
from typing import Callable

# What a record filter raises on a record it cannot read (a field missing or of
# the wrong type); anything else is a bug in the filter and propagates.
_UNREADABLE = (KeyError, TypeError, ValueError, IndexError)


def read_json(path, required: tuple = (), *, advice: str) -> dict:
  """The JSON object in a file jdec wrote.

  Args:
    path: the file.
    required: keys it must hold.
    advice: appended to the error, what to do about a damaged file.

  Returns:
    The object, as a dict.

  Raises:
    OSError: the file cannot be read (missing, a folder, no permission).
    ValueError: it is not UTF-8 JSON, not an object, or lacks a required key.
  """
  try:
    value = json.loads(pathlib.Path(path).read_text(encoding="utf-8"))
  except ValueError as e:  # JSONDecodeError, UnicodeDecodeError
    raise ValueError(f"{path} is damaged ({e}); {advice}") from None
  missing = [k for k in required if k not in value] if isinstance(value, dict) else None
  if missing is None or missing:
    what = (f"it lacks {missing}" if missing else
            f"it holds a JSON {type(value).__name__}, not an object")
    raise ValueError(f"{path} is damaged: {what}; {advice}")
  return value


def read_lines(path, *, advice: str,
               keep: Callable[[dict], bool] | None = None) -> tuple[list[tuple[str, dict]], int | None]:
  """The records of a ``.jsonl`` file jdec appends to, each with its text.

  jdec writes each line whole with its newline, so a kill while appending
  leaves at most a prefix of the last line: a last line with no newline after
  it that is not JSON is taken as cut off, left out, and its number returned.
  Blank lines are skipped; ``\\r\\n`` endings are read as ``\\n``.

  Args:
    path: the file.
    advice: appended to the error, what to do about a damaged line.
    keep: optional filter: the records it returns False for are left out. A
      record it cannot read (it raises ``KeyError``, ``TypeError``,
      ``ValueError`` or ``IndexError``) counts as damaged.

  Returns:
    ``(lines, cut)``: the kept ``(text, record)`` pairs in file order (the text
    without its line ending), and the number of the cut-off last line, or None.

  Raises:
    ValueError: a line is not UTF-8 JSON (other than a cut-off last one), not
      a JSON object, or a record ``keep`` cannot read; the message names the
      file and the line.
  """
  path = pathlib.Path(path)
  raw = path.read_bytes().split(b"\n")
  lines, cut = [], None
  for i, line in enumerate(raw, 1):
    line = line.removesuffix(b"\r")
    if not line.strip():
      continue
    try:
      text = line.decode("utf-8")
      record = json.loads(text)
    except ValueError:  # UnicodeDecodeError, JSONDecodeError
      if i == len(raw):  # no newline after it: cut off while it was being written
        cut = i
        continue
      raise ValueError(f"{path}, line {i}, is not JSON: the file is damaged; {advice}") from None
    if not isinstance(record, dict):
      raise ValueError(f"{path}, line {i}, is not a JSON object: the file is damaged; {advice}")
    try:
      wanted = keep is None or keep(record)
    except _UNREADABLE as e:
      raise ValueError(f"{path}, line {i}, is not a record of this run ({type(e).__name__}: "
                       f"{e}): the file is damaged; {advice}") from None
    if wanted:
      lines.append((text, record))
  return lines, cut
