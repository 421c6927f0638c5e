"""Reading the files a run writes: JSON objects and ``metrics.jsonl`` records.

Every damaged file is refused with a ``ValueError`` naming it (and the line),
followed by ``advice``: what the caller's user can do about it.
"""

import json
import pathlib


def read_json(path, required: tuple = (), *, advice: str) -> dict:
  """The JSON object in ``path``, holding the keys ``required``.

  Raises:
    ValueError: the file is not UTF-8 JSON, not an object, or lacks a key.
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


def read_lines(path, *, advice: str, check=None) -> tuple[list[tuple[str, dict]], int | None]:
  """The lines of a ``.jsonl`` file, each as its text and its JSON object.

  A last line without a newline after it that does not parse was cut off by a
  kill while it was written: it is left out, and its number returned.

  Args:
    path: the file.
    advice: appended to the error, what to do about a damaged line.
    check: optional ``record -> None`` that raises (any exception) for an
      object the caller cannot use; such a line counts as damaged.

  Returns:
    ``(lines, cut)``: the ``(text, record)`` pairs in order, and the number of
    the cut-off last line (None when there is none).

  Raises:
    ValueError: a line other than the last is not UTF-8 JSON, not an object,
      or refused by ``check``; the message names the file and the line.
  """
  path = pathlib.Path(path)
  raw = path.read_bytes().split(b"\n")
  lines, cut = [], None
  for i, line in enumerate(raw, 1):
    if not line.strip():
      continue
    problem = "is not JSON"
    try:
      text = line.decode("utf-8")
      record = json.loads(text)
      if not isinstance(record, dict):
        problem = "is not a JSON object"
        raise ValueError
      if check is not None:
        problem = "is not a record of this run"
        check(record)
    except Exception:  # pylint: disable=broad-except (not UTF-8, not JSON, refused)
      if i == len(raw):  # after the last newline: cut off while being written
        cut = i
        continue
      raise ValueError(f"{path}, line {i}, {problem}: the file is damaged; {advice}") from None
    lines.append((text, record))
  return lines, cut
