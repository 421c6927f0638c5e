"""Input checks that turn bad data into errors a user can act on."""

import numbers

import numpy as np


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


def check_data(x, *, n_clusters: int | None = None, name: str = "x") -> np.ndarray:
  """Checks a data matrix and returns it as float32 ``[n, d]``.

  Raises:
    ValueError: ``x`` is not 2-D, is empty, holds NaN or infinite values, or
      has fewer rows than ``n_clusters``.
    TypeError: ``x`` is not numeric.
  """
  arr = np.asarray(x)
  if arr.dtype == object or not (
      np.issubdtype(arr.dtype, np.number) or arr.dtype == bool
  ):
    raise TypeError(f"{name} must be a numeric array, got dtype {arr.dtype}")
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
  arr = arr.astype(np.float32, copy=False)
  finite = np.isfinite(arr)
  if not finite.all():
    bad_rows = np.flatnonzero(~finite.all(axis=1))
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
  arr = np.asarray(x)
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
