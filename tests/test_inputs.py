"""Odd input at the public entry points: each either works or raises a ValueError or
TypeError that names the problem; never an error from deep inside JAX or NumPy
(hypothesis drives the data checks, a loaded model's predict and the files that
``python -m jdec.predict`` and custom data read; a few representative cases go through
jdec.fit, jdec.DEC and the command lines)."""

import io
import itertools
import pathlib
import tempfile

import numpy as np
import pytest
import scipy.sparse
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import jdec
from jdec import data, predict, validation
from jdec.experiments import cli, custom
from tiny_training import tiny_model

DTYPES = [np.bool_, np.int8, np.int64, np.uint8, np.float16, np.float32, np.float64,
          np.complex64]


@st.composite
def odd_inputs(draw):
  """``(container, array)``: an array of a random shape and dtype, NaN or inf at
  random places, handed over as an array, a list, an object array or a sparse matrix."""
  dtype = draw(st.sampled_from(DTYPES))
  shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
  arr = draw(hnp.arrays(dtype, shape))  # floats include NaN, inf and huge values
  kind = draw(st.sampled_from(["array", "list", "object", "sparse"]))
  if kind == "list":
    return kind, arr.tolist()
  if kind == "object":
    return kind, arr.astype(object)
  if kind == "sparse" and arr.ndim == 2 and arr.dtype != np.float16:  # SciPy has no float16
    return kind, scipy.sparse.csr_matrix(arr)
  return "array", arr


@settings(max_examples=200, deadline=None, derandomize=True)
@given(odd_inputs(), st.integers(1, 5))
def test_check_data_works_or_names_the_problem(case, n_clusters):
  _, x = case
  try:
    out = validation.check_data(x, n_clusters=n_clusters)
  except (ValueError, TypeError) as e:
    named = ("complex numbers", "must hold numbers", "numeric array", "rectangular", "empty",
             "must be 2-D", "NaN", "beyond float32's range", "fewer than n_clusters")
    assert any(words in str(e) for words in named), str(e)
    return
  want = np.asarray(x.toarray() if scipy.sparse.issparse(x) else x, dtype=np.float64)
  assert out.dtype == np.float32 and out.ndim == 2 and out.shape[0] >= n_clusters
  assert np.all(np.isfinite(out))
  np.testing.assert_allclose(out, want.astype(np.float32).reshape(out.shape))


def test_what_each_odd_input_gets():
  ok = validation.check_data
  np.testing.assert_array_equal(ok([[1, 2], [3, 4]]), [[1, 2], [3, 4]])  # lists
  np.testing.assert_array_equal(ok(np.array([[1, 2.5]], object)), [[1, 2.5]])  # numbers
  np.testing.assert_array_equal(ok(np.array([[True, False]])), [[1, 0]])
  sparse = scipy.sparse.random(70, 5, density=0.2, format="csr", random_state=0)
  np.testing.assert_array_equal(ok(sparse), sparse.toarray().astype(np.float32))
  cases = [
      (np.ones((3, 2), np.complex64), TypeError, "complex numbers"),
      (scipy.sparse.csr_matrix(np.ones((3, 2), complex)), TypeError, "complex numbers"),
      (np.array([["a", "b"]]), TypeError, "numeric"),
      (np.array([[1, "a"]], object), TypeError, "holding 'a'"),
      ([[1, 2], [3]], ValueError, "not a rectangular array"),
      (np.zeros((0, 3)), ValueError, "empty"),
      (np.ones(4), ValueError, "2-D"),
      (np.array([[1e300, 1.0]]), ValueError, "beyond float32's range"),
      (np.array([[np.nan, 1.0], [1.0, np.inf]]), ValueError, "1 NaN and 1 infinite"),
  ]
  for x, error, words in cases:
    with pytest.raises(error, match=words):
      ok(x)
  with pytest.raises(ValueError, match="fewer than n_clusters=3"):
    ok(np.ones((2, 2)), n_clusters=3)
  for k, error in ((2.5, TypeError), (True, TypeError), ("3", TypeError), (0, ValueError)):
    with pytest.raises(error, match="n_clusters"):
      validation.check_n_clusters(k)


