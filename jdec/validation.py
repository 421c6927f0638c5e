"""Input checks that turn bad data into errors a user can act on."""

import numbers

import numpy as np
import scipy.sparse


def check_n_clusters(n_clusters) -> int:
  """Returns ``n_clusters`` as an int, or raises if it is not an integer >= 1.

  One cluster is allowed, as scikit-learn's ``KMeans`` allows it: every row
  gets cluster 0 (q is 1 and the KL loss 0).
  """
  if isinstance(n_clusters, bool) or not isinstance(n_clusters, numbers.Integral):
    raise TypeError(f"n_clusters must be an integer >= 1, got {n_clusters!r}")
  if n_clusters < 1:
    raise ValueError(f"n_clusters must be >= 1, got {n_clusters}")
  return int(n_clusters)


def as_array(x, name: str = "x") -> np.ndarray:
  """``x`` (an array, a nested list, a pandas DataFrame, a SciPy sparse matrix or an
  object array of numbers) as a real NumPy array, or a clear error.

  Raises:
    ValueError: ragged nested lists.
    TypeError: complex, text or other non-numeric values.
  """
  if scipy.sparse.issparse(x):
    return _densify(x, name)
  try:
    arr = np.asarray(x)
  except ValueError as e:  # ragged lists: "inhomogeneous shape"
    raise ValueError(f"{name} is not a rectangular array ({e}); give every row the same "
                     "number of values") from None
  if arr.dtype == object:
    text = next((v for v in arr.flat if isinstance(v, (str, bytes))), None)
    if text is not None:  # astype would parse "1.5" silently
      raise TypeError(f"{name} must hold numbers, got an object array holding {text!r}")
    try:
      arr = arr.astype(np.float64)
    except (TypeError, ValueError, OverflowError):
      raise TypeError(f"{name} must hold numbers (within float64's range), got an object "
                      f"array holding {_first_non_number(arr)!r}") from None
  if np.issubdtype(arr.dtype, np.complexfloating):
    raise TypeError(f"{name} holds complex numbers (dtype {arr.dtype}); jdec clusters real "
                    f"data: pass {name}.real, np.abs({name}), or the real and imaginary parts "
                    "side by side as features")
  if arr.dtype.kind not in "biuf":  # timedelta64 counts as a number to NumPy, not here
    raise TypeError(f"{name} must be a numeric array, got dtype {arr.dtype}")
  return arr


def _first_non_number(arr: np.ndarray):
  for value in arr.flat:
    try:
      float(value)
    except (TypeError, ValueError, OverflowError):
      return value
  return arr.flat[0]


def _densify(x, name: str) -> np.ndarray:
  """A SciPy sparse matrix as dense float32, written straight into the result (the
  only dense copy; the stored values are cast first)."""
  if np.issubdtype(x.dtype, np.complexfloating):
    raise TypeError(f"{name} holds complex numbers (dtype {x.dtype}); jdec clusters real "
                    f"data: pass {name}.real, abs({name}), or the real and imaginary parts "
                    "side by side as features")
  if x.ndim != 2:
    raise ValueError(f"{name} must be 2-D [n_samples, n_features], got shape {x.shape}")
  x = x.tocsr()
  values = np.asarray(x.data)
  if values.size and np.issubdtype(values.dtype, np.floating) and np.isfinite(values).all() \
      and np.abs(values).max() > np.finfo(np.float32).max:
    raise ValueError(f"{name} holds values beyond float32's range (+-3.4e38); jdec "
                     f"computes in float32: rescale {name} first")
  out = np.empty(x.shape, np.float32)
  with np.errstate(over="ignore"):
    x.astype(np.float32).toarray(out=out)
  return out


