"""REUTERS-10K as DEC builds it (Xie et al. 2016, piiswrong/dec ``make_reuters_data``
and ``make_reuters_idf_data``), from scikit-learn's copy of RCV1.

``jdec.data.load_reuters10k`` (and ``jdec.data.load("reuters10k")``) call
``load_reuters10k`` here; the finished arrays are cached in scikit-learn's
data folder.
"""

import os
import pathlib

import numpy as np
from absl import logging as absl_logging

from jdec import data
from jdec.data import DataError

REUTERS_CATEGORIES = ("CCAT", "GCAT", "MCAT", "ECAT")  # label 0..3, DEC's cat_to_cid
# LYRL2004's training split is documents 2286..26150; DEC reads the test token files
# first and the training file last, fetch_rcv1 puts the training rows first.
RCV1_LAST_TRAIN_ID = 26150
RCV1_HOST = "ndownloader.figshare.com"  # where fetch_rcv1 downloads from
REUTERS_CACHE_VERSION = 1  # bump when the construction changes, so old caches are not read


def _sklearn_data_home(data_home) -> pathlib.Path:
  """scikit-learn's data folder: ``data_home``, else ``$SCIKIT_LEARN_DATA``, else
  ``~/scikit_learn_data`` (as ``sklearn.datasets.get_data_home``, without creating it)."""
  home = data_home or os.environ.get("SCIKIT_LEARN_DATA") or "~/scikit_learn_data"
  return pathlib.Path(home).expanduser()


def reuters10k_cache_path(data_home=None, *, n_docs: int = 10_000, n_terms: int = 2_000,
                          seed: int = 1234) -> pathlib.Path:
  """Where ``load_reuters10k`` keeps its finished arrays for these parameters."""
  return (_sklearn_data_home(data_home) / "jdec" /
          f"reuters10k_v{REUTERS_CACHE_VERSION}_docs{n_docs}_terms{n_terms}_seed{seed}.npz")


def _positive_int(value, name: str) -> int:
  if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
    raise ValueError(f"{name} must be a positive integer, got {value!r}")
  return int(value)


def _reuters_offline_message(home: pathlib.Path, cache: pathlib.Path) -> str:
  return (
      f"REUTERS-10K is not available: there are no finished arrays at {cache} and no "
      f"copy of RCV1 in {home / 'RCV1'} (scikit-learn's fetch_rcv1 cache). On a machine "
      "with internet, run `python -c \"import jdec.data; jdec.data.load_reuters10k('DIR')\"` "
      "(it downloads RCV1, several hundred MB, once) and copy DIR/jdec (or DIR/RCV1) into "
      f"{home}, or pass data_home=DIR (--config.data_dir=DIR for the experiments)."
  )


def _fetch_rcv1(fetch, home: pathlib.Path, download: bool, cache: pathlib.Path):
  """RCV1 from ``fetch``: its local copy first, then (``download``) the network."""
  default = fetch is None
  if default:
    from sklearn.datasets import fetch_rcv1 as fetch  # pylint: disable=g-import-not-at-top
  try:
    return fetch(data_home=str(home), download_if_missing=False)
  except OSError:  # no local copy
    if not download:
      raise DataError(_reuters_offline_message(home, cache) + " (download=False)") from None
  if default and not data._online(RCV1_HOST):  # pylint: disable=protected-access
    raise DataError(_reuters_offline_message(home, cache))
  try:
    return fetch(data_home=str(home), download_if_missing=True)
  except Exception as e:  # network or server trouble, whatever the fetcher raises
    raise DataError(f"fetching RCV1 failed ({e}). "
                    + _reuters_offline_message(home, cache)) from e


def _rcv1_parts(bunch):
  """``(x csr [n, v], top [n, 4] 0/1 for REUTERS_CATEGORIES, sample_id [n] or None)``."""
  import scipy.sparse as sp  # pylint: disable=g-import-not-at-top

  fields = {}
  for name in ("data", "target", "target_names"):
    fields[name] = getattr(bunch, name, None)
    if fields[name] is None:
      raise DataError(f"the RCV1 bunch has no {name!r}; fetch must return what "
                      "sklearn.datasets.fetch_rcv1 returns")
  names = [str(n) for n in np.asarray(fields["target_names"]).ravel()]
  missing = [c for c in REUTERS_CATEGORIES if c not in names]
  if missing:
    raise DataError(f"the RCV1 categories {missing} are not among target_names "
                    f"({len(names)} names); is this RCV1?")
  x = sp.csr_array(fields["data"])
  if not x.has_canonical_format:
    x = x.copy()
    x.sum_duplicates()
  target = fields["target"]
  top = target[:, [names.index(c) for c in REUTERS_CATEGORIES]]
  top = np.asarray(top.toarray() if sp.issparse(top) else top) != 0
  sample_id = getattr(bunch, "sample_id", None)
  if x.shape[0] != top.shape[0] or (sample_id is not None and len(sample_id) != x.shape[0]):
    raise DataError(f"the RCV1 bunch does not match: data has {x.shape[0]} rows, target "
                    f"{top.shape[0]}" + ("" if sample_id is None else
                                         f", sample_id {len(sample_id)}"))
  return x, top, (None if sample_id is None else np.asarray(sample_id))