def test_entry_points_refuse_bad_input_before_any_work(tmp_path):
  x = np.random.default_rng(0).random((20, 4), dtype=np.float32)
  with pytest.raises(TypeError, match="complex numbers"):
    jdec.fit(x.astype(np.complex64), 3)
  with pytest.raises(TypeError, match="n_clusters"):
    jdec.fit(x, 2.5)
  with pytest.raises(ValueError, match="fewer than n_clusters=21"):
    jdec.fit(x, 21)
  with pytest.raises(ValueError, match="empty"):
    jdec.fit(x[:0], 3)
  with pytest.raises(ValueError, match="NaN"):
    jdec.DEC(3).fit(np.where(x > 0.9, np.nan, x))
  with pytest.raises(TypeError, match="n_clusters"):
    jdec.DEC(2.5).fit(x)
  with pytest.raises(FileNotFoundError, match="no_such_model"):
    jdec.load(tmp_path / "no_such_model")
  with pytest.raises(TypeError, match="holding '1.5'"):  # text is not parsed as numbers
    jdec.fit(np.array([["1.5", 2.0]] * 5, object), 2)
  with pytest.raises(TypeError, match="float64's range"):
    jdec.fit(np.array([[10**400, 1]] * 5, object), 2)
  with pytest.raises(ValueError, match="beyond float32's range"):
    jdec.DEC(2).fit(np.full((5, 2), 1e300))
  with pytest.raises(ValueError, match="beyond float32's range"):
    jdec.fit(scipy.sparse.csr_matrix(np.full((5, 2), 1e300)), 2)


TINY = {"model": {"hidden_dims": (8, 3)}, "pretrain": {"num_epochs": 2, "batch_size": 16},
        "kmeans": {"n_init": 2}, "dec": {"maxiter": 10, "update_interval": 5, "batch_size": 16}}


def test_sparse_lists_and_frames_train_and_predict_like_the_dense_array():
  rng = np.random.default_rng(0)
  x = (rng.random((60, 6)) * (rng.random((60, 6)) < 0.4)).astype(np.float32)
  dense = jdec.fit(x, 3, config=TINY, progress=False)
  sparse = jdec.fit(scipy.sparse.csr_matrix(x), 3, config=TINY, progress=False)
  np.testing.assert_array_equal(sparse.labels, dense.labels)
  model = dense.to_model()
  inputs = [scipy.sparse.csr_matrix(x), scipy.sparse.coo_matrix(x), x.tolist(),
            x.astype(object), x.astype(np.float64)]
  for rows in inputs:
    np.testing.assert_array_equal(model.predict(rows), dense.labels)
  with pytest.raises(TypeError, match="complex numbers"):
    model.predict(x.astype(np.complex64))
  with pytest.raises(ValueError, match="beyond float32's range"):
    model.predict(np.full((2, 6), 1e300))
  est = jdec.DEC(3, config=TINY, random_state=0).fit(scipy.sparse.csr_matrix(x))
  np.testing.assert_array_equal(est.predict(scipy.sparse.csr_matrix(x)), est.labels_)
  np.testing.assert_allclose(est.predict_proba(scipy.sparse.csr_matrix(x)),
                             est.predict_proba(x), rtol=1e-6)


def test_pandas_data_frames():
  pandas = pytest.importorskip("pandas", reason="pandas is not a jdec dependency")
  x = np.random.default_rng(0).random((20, 3), dtype=np.float32)
  np.testing.assert_array_equal(validation.check_data(pandas.DataFrame(x)), x)
  with pytest.raises(TypeError, match="holding 'b'"):
    validation.check_data(pandas.DataFrame({"a": [1.0, 2.0], "t": ["b", "c"]}))
  with pytest.raises(ValueError, match="1 NaN"):  # a missing value, pd.NA
    validation.check_data(pandas.DataFrame({"a": pandas.array([1, None], dtype="Int64")}))


# What a model, a file reader or a command line may answer, and the words that name
# the problem (a file's errors name the file besides).
NAMED = ("complex numbers", "must hold numbers", "numeric array", "rectangular", "empty",
         "has shape", "NaN", "beyond float32's range", "real numbers", "no rows", "scalar",
         "not a .npy file", "not an .npz file", "truncated", "not UTF-8", "not a number",
         "values, but", "holds the arrays", "holds Python objects", "cannot read", "2-D",
         "a header but no rows", "unknown", "no input file", "no data file")


