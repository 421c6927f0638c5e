"""Datasets as NumPy arrays: ``x float32 [n, d]`` and ``y int64 [n]``.

MNIST comes from a local directory holding the four standard IDX files
(``data_dir`` or the ``JDEC_DATA_DIR`` environment variable), else from a
tensorflow-datasets data directory where it is already prepared, else it is
downloaded with tensorflow-datasets' download manager (no TensorFlow needed).
REUTERS-10K is built from scikit-learn's ``fetch_rcv1`` as DEC builds it.
"""

import gzip
import hashlib
import os
import pathlib
import socket
import struct
import zipfile
import zlib

import numpy as np
from absl import logging as absl_logging

from jdec import validation

ENV_DATA_DIR = "JDEC_DATA_DIR"
MNIST_URL = "https://storage.googleapis.com/cvdf-datasets/mnist/"
MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
MNIST_SHA256 = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
SPLITS = ("all", "train", "test")
# Height, width and channels of each image dataset's rows (``images=True``).
IMAGE_SHAPES = {"mnist": (28, 28, 1), "usps": (16, 16, 1), "digits": (8, 8, 1)}


class DataError(RuntimeError):
  """A dataset is missing, unreachable or corrupt; the message says what to do."""


def read_idx(path) -> np.ndarray:
  """Reads an IDX file (gzipped or not) into a NumPy array.

  Raises:
    DataError: naming the file, if it is not a readable, complete IDX file.
  """
  path = pathlib.Path(path)
  opener = gzip.open if path.suffix == ".gz" else open
  try:
    with opener(path, "rb") as f:
      raw = f.read()
  except (OSError, EOFError, gzip.BadGzipFile) as e:
    raise DataError(f"cannot read {path}: {e}; the file is corrupt or truncated, "
                    "download it again") from e
  if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
    raise DataError(f"{path} is not an unsigned-byte IDX file (bad magic number)")
  ndim = raw[3]
  header = 4 + 4 * ndim
  if len(raw) < header:
    raise DataError(f"{path} is truncated: its header is incomplete")
  shape = struct.unpack(f">{ndim}I", raw[4:header])
  expected = int(np.prod(shape))
  if len(raw) - header != expected:
    raise DataError(
        f"{path} is truncated or corrupt: the header promises shape {shape} "
        f"({expected} bytes of data) but the file holds {len(raw) - header}"
    )
  return np.frombuffer(raw, np.uint8, offset=header).reshape(shape)


def _mnist_dir(data_dir) -> pathlib.Path | None:
  """The folder holding the MNIST files: ``data_dir`` itself or ``data_dir/mnist``."""
  base = pathlib.Path(data_dir).expanduser()
  for folder in (base, base / "mnist"):
    if all(_find(folder, name) for name in MNIST_FILES.values()):
      return folder
  return None


def _find(folder: pathlib.Path, name: str) -> pathlib.Path | None:
  """``name`` in ``folder``, gzipped or not."""
  for candidate in (folder / name, folder / name.removesuffix(".gz")):
    if candidate.is_file():
      return candidate
  return None


def _load_mnist_files(folder: pathlib.Path, split: str):
  parts = []
  for part in ("train", "test") if split == "all" else (split,):
    images = read_idx(_find(folder, MNIST_FILES[f"{part}_images"]))
    labels = read_idx(_find(folder, MNIST_FILES[f"{part}_labels"]))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
      raise DataError(
          f"MNIST {part} files in {folder} do not match: images {images.shape}, "
          f"labels {labels.shape}"
      )
    parts.append((images, labels))
  x = np.concatenate([p[0] for p in parts]).reshape(-1, 28 * 28)
  y = np.concatenate([p[1] for p in parts]).astype(np.int64)
  return x.astype(np.float32) / 255.0, y