def _build_reuters10k(bunch, n_docs: int, n_terms: int, seed: int):
  """REUTERS-10K from an RCV1 bunch; see ``load_reuters10k``."""
  x, top, sample_id = _rcv1_parts(bunch)
  # DEC's document order: the LYRL2004 test token files, then the training file.
  order = np.arange(x.shape[0])
  if sample_id is not None:
    order = np.argsort(sample_id <= RCV1_LAST_TRAIN_ID, kind="stable")
  kept = order[top[order].sum(axis=1) == 1]  # exactly one of the four: [n_kept]
  if len(kept) < n_docs:
    raise ValueError(
        f"only {len(kept)} documents have exactly one of {REUTERS_CATEGORIES} as their "
        f"top-level category; ask for n_docs <= {len(kept)} (got {n_docs})")
  labels = top[kept].argmax(axis=1).astype(np.int64)  # [n_kept]
  # "Most frequent" terms: document frequency over the kept documents (fetch_rcv1 has
  # no raw counts); ties go to the lower column.
  is_kept = np.zeros(x.shape[0], bool)
  is_kept[kept] = True
  stored = np.repeat(is_kept, np.diff(x.indptr)) & (x.data != 0)
  df = np.bincount(x.indices[stored], minlength=x.shape[1])  # [v]
  vocabulary = int(np.count_nonzero(df))
  if n_terms > vocabulary:
    raise ValueError(
        f"n_terms={n_terms} is larger than the vocabulary: only {vocabulary} of the "
        f"{x.shape[1]} terms occur in the {len(kept)} kept documents")
  terms = np.sort(np.argsort(-df, kind="stable")[:n_terms])  # [n_terms], column order
  # DEC: np.random.seed(1234), a permutation of all kept documents, the first n_docs.
  chosen = np.random.RandomState(seed).permutation(len(kept))[:n_docs]
  rows = x[kept[chosen]][:, terms].toarray().astype(np.float64)  # [n_docs, n_terms]
  if not np.isfinite(rows).all():
    raise DataError("the RCV1 data holds NaN or infinite values; fetch it again")
  norms = np.linalg.norm(rows, axis=1, keepdims=True)
  rows = np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 0)
  return (rows * np.sqrt(n_terms)).astype(np.float32), labels[chosen]


def _read_reuters_cache(path: pathlib.Path, n_docs: int, n_terms: int):
  try:
    with np.load(path, allow_pickle=False) as f:
      x, y = f["x"], f["y"]
  except (*data.READ_ERRORS, KeyError) as e:  # a cut or damaged zip: BadZipFile, zlib.error
    raise DataError(f"cannot read the cached REUTERS-10K {path}: {e}; delete it and "
                    "load again") from e
  if x.shape != (n_docs, n_terms) or y.shape != (n_docs,):
    raise DataError(f"the cached REUTERS-10K {path} holds x {x.shape} and y {y.shape}, "
                    f"expected ({n_docs}, {n_terms}) and ({n_docs},); delete it and load again")
  return x.astype(np.float32), y.astype(np.int64)


def _write_reuters_cache(path: pathlib.Path, x: np.ndarray, y: np.ndarray) -> None:
  """Writes to a temporary file first, so an interrupted write leaves no half cache."""
  path.parent.mkdir(parents=True, exist_ok=True)
  partial = path.with_name(f".{path.name}.partial-{os.getpid()}")  # writers never share it
  with open(partial, "wb") as f:
    np.savez_compressed(f, x=x, y=y)
  os.replace(partial, path)