@pytest.fixture(scope="module")
def model():
  return tiny_model(input_dim=6)


@st.composite
def rows_for(draw, width):
  """Mostly rows of the model's width (0 to 4 of them), else any shape; then as
  ``odd_inputs`` makes them: odd dtypes, NaN and inf, lists, object arrays, sparse."""
  dtype = draw(st.sampled_from(DTYPES))
  shape = draw(st.one_of(st.tuples(st.integers(0, 4), st.just(width)),
                         hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)))
  arr = draw(hnp.arrays(dtype, shape))
  kind = draw(st.sampled_from(["array", "list", "object", "sparse"]))
  if kind == "list":
    return arr.tolist()
  if kind == "object":
    return arr.astype(object)
  if kind == "sparse" and arr.ndim == 2 and arr.dtype != np.float16:
    return scipy.sparse.csr_matrix(arr)
  return arr


@settings(max_examples=40, deadline=None, derandomize=True)
@given(x=rows_for(6))
def test_a_model_predicts_or_names_the_problem(model, x):
  try:
    labels = model.predict(x)
  except (ValueError, TypeError) as e:
    assert any(words in str(e) for words in NAMED), str(e)
    return
  n = x.shape[0] if hasattr(x, "shape") else len(x)
  assert labels.shape == (n,) and labels.dtype == np.int64
  assert np.all((labels >= 0) & (labels < model.n_clusters))


def _damaged(draw, raw: bytes) -> bytes:
  """``raw`` cut short, overwritten in part with garbage, emptied, or left whole."""
  how = draw(st.sampled_from(["whole", "whole", "cut", "garbage", "empty"]))
  if how == "cut":
    return raw[:draw(st.integers(0, max(len(raw) - 1, 0)))]
  if how == "garbage":
    start = draw(st.integers(0, max(len(raw) - 1, 0)))
    junk = draw(st.binary(min_size=1, max_size=64))
    return raw[:start] + junk + raw[start + len(junk):]
  return b"" if how == "empty" else raw


@st.composite
def data_files(draw):
  """``(suffix, bytes)``: an array of a random dtype and shape (NaN and inf included)
  written as .npy, .npz (under a random name) or .csv, perhaps damaged, perhaps given
  another extension, or text garbage."""
  suffix = draw(st.sampled_from([".npy", ".npz", ".csv"]))
  if draw(st.integers(0, 9)) == 0:
    return suffix, draw(st.binary(max_size=200))
  dtype = draw(st.sampled_from(DTYPES))
  shape = draw(st.one_of(st.tuples(st.integers(0, 4), st.just(6)),
                         hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4)))
  arr = draw(hnp.arrays(dtype, shape))
  buf = io.BytesIO()
  if suffix == ".npy":
    np.save(buf, arr)
  elif suffix == ".npz":
    np.savez(buf, **{draw(st.sampled_from(["x", "x", "rows", "y"])): arr})
  else:
    rows = arr.reshape(arr.shape[0] if arr.ndim else 1, -1).tolist() if arr.size else []
    buf.write("".join(",".join(map(str, row)) + "\n" for row in rows).encode())
  raw = _damaged(draw, buf.getvalue())
  if draw(st.integers(0, 9)) == 0:
    suffix = draw(st.sampled_from([".npy", ".npz", ".csv", ".txt", ""]))
  return suffix, raw


_names = itertools.count()


@pytest.fixture(scope="module")
def folder():
  with tempfile.TemporaryDirectory(prefix="jdec-odd-files-") as name:
    yield pathlib.Path(name)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(case=data_files())
def test_files_are_read_or_named(model, folder, case):
  suffix, raw = case
  path = folder / f"input{next(_names)}{suffix}"
  path.write_bytes(raw)
  output = folder / f"labels{next(_names)}.npy"
  try:
    n = predict.predict_file(model, path, output, progress=False)
    assert np.load(output).shape == (n,)
  except predict.InputError as e:
    assert path.name in str(e) and any(words in str(e) for words in NAMED), str(e)
    assert not output.exists() and not list(folder.glob(output.name + "*"))
  try:
    x, y, _ = data.load_file(path)
    assert x.dtype == np.float32 and x.ndim == 2 and np.isfinite(x).all()
  except (data.DataError, ValueError, TypeError) as e:
    assert path.name in str(e) and any(words in str(e) for words in NAMED), str(e)
  assert path.read_bytes() == raw  # read, never changed