def _load_mnist_tfds(split: str, tfds_data_dir):
  """MNIST from a prepared tensorflow-datasets directory, or None if absent."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  tfds_split = "train+test" if split == "all" else split
  verbosity = absl_logging.get_verbosity()
  absl_logging.set_verbosity(absl_logging.ERROR)  # "no dataset_info.json" is expected here
  try:
    source = tfds.data_source("mnist", split=tfds_split, data_dir=tfds_data_dir,
                              download=False)
  except Exception:  # not prepared there: fall through to the next source
    return None
  finally:
    absl_logging.set_verbosity(verbosity)
  records = [source[i] for i in range(len(source))]
  x = np.stack([np.asarray(r["image"]).reshape(-1) for r in records])
  y = np.asarray([int(r["label"]) for r in records], np.int64)
  return x.astype(np.float32) / 255.0, y


def _online(host: str = "storage.googleapis.com", timeout: float = 5.0) -> bool:
  try:
    socket.create_connection((host, 443), timeout=timeout).close()
    return True
  except OSError:
    return False


def _download_mnist(cache_dir: pathlib.Path) -> pathlib.Path:
  """Downloads the four files with tfds' download manager and checks their SHA-256."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  manager = tfds.download.DownloadManager(download_dir=str(cache_dir))
  paths = manager.download({k: MNIST_URL + v for k, v in MNIST_FILES.items()})
  for key, name in MNIST_FILES.items():  # check all four before caching any
    src = pathlib.Path(paths[key])
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    if digest != MNIST_SHA256[name]:
      raise DataError(f"downloaded {name} has SHA-256 {digest}, expected "
                      f"{MNIST_SHA256[name]}; delete {src} and try again")
  folder = cache_dir / "mnist"
  folder.mkdir(parents=True, exist_ok=True)
  for key, name in MNIST_FILES.items():
    (folder / name).write_bytes(pathlib.Path(paths[key]).read_bytes())
  return folder


def _offline_message(split: str) -> str:
  return (
      "MNIST is not available: no local files were given, tensorflow-datasets "
      "has no prepared copy, and the download server cannot be reached. Put the "
      "four files " + ", ".join(MNIST_FILES.values()) + " in a folder and pass it "
      "as data_dir=... (--config.data_dir=... for the experiments) or set "
      f"{ENV_DATA_DIR}=/path/to/folder. (split={split!r})"
  )