def load_reuters10k(
    data_home=None,
    *,
    n_docs: int = 10_000,
    n_terms: int = 2_000,
    seed: int = 1234,
    download: bool = True,
    fetch=None,
) -> tuple[np.ndarray, np.ndarray]:
  """REUTERS-10K as DEC builds it: ``x float32 [n_docs, n_terms]``, ``y int64 [n_docs]``.

  From RCV1 (scikit-learn's ``fetch_rcv1``): the documents whose only top-level
  category among CCAT, GCAT, MCAT and ECAT is one of them (labels 0, 1, 2, 3 in that
  order, as DEC's ``cat_to_cid``; a document with two or more is dropped), the
  ``n_terms`` most frequent terms, tf-idf rows of L2 norm ``sqrt(n_terms)`` (DEC scales
  the unit rows by ``sqrt(2000)``; a row with none of the terms stays zero), and
  ``n_docs`` documents drawn as DEC draws them: the kept documents in the order of the
  RCV1 token files DEC reads (the four LYRL2004 test files, then the training file),
  permuted by ``np.random.RandomState(seed).permutation`` (DEC seeds NumPy's global
  generator with 1234, the same stream) and cut to the first ``n_docs``. Rows come in
  that drawn order. The first call needs the network (RCV1 is several hundred MB) unless
  ``data_home`` holds fetch_rcv1's copy; the finished arrays are cached at
  ``reuters10k_cache_path(...)`` and later calls read only that.

  An approximation of DEC's features; the deviations:

  * tf-idf: DEC counts the raw tokens of the RCV1 token files with
    ``CountVectorizer(max_features=2000)`` and weights them with
    ``TfidfTransformer(norm='l2', sublinear_tf=True)`` (tf ``1 + ln(count)``, smoothed
    idf over the kept documents). fetch_rcv1 ships the LYRL2004 vectors instead: already
    ``(1 + ln tf) * idf`` over 47,236 stemmed terms, idf from the 23,149 training
    documents, cosine-normalised. Here those weights are kept on the chosen columns and
    each row is re-normalised, so the tf part matches DEC and the idf does not.
  * "Most frequent": DEC keeps the 2,000 terms with the largest total count over the
    kept documents; fetch_rcv1 has no counts, so here it is the largest document
    frequency over the kept documents, ties to the lower column.
  * Vocabulary: fetch_rcv1's terms are LYRL2004's stems seen in its training split;
    DEC re-tokenises the token files (lower case, tokens of two or more characters)
    over all kept documents. Columns are in fetch_rcv1's order, DEC's alphabetical.
  * Order: DEC's document order needs ``sample_id`` (fetch_rcv1 gives it); a ``fetch``
    whose bunch has none is taken in its own order. DEC-keras's ``make_reuters_data``
    differs from DEC here: it keeps the first 10,000 documents in file order and only
    then shuffles them with seed 1234; this follows the original DEC code.

  Args:
    data_home: scikit-learn's data folder (fetch_rcv1 caches RCV1 under
      ``data_home/RCV1``, jdec its arrays under ``data_home/jdec``); defaults to
      ``$SCIKIT_LEARN_DATA`` or ``~/scikit_learn_data``.
    n_docs: how many documents to draw (DEC: 10,000).
    n_terms: how many terms to keep (DEC: 2,000).
    seed: seed of the legacy NumPy permutation that draws the documents (DEC: 1234).
    download: if there is neither a cache nor a local RCV1, download RCV1.
    fetch: called as ``fetch(data_home=str, download_if_missing=bool)``, returning
      what ``sklearn.datasets.fetch_rcv1`` returns (``data`` CSR ``[n, v]``, ``target``
      0/1 ``[n, c]``, ``target_names [c]``, optionally ``sample_id [n]``); raises
      ``OSError`` when it has no local copy and may not download. Defaults to
      fetch_rcv1. The cache does not record which fetch built it.

  Raises:
    ValueError: a bad argument, fewer than ``n_docs`` eligible documents, or
      ``n_terms`` larger than the vocabulary of the kept documents.
    DataError: offline with no cache and no local RCV1 (the message says where to
      put the data), a failed download, or an unreadable cache or RCV1 bunch.
  """
  n_docs = _positive_int(n_docs, "n_docs")
  n_terms = _positive_int(n_terms, "n_terms")
  if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or not (
      0 <= seed < 2**32):
    raise ValueError(f"seed must be an integer in [0, 2**32), got {seed!r}")
  if fetch is not None and not callable(fetch):
    raise TypeError(f"fetch must be callable like sklearn.datasets.fetch_rcv1, got {fetch!r}")
  home = _sklearn_data_home(data_home)
  cache = reuters10k_cache_path(home, n_docs=n_docs, n_terms=n_terms, seed=int(seed))
  if cache.is_file():
    return _read_reuters_cache(cache, n_docs, n_terms)
  bunch = _fetch_rcv1(fetch, home, download, cache)
  absl_logging.info("building REUTERS-10K (%d documents, %d terms, seed %d) into %s",
                    n_docs, n_terms, seed, cache)
  x, y = _build_reuters10k(bunch, n_docs, n_terms, int(seed))
  _write_reuters_cache(cache, x, y)
  return x, y