def test_what_each_odd_file_gets(model, tmp_path):
  """The README's rows for files, one by one, at ``python -m jdec.predict`` and custom data."""
  x = np.random.default_rng(0).random((5, 6))
  np.save(tmp_path / "good.npy", x)
  good = (tmp_path / "good.npy").read_bytes()
  np.savez(tmp_path / "good.npz", x=x)
  cases = {
      "empty.npy": (b"", "is empty"),
      "text.npy": (b"1,2,3\n", "not a .npy file"),
      "cut.npy": (good[:150], "is truncated: its header announces an array of shape"),
      "header.npy": (good[:40], "damaged or truncated: its header cannot be read"),
      "cut.npz": ((tmp_path / "good.npz").read_bytes()[:100], "not an .npz file"),
      "garbage.csv": (b"\xff\xfe\x00garbage", "not UTF-8 text"),
      "npy.csv": (good, "not UTF-8 text"),
      "x.txt": (b"1,2\n", "unknown"),
  }
  for name, (raw, words) in cases.items():
    (tmp_path / name).write_bytes(raw)
    with pytest.raises(predict.InputError, match=words):
      predict.predict_file(model, tmp_path / name, tmp_path / "out.npy", progress=False)
    with pytest.raises(data.DataError, match=words):
      data.load_file(tmp_path / name)
  np.save(tmp_path / "objects.npy", np.array([{"a": 1}]), allow_pickle=True)
  np.save(tmp_path / "days.npy", np.zeros((3, 6), "timedelta64[D]"))
  np.savez(tmp_path / "keys.npz", a=x, b=x)
  (tmp_path / "folder.npy").mkdir()
  for name, words in (("objects.npy", "holds Python objects"), ("days.npy", "numeric array"),
                      ("keys.npz", r"holds the arrays \['a', 'b'\]; name the rows 'x'"),
                      ("folder.npy", "no input file")):
    with pytest.raises(predict.InputError, match=words):
      predict.predict_file(model, tmp_path / name, tmp_path / "out.npy", progress=False)
  assert not list(tmp_path.glob("out*"))
  assert predict.predict_file(model, tmp_path / "good.npy", tmp_path / "one.csv",
                              progress=False) == 5


def test_predict_command_line_answers_in_one_line(model, tmp_path, capsys):
  saved = jdec.save(model, tmp_path / "model")
  np.save(tmp_path / "x.npy", np.ones((3, 6)))
  (tmp_path / "cut.npz").write_bytes(b"PK\x03\x04 cut")
  for args, words in (
      (["--input", "cut.npz", "--output", "o.npy"], "cut.npz is not an .npz file"),
      (["--input", "x.npy", "--output", "o.txt"], "o.txt: give an output ending in .npy"),
      (["--input", ".", "--output", "o.npy"], "no input file"),
  ):
    args = [str(tmp_path / a) if not a.startswith("--") else a for a in args]
    assert predict.main(["--model", str(saved), "--no-progress", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and words in err, err
  assert not list(tmp_path.glob("o.*"))


def test_custom_data_command_line_names_a_bad_file(tmp_path, monkeypatch):
  monkeypatch.delenv("JDEC_TRACEBACK", raising=False)
  np.save(tmp_path / "rows.npy", np.ones((10, 4)))
  (tmp_path / "cut.npy").write_bytes((tmp_path / "rows.npy").read_bytes()[:140])
  (tmp_path / "folder.csv").mkdir()
  for name, words in (("cut.npy", "cut.npy is truncated"), ("folder.csv", "no data file")):
    config = custom.get_config()
    config.update_from_flattened_dict({"data": str(tmp_path / name), "n_clusters": 2})
    with pytest.raises(SystemExit) as stop:
      cli.run_or_exit(config, tmp_path / "run")
    message = str(stop.value.code)
    assert message.startswith("error: ") and words in message, message
    assert "Traceback" not in message and not (tmp_path / "run").exists()