def load_mnist(
    data_dir=None,
    *,
    split: str = "all",
    download: bool = True,
    tfds_data_dir=None,
    cache_dir=None,
    images: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
  """MNIST digits as ``x float32 [n, 784]`` in ``[0, 1]`` and ``y int64 [n]``.

  Args:
    data_dir: folder holding the four IDX files (``.gz`` or not), directly or in
      a ``mnist/`` subfolder. Defaults to ``$JDEC_DATA_DIR``.
    split: ``"all"`` (the 70,000 digits, train then test, as DEC uses),
      ``"train"`` (60,000) or ``"test"`` (10,000).
    download: if no local or prepared copy exists, download the files.
    tfds_data_dir: tensorflow-datasets data directory to look in.
    cache_dir: where downloads go; ``~/.cache/jdec`` by default.
    images: return ``x`` as images ``[n, 28, 28, 1]`` instead of rows.

  Raises:
    DataError: the files are missing, corrupt, or cannot be downloaded.
  """
  if split not in SPLITS:
    raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
  x, y = _load_mnist(data_dir, split, download, tfds_data_dir, cache_dir)
  return (as_images(x, IMAGE_SHAPES["mnist"]) if images else x), y


def _load_mnist(data_dir, split, download, tfds_data_dir, cache_dir):
  data_dir = data_dir or os.environ.get(ENV_DATA_DIR)
  if data_dir:
    folder = _mnist_dir(data_dir)
    if folder is None:
      raise DataError(
          f"no MNIST files in {data_dir} or {pathlib.Path(data_dir) / 'mnist'}: "
          "expected " + ", ".join(MNIST_FILES.values())
      )
    return _load_mnist_files(folder, split)
  cache = pathlib.Path(cache_dir or pathlib.Path.home() / ".cache" / "jdec")
  if _mnist_dir(cache):
    return _load_mnist_files(_mnist_dir(cache), split)
  loaded = _load_mnist_tfds(split, tfds_data_dir)
  if loaded is not None:
    return loaded
  if download and _online():
    try:
      folder = _download_mnist(cache)
    except DataError:
      raise
    except Exception as e:  # network or server trouble, whatever tfds raises
      raise DataError(f"downloading MNIST failed ({e}). " + _offline_message(split)) from e
    return _load_mnist_files(folder, split)
  raise DataError(_offline_message(split))


def load_usps(path=None, *, images: bool = False) -> tuple[np.ndarray, np.ndarray]:
  """USPS digits (9,298 of 16x16) as ``x float32 [n, 256]`` in ``[0, 1]``, ``y [n]``.

  Args:
    path: an ``.npz`` with ``x`` in ``[-1, 1]`` (as in the ElemStatLearn ZIP-code
      files) and ``y``; or a folder holding ``usps.npz`` or ``usps/usps.npz``.
      Defaults to ``$JDEC_DATA_DIR``. ``x`` is mapped to ``(x + 1) / 2`` as in
      DEC-keras.
    images: return ``x`` as images ``[n, 16, 16, 1]`` instead of rows.
  """
  path = path or os.environ.get(ENV_DATA_DIR)
  if not path:
    raise DataError(f"pass the path of usps.npz, or set {ENV_DATA_DIR} to its folder")
  path = pathlib.Path(path).expanduser()
  if path.is_dir():
    found = [p for p in (path / "usps.npz", path / "usps" / "usps.npz") if p.is_file()]
    if not found:
      raise DataError(f"no usps.npz in {path} or {path / 'usps'}")
    path = found[0]
  try:
    with np.load(path) as f:
      x, y = f["x"], f["y"]
  except (OSError, ValueError, KeyError) as e:
    raise DataError(f"cannot read {path}: {e}; expected an .npz with arrays x and y") from e
  x, y = from_arrays(x, y)
  x = (x + 1.0) / 2.0
  return (as_images(x, IMAGE_SHAPES["usps"]) if images else x), y


def load_digits(*, images: bool = False) -> tuple[np.ndarray, np.ndarray]:
  """scikit-learn's bundled 8x8 digits (1,797), ``x`` in ``[0, 1]``; works offline.

  ``images=True`` returns ``x`` as ``[n, 8, 8, 1]`` instead of ``[n, 64]``.
  """
  import sklearn.datasets  # pylint: disable=g-import-not-at-top

  x, y = sklearn.datasets.load_digits(return_X_y=True)
  x = (x / 16.0).astype(np.float32)
  return (as_images(x, IMAGE_SHAPES["digits"]) if images else x), y.astype(np.int64)


def as_images(x: np.ndarray, image_shape) -> np.ndarray:
  """Rows ``[n, h*w*c]`` (row-major pixels, channels last) as images ``[n, h, w, c]``."""
  return x.reshape(x.shape[0], *image_shape)


def from_arrays(x, y=None) -> tuple[np.ndarray, np.ndarray | None]:
  """Your own data: ``x [n, ...]`` flattened to float32 ``[n, d]``, checked.

  Raises:
    ValueError / TypeError: NaN or infinite values, non-numeric data, or
      labels that do not match ``x``.
  """
  x = np.asarray(x)
  if x.ndim > 2:
    x = x.reshape(len(x), -1)
  x = validation.check_data(x)
  if y is not None:
    y = validation.check_labels(y, x.shape[0])
  return x, y


# REUTERS-10K as DEC builds it (Xie et al. 2016, piiswrong/dec make_reuters_data and
# make_reuters_idf_data), from scikit-learn's copy of RCV1.
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
  if default and not _online(RCV1_HOST):
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
  except (OSError, ValueError, KeyError, EOFError) as e:
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


LOADERS = {"mnist": load_mnist, "usps": load_usps, "digits": load_digits,
           "reuters10k": load_reuters10k}


def load(name: str, data_dir=None, *, images: bool = False) -> tuple[np.ndarray, np.ndarray]:
  """Loads a dataset by name: ``"mnist"``, ``"usps"``, ``"digits"`` (as images
  ``[n, h, w, c]`` with ``images=True``, shapes in ``IMAGE_SHAPES``) or
  ``"reuters10k"`` (``data_dir`` is its ``data_home``)."""
  if name not in LOADERS:
    raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(LOADERS)}")
  if images and name not in IMAGE_SHAPES:
    raise ValueError(f"{name!r} holds no images; images=True is for {sorted(IMAGE_SHAPES)}")
  if name == "reuters10k":
    return LOADERS[name](data_dir)
  if name == "digits":
    return LOADERS[name](images=images)
  return LOADERS[name](data_dir, images=images)


FILE_TYPES = (".npy", ".npz", ".csv")
# What reading a damaged .npy/.npz can raise besides OSError and ValueError: an
# archive that is cut off or fails its CRC, a cut compressed stream, a header
# that announces more than memory holds.
READ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, MemoryError)


def read_error(path, e: BaseException) -> str:
  """The message for ``e``, one of ``READ_ERRORS`` raised reading ``path``."""
  if isinstance(e, UnicodeDecodeError):
    return f"cannot read {path}: it is not UTF-8 text ({e.reason} at byte {e.start})"
  if isinstance(e, MemoryError):
    return f"cannot read {path}: {e}; the file is damaged, or too large to load whole"
  if isinstance(e, (OSError, ValueError)):
    return f"cannot read {path}: {e}"
  return f"cannot read {path}: the file is damaged or truncated ({type(e).__name__}: {e})"


