"""Datasets as NumPy arrays: ``x float32 [n, d]`` and ``y int64 [n]``.

MNIST comes from a local directory holding the four standard IDX files
(``data_dir`` or the ``JDEC_DATA_DIR`` environment variable), else from a
tensorflow-datasets data directory where it is already prepared, else it is
downloaded with tensorflow-datasets' download manager (no TensorFlow needed).
REUTERS-10K is built from scikit-learn's ``fetch_rcv1`` as DEC builds it (``jdec.reuters``).
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


def load_reuters10k(data_home=None, **kwargs) -> tuple[np.ndarray, np.ndarray]:
  """REUTERS-10K, ``x float32 [10000, 2000]`` and ``y [10000]``, built from
  scikit-learn's RCV1 as DEC builds it: see ``jdec.reuters.load_reuters10k``
  for the arguments and where it differs from DEC's own files."""
  from jdec import reuters  # pylint: disable=import-outside-toplevel (it imports this module)
  return reuters.load_reuters10k(data_home, **kwargs)


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