def check_data(x, *, n_clusters: int | None = None, name: str = "x") -> np.ndarray:
  """Checks a data matrix and returns it as float32 ``[n, d]``.

  ``x`` may be anything ``as_array`` takes (SciPy sparse matrices are
  densified).

  Raises:
    ValueError: ``x`` is not 2-D, is empty, holds NaN or infinite values (or
      values beyond float32's range), or has fewer rows than ``n_clusters``.
    TypeError: ``x`` is not real and numeric.
  """
  arr = as_array(x, name)
  if arr.ndim != 2:
    hint = (
        f"; flatten it first, e.g. {name}.reshape(len({name}), -1), or pass "
        "images as [n, height, width, channels]"
        if arr.ndim > 2
        else "; pass one row per example, e.g. "
        f"{name}.reshape(-1, 1) for a single feature"
    )
    raise ValueError(
        f"{name} must be 2-D [n_samples, n_features], got shape {arr.shape}{hint}"
    )
  if arr.shape[0] == 0 or arr.shape[1] == 0:
    raise ValueError(f"{name} is empty: shape {arr.shape}")
  wide = arr
  with np.errstate(over="ignore"):
    arr = arr.astype(np.float32, copy=False)
  finite = np.isfinite(arr)
  if not finite.all():
    bad_rows = np.flatnonzero(~finite.all(axis=1))
    if wide is not arr and np.issubdtype(wide.dtype, np.floating):
      overflow = np.isfinite(wide) & ~finite
      if overflow.any():
        first = int(np.flatnonzero(overflow.any(axis=1))[0])
        raise ValueError(
            f"{name} holds {int(overflow.sum())} value(s) beyond float32's range (+-3.4e38) "
            f"(first: row {first}); jdec computes in float32: rescale {name} first")
    n_nan = int(np.isnan(arr).sum())
    n_inf = int(np.isinf(arr).sum())
    raise ValueError(
        f"{name} holds {n_nan} NaN and {n_inf} infinite value(s) in "
        f"{len(bad_rows)} row(s) (first: row {bad_rows[0]}); remove or impute "
        "them before clustering"
    )
  if n_clusters is not None:
    n_clusters = check_n_clusters(n_clusters)
    if arr.shape[0] < n_clusters:
      raise ValueError(
          f"{name} has {arr.shape[0]} sample(s), fewer than n_clusters="
          f"{n_clusters}; pass more data or ask for fewer clusters"
      )
  return arr


def check_labels(y, n: int, name: str = "y") -> np.ndarray:
  """Checks ground-truth labels for ``n`` samples and returns them as int64 ``[n]``."""
  arr = np.asarray(y)
  if arr.ndim != 1:
    raise ValueError(f"{name} must be 1-D [n_samples], got shape {arr.shape}")
  if arr.shape[0] != n:
    raise ValueError(f"{name} has {arr.shape[0]} labels but the data has {n} rows")
  if not np.issubdtype(arr.dtype, np.integer):
    if np.issubdtype(arr.dtype, np.floating) and np.all(np.mod(arr, 1) == 0):
      arr = arr.astype(np.int64)
    else:
      raise TypeError(f"{name} must hold integer class labels, got dtype {arr.dtype}")
  return arr.astype(np.int64, copy=False)


def check_seeds(seeds) -> list[int]:
  """A non-empty list of distinct integer seeds, or a ValueError saying what is wrong."""
  try:
    seeds = [int(s) for s in seeds]
  except (TypeError, ValueError):
    raise ValueError(f"seeds must be a list of integers, got {seeds!r}") from None
  if not seeds:
    raise ValueError("seeds is empty; give at least one seed")
  if len(set(seeds)) != len(seeds):
    raise ValueError(f"seeds must be distinct, got {seeds}")
  return seeds


def check_images(x, image_shape=None, name: str = "x"):
  """Images ``[n, h, w, c]`` (or ``[n, h, w]``) as rows ``[n, h*w*c]`` with their shape.

  Rows ``[n, d]`` pass through, with ``image_shape`` checked against ``d`` when
  given. Other ranks pass through unchanged for ``check_data`` to refuse.

  Returns:
    ``(x, image_shape)``: ``x`` as an array (rows when it held images) and
    ``(h, w, c)``, or None for rows without an image shape.

  Raises:
    ValueError: ``image_shape`` is not three positive integers, or does not
      match the images or the width of the rows.
  """
  arr = as_array(x, name)
  if image_shape is not None:
    try:
      image_shape = tuple(int(v) for v in image_shape)
    except (TypeError, ValueError):
      raise ValueError(
          f"image_shape must be (height, width, channels), got {image_shape!r}") from None
    if len(image_shape) != 3 or min(image_shape) < 1:
      raise ValueError(f"image_shape must be three positive integers (height, width, "
                       f"channels), got {image_shape}")
  if arr.ndim in (3, 4):
    shape = tuple(arr.shape[1:]) + ((1,) if arr.ndim == 3 else ())
    if image_shape is not None and shape != image_shape:
      raise ValueError(f"{name} holds images of shape {shape}, but image_shape={image_shape}")
    return arr.reshape(arr.shape[0], -1), shape
  if arr.ndim == 2 and image_shape is not None and int(np.prod(image_shape)) != arr.shape[1]:
    raise ValueError(f"image_shape {image_shape} has {int(np.prod(image_shape))} values per "
                     f"image, but the rows of {name} have {arr.shape[1]}")
  return arr, image_shape