def check_array_file(path) -> None:
  """Refuses a ``.npy`` or ``.npz`` file that is not one, or is cut short, naming it.

  ``np.load`` takes any file that is neither for a pickle (and says to load it
  unsafely), and allocates whatever a ``.npy`` header announces before finding
  the data missing: this check comes first.

  Raises:
    DataError: the file is empty, not of the type its name says, truncated, or
      holds Python objects (which jdec never unpickles).
  """
  path = pathlib.Path(path)
  if path.stat().st_size == 0:
    raise DataError(f"{path} is empty")
  if path.suffix.lower() == ".npz":
    if not zipfile.is_zipfile(path):
      raise DataError(f"{path} is not an .npz file (a zip archive of arrays): it is "
                      "damaged, truncated or of another type; write it again with np.savez")
    return
  with open(path, "rb") as f:
    if f.read(6) != b"\x93NUMPY":
      raise DataError(f"{path} is not a .npy file (it does not start with NumPy's magic "
                      "string): it is damaged or of another type; write it with np.save")
    f.seek(0)
    try:
      version = np.lib.format.read_magic(f)
      read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                     (2, 0): np.lib.format.read_array_header_2_0}.get(version)
      if read_header is None:  # another version: np.load checks it
        return
      shape, _, dtype = read_header(f)
    except (ValueError, EOFError) as e:
      raise DataError(f"{path} is damaged or truncated: its header cannot be read ({e})") \
          from None
    if dtype.hasobject:
      raise DataError(f"{path} holds Python objects (dtype {dtype}), which jdec does not "
                      "unpickle: save the rows as numbers, e.g. np.save(path, x.astype("
                      "np.float32))")
    announced = int(np.prod(shape, dtype=object)) * dtype.itemsize
    held = path.stat().st_size - f.tell()
  if held < announced:
    raise DataError(f"{path} is truncated: its header announces an array of shape "
                    f"{shape} ({announced} bytes of {dtype}), but it holds {held} bytes")


def npz_array(npz, name: str, path) -> np.ndarray:
  """The array ``name`` of an open ``.npz``, or a ``DataError`` if it is damaged."""
  x = npz[name]
  if not isinstance(x, np.ndarray):  # np.load hands a member without a .npy header as bytes
    raise DataError(f"{path}: its member {name!r} is not a .npy array: the archive is damaged")
  return x


def _labels(values, where: str) -> np.ndarray:
  """Class labels as int64: integers kept, other values (names) numbered in sorted order."""
  values = np.asarray(values)
  if values.dtype.kind in "iub":
    return values.astype(np.int64)
  if values.dtype.kind == "f":
    if np.isfinite(values).all() and np.all(np.mod(values, 1) == 0):
      return values.astype(np.int64)
    raise DataError(f"{where}: the labels must be whole numbers or names, got {values[:5]}")
  return np.unique(values.astype(str), return_inverse=True)[1].astype(np.int64)


def _read_csv(path: pathlib.Path, label_column):
  """``(x, y)`` of a numeric CSV, a first non-numeric line taken as a header."""
  import csv  # pylint: disable=import-outside-toplevel
  with open(path, newline="", encoding="utf-8") as f:
    lines = [(i, row) for i, row in enumerate(csv.reader(f), 1)
             if row and any(v.strip() for v in row)]
  if not lines:
    raise DataError(f"{path} holds no rows")
  first = [v.strip() for v in lines[0][1]]
  width = len(first)
  label = None
  by_index = label_column is not None and str(label_column).lstrip("-").isdigit()
  if by_index:
    label = int(label_column)
    if not -width <= label < width:
      raise DataError(f"{path} has {width} columns; label_column {label_column} is not "
                      f"among them (0..{width - 1})")
    label %= width
  # The first line is a header when it names the label column, or holds text in a
  # feature column. (A header of numbers only cannot be told from data.)
  text = [j for j, v in enumerate(first) if not _is_number(v)]
  named = label_column is not None and not by_index
  header = first if (named and str(label_column) in first) or any(
      j != label for j in text) else None
  if header is not None:
    lines = lines[1:]
  if named:
    if header is None or str(label_column) not in header:
      raise DataError(f"{path} has no column {str(label_column)!r}" + (
          f"; its columns are {header}" if header else
          ": it has no header line; give the label column's index instead"))
    label = header.index(str(label_column))
  rows, labels = [], []
  for i, row in lines:
    if len(row) != width:
      raise DataError(f"{path}, line {i}: {len(row)} values, but {width} columns")
    values = [v for j, v in enumerate(row) if j != label]
    try:
      rows.append([float(v) for v in values])
    except ValueError:
      bad = next(v for v in values if not _is_number(v))
      column = [j for j in range(width) if j != label][values.index(bad)]
      column_name = f" ({header[column]!r})" if header else ""
      raise DataError(
          f"{path}, line {i}, column {column}{column_name}: {bad!r} is not a number; the features "
          "must be numeric (name a label column with --config.label_column)") from None
    if label is not None:
      if not row[label].strip():
        raise DataError(f"{path}, line {i}: the label column is empty")
      labels.append(row[label].strip())
  if not rows:
    raise DataError(f"{path} holds a header but no rows: its only line, {header[:8]}, is "
                    "not all numbers")
  y = None
  if label is not None:
    try:
      y = _labels(np.asarray([float(v) for v in labels]), str(path))
    except ValueError:
      y = _labels(np.asarray(labels), str(path))
  return np.asarray(rows, np.float64), y


