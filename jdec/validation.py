"""Input checks that turn bad data into errors a user can act on."""

import numbers

import numpy as np


def check_n_clusters(n_clusters) -> int:
  """Returns ``n_clusters`` as an int, or raises if it is not an integer >= 2."""
  if isinstance(n_clusters, bool) or not isinstance(n_clusters, numbers.Integral):
    raise TypeError(f"n_clusters must be an integer >= 2, got {n_clusters!r}")
  if n_clusters < 2:
    raise ValueError(
        f"n_clusters must be >= 2, got {n_clusters}: one group is no clustering"
    )
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
        f"; flatten it first, e.g. {name}.reshape(len({name}), -1)"
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
