"""Odd input at the public entry points: each either works or raises a ValueError or
TypeError that names the problem; never an error from deep inside JAX (hypothesis drives
the data checks, a few representative cases go through jdec.fit, jdec.DEC and a model)."""

import numpy as np
import pytest
import scipy.sparse
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import jdec
from jdec import validation

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