def _is_number(value: str) -> bool:
  try:
    float(value)
  except ValueError:
    return False
  return True


def load_file(path, *, label_column=None, image_shape=None):
  """Your own data from a file: ``(x float32 [n, d], y int64 [n] or None, image_shape)``.

  Args:
    path: ``.npy`` (rows ``[n, d]`` or images ``[n, h, w(, c)]``), ``.npz``
      (arrays ``x`` and, optionally, ``y``) or ``.csv`` (numbers; a first line
      that is not numeric is a header).
    label_column: for a CSV, the column holding the true classes (its header
      name or its index); it is kept out of ``x`` and used only for scoring.
      Labels may be integers or names.
    image_shape: ``(h, w, c)`` of rows that are images (checked against ``d``).

  Raises:
    DataError: the file is missing, unreadable, of another type, or its
      contents are not numeric rows (the message names the file and where).
    ValueError: NaN or infinite values, or an image shape that does not fit.
  """
  path = pathlib.Path(path).expanduser()
  if not path.is_file():
    raise DataError(f"no data file {path}")
  suffix = path.suffix.lower()
  if suffix not in FILE_TYPES:
    raise DataError(f"{path}: unknown data type {suffix!r}; give one of {list(FILE_TYPES)}")
  if label_column is not None and suffix != ".csv":
    raise DataError(f"label_column is for CSV files; a {suffix} file holds its labels "
                    "as the array y (.npz)")
  y = None
  try:
    if suffix == ".npy":
      check_array_file(path)
      x = np.load(path, allow_pickle=False)
    elif suffix == ".npz":
      check_array_file(path)
      with np.load(path, allow_pickle=False) as npz:
        if "x" not in npz.files:
          raise DataError(f"{path} holds the arrays {npz.files}; name the data 'x' "
                          "(and the optional labels 'y')")
        x = npz_array(npz, "x", path)
        y = _labels(npz_array(npz, "y", path), f"{path} (y)") if "y" in npz.files else None
    else:
      x, y = _read_csv(path, label_column)
  except DataError:
    raise
  except READ_ERRORS as e:
    raise DataError(read_error(path, e)) from None
  if not isinstance(x, np.ndarray) or x.dtype.kind not in "iufb":
    raise DataError(f"{path}: the data must be real numbers, got dtype "
                    f"{getattr(x, 'dtype', type(x).__name__)}")
  x, shape = validation.check_images(x, image_shape, name=str(path))
  x = validation.check_data(x, name=str(path))
  if y is not None:
    y = validation.check_labels(y, x.shape[0], name=f"the labels of {path}")
  return x, y, shape


def load_experiment(config) -> tuple[np.ndarray, np.ndarray | None, tuple | None]:
  """``(x, y, image_shape)`` an experiment's settings name (a ``ConfigDict`` or the
  ``experiment`` mapping of its ``config.json``): ``dataset`` with ``data_dir``, or
  ``dataset="custom"`` with ``data``, ``label_column`` and ``image_shape``; the first
  ``n_samples`` rows when that is set."""
  dataset = config.get("dataset")
  if dataset == "custom":
    if not config.get("data"):
      raise DataError("name your data file: --config.data=FILE (.npy, .npz or .csv)")
    x, y, shape = load_file(config["data"], label_column=config.get("label_column"),
                            image_shape=tuple(config.get("image_shape") or ()) or None)
  else:
    x, y = load(dataset, config.get("data_dir"))
    shape = IMAGE_SHAPES.get(dataset)
  n = config.get("n_samples")
  if n is not None:
    x, y = x[:n], (y[:n] if y is not None else None)
  return x, y, shape
