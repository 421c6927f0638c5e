"""Reading a run's files: what a kill can leave is tolerated, anything else is named."""

import json

import pytest

from jdec import runfiles

ADVICE = "do something"
A, B = {"phase": "pretrain", "epoch": 1}, {"phase": "dec", "iteration": 140}


def _write(tmp_path, data: bytes):
  path = tmp_path / "metrics.jsonl"
  path.write_bytes(data)
  return path


def _line(record) -> bytes:
  return json.dumps(record).encode() + b"\n"


def test_read_lines_keeps_text_and_records_in_order(tmp_path):
  path = _write(tmp_path, _line(A) + b"\n  \n" + _line(B).replace(b"\n", b"\r\n"))
  lines, cut = runfiles.read_lines(path, advice=ADVICE)
  assert lines == [(json.dumps(A), A), (json.dumps(B), B)]  # blank lines skipped, \r dropped
  assert cut is None


@pytest.mark.parametrize("tail", [b'{"phase": "de', b"\xff\xfe", b'{"a": 1'])
def test_a_last_line_cut_before_its_newline_is_left_out(tmp_path, tail):
  path = _write(tmp_path, _line(A) + _line(B) + tail)
  lines, cut = runfiles.read_lines(path, advice=ADVICE)
  assert [r for _, r in lines] == [A, B] and cut == 3
  path = _write(tmp_path, tail)  # the first line, cut
  assert runfiles.read_lines(path, advice=ADVICE) == ([], 1)


@pytest.mark.parametrize("damaged, problem", [
    (b'{"phase": "de\n', "is not JSON"),  # a kill cannot leave a newline after a cut
    (b"\xff\n", "is not JSON"),
    (b"[2]", "is not a JSON object"),  # parses: not cut off, whatever its place
    (b"[2]\n", "is not a JSON object"),
    (b'"text"', "is not a JSON object"),
])
def test_damaged_lines_are_refused_by_file_and_line(tmp_path, damaged, problem):
  for where, data in ((1, damaged + b"\n" + _line(A)), (3, _line(A) + _line(B) + damaged)):
    path = _write(tmp_path, data)
    with pytest.raises(ValueError, match=rf"metrics.jsonl, line {where}, {problem}: the file "
                                         rf"is damaged; {ADVICE}"):
      runfiles.read_lines(path, advice=ADVICE)


def test_keep_filters_and_a_record_it_cannot_read_is_damaged(tmp_path):
  path = _write(tmp_path, _line(A) + _line(B) + _line({"phase": "dec", "iteration": "x"}))
  def keep(record):
    return record["phase"] == "dec" and record["iteration"] < 1000

  with pytest.raises(ValueError, match=r"line 3, is not a record of this run \(TypeError"):
    runfiles.read_lines(path, advice=ADVICE, keep=keep)
  path = _write(tmp_path, _line(A) + _line(B) + _line({"phase": "dec", "iteration": 2000}))
  assert runfiles.read_lines(path, advice=ADVICE, keep=keep) == ([(json.dumps(B), B)], None)

  def buggy(record):
    return undefined_name  # noqa: F821  # a bug in the filter is not a damaged file

  with pytest.raises(NameError):
    runfiles.read_lines(path, advice=ADVICE, keep=buggy)


def test_read_json_names_the_file_and_what_is_wrong(tmp_path):
  path = tmp_path / "results.json"
  path.write_text('{"acc": 0.9}')
  assert runfiles.read_json(path, ("acc",), advice=ADVICE) == {"acc": 0.9}
  for text, says in (('{"acc": 0.9', r"is damaged \(Expecting"),
                     ("[1]", "is damaged: it holds a JSON list, not an object"),
                     ('{"nmi": 1}', r"is damaged: it lacks \['acc'\]")):
    path.write_text(text)
    with pytest.raises(ValueError, match=rf"results.json {says}.*; {ADVICE}$"):
      runfiles.read_json(path, ("acc",), advice=ADVICE)
  path.write_bytes(b'{"acc": "\xff"}')
  with pytest.raises(ValueError, match="results.json is damaged"):
    runfiles.read_json(path, advice=ADVICE)
