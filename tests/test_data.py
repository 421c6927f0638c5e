"""Loaders on tiny IDX files written here, on broken files and on mocked tfds."""

import gzip
import struct
import time

import numpy as np
import pytest
import tensorflow_datasets as tfds

from jdec import data


def write_idx(path, array, compress=True):
  array = np.asarray(array, np.uint8)
  header = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
  raw = header + array.tobytes()
  (gzip.open if compress else open)(path, "wb").write(raw)
  return raw


def write_mnist(folder, n_train=6, n_test=4, seed=0):
  rng = np.random.default_rng(seed)
  folder.mkdir(parents=True, exist_ok=True)
  parts = {}
  for part, n in (("train", n_train), ("test", n_test)):
    images = rng.integers(0, 256, size=(n, 28, 28))
    labels = rng.integers(0, 10, size=n)
    write_idx(folder / data.MNIST_FILES[f"{part}_images"], images)
    write_idx(folder / data.MNIST_FILES[f"{part}_labels"], labels)
    parts[part] = (images, labels)
  return parts


def test_local_idx_files(tmp_path):
  parts = write_mnist(tmp_path / "mnist")
  x, y = data.load_mnist(tmp_path)  # finds the mnist/ subfolder
  assert x.shape == (10, 784) and x.dtype == np.float32 and y.dtype == np.int64
  np.testing.assert_allclose(x[:6], parts["train"][0].reshape(6, -1) / 255.0, rtol=1e-6)
  np.testing.assert_array_equal(y, np.concatenate([parts["train"][1], parts["test"][1]]))
  x_test, y_test = data.load_mnist(tmp_path / "mnist", split="test")
  assert x_test.shape == (4, 784)
  np.testing.assert_array_equal(y_test, parts["test"][1])


def test_uncompressed_files_and_env_var(tmp_path, monkeypatch):
  rng = np.random.default_rng(1)
  for part, n in (("train", 3), ("test", 2)):
    write_idx(tmp_path / data.MNIST_FILES[f"{part}_images"].removesuffix(".gz"),
              rng.integers(0, 256, (n, 28, 28)), compress=False)
    write_idx(tmp_path / data.MNIST_FILES[f"{part}_labels"].removesuffix(".gz"),
              rng.integers(0, 10, n), compress=False)
  monkeypatch.setenv(data.ENV_DATA_DIR, str(tmp_path))
  x, y = data.load_mnist()
  assert x.shape == (5, 784) and y.shape == (5,)


def test_truncated_file_is_named(tmp_path):
  write_mnist(tmp_path)
  path = tmp_path / data.MNIST_FILES["train_images"]
  raw = gzip.decompress(path.read_bytes())
  path.write_bytes(gzip.compress(raw[:-100]))
  with pytest.raises(data.DataError, match="train-images-idx3-ubyte.gz is truncated"):
    data.load_mnist(tmp_path)


def test_cut_gzip_stream_is_named(tmp_path):
  write_mnist(tmp_path)
  path = tmp_path / data.MNIST_FILES["test_labels"]
  path.write_bytes(path.read_bytes()[:20])
  with pytest.raises(data.DataError, match="t10k-labels-idx1-ubyte.gz"):
    data.load_mnist(tmp_path)


def test_not_idx_is_named(tmp_path):
  write_mnist(tmp_path)
  path = tmp_path / data.MNIST_FILES["train_labels"]
  path.write_bytes(gzip.compress(b"hello world, not idx"))
  with pytest.raises(data.DataError, match="train-labels-idx1-ubyte.gz is not .*IDX"):
    data.load_mnist(tmp_path)


def test_missing_local_dir(tmp_path):
  with pytest.raises(data.DataError, match="no MNIST files in"):
    data.load_mnist(tmp_path / "nowhere")


def test_offline_without_files_says_what_to_do_quickly(tmp_path, monkeypatch):
  monkeypatch.delenv(data.ENV_DATA_DIR, raising=False)
  monkeypatch.setattr(data, "_online", lambda *a, **k: False)
  start = time.perf_counter()
  with pytest.raises(data.DataError, match="JDEC_DATA_DIR") as info:
    data.load_mnist(cache_dir=tmp_path / "cache", tfds_data_dir=tmp_path / "tfds")
  assert time.perf_counter() - start < 30
  assert "train-images-idx3-ubyte.gz" in str(info.value)


def test_failed_download_says_what_to_do(tmp_path, monkeypatch):
  monkeypatch.delenv(data.ENV_DATA_DIR, raising=False)
  monkeypatch.setattr(data, "_online", lambda *a, **k: True)

  def broken_download(self, urls):
    raise ConnectionError("connection reset by peer")

  monkeypatch.setattr(tfds.download.DownloadManager, "download", broken_download)
  with pytest.raises(data.DataError, match="connection reset.*JDEC_DATA_DIR"):
    data.load_mnist(cache_dir=tmp_path / "cache", tfds_data_dir=tmp_path / "tfds")


def test_download_is_checked_and_cached(tmp_path, monkeypatch):
  """A download (faked here) passes the SHA-256 check and lands in the cache."""
  monkeypatch.delenv(data.ENV_DATA_DIR, raising=False)
  monkeypatch.setattr(data, "_online", lambda *a, **k: True)
  source = tmp_path / "server"
  write_mnist(source)
  hashes = {name: __import__("hashlib").sha256((source / name).read_bytes()).hexdigest()
            for name in data.MNIST_FILES.values()}
  monkeypatch.setattr(data, "MNIST_SHA256", hashes)
  monkeypatch.setattr(tfds.download.DownloadManager, "download",
                      lambda self, urls: {k: str(source / u.rsplit("/", 1)[1]) for k, u in urls.items()})
  x, _ = data.load_mnist(cache_dir=tmp_path / "cache", tfds_data_dir=tmp_path / "tfds")
  assert x.shape == (10, 784)
  assert (tmp_path / "cache" / "mnist" / data.MNIST_FILES["train_images"]).is_file()
  # A file whose checksum does not match is refused, naming the file.
  monkeypatch.setattr(data, "MNIST_SHA256", {**hashes, data.MNIST_FILES["test_labels"]: "0" * 64})
  with pytest.raises(data.DataError, match="t10k-labels-idx1-ubyte.gz has SHA-256"):
    data.load_mnist(cache_dir=tmp_path / "cache2", tfds_data_dir=tmp_path / "tfds")


def test_online_check_fails_fast_for_unreachable_host():
  start = time.perf_counter()
  assert not data._online("invalid.invalid", timeout=2.0)
  assert time.perf_counter() - start < 10


def test_tfds_data_source_mocked(tmp_path, monkeypatch):
  monkeypatch.delenv(data.ENV_DATA_DIR, raising=False)
  with tfds.testing.mock_data(num_examples=12):
    x, y = data.load_mnist(cache_dir=tmp_path / "cache")
  assert x.shape == (12, 784) and x.dtype == np.float32
  assert 0.0 <= x.min() and x.max() <= 1.0
  assert y.shape == (12,) and y.dtype == np.int64


def test_usps_npz(tmp_path):
  rng = np.random.default_rng(0)
  x = rng.uniform(-1, 1, size=(7, 256)).astype(np.float32)
  y = rng.integers(0, 10, 7).astype(np.uint8)
  np.savez_compressed(tmp_path / "usps.npz", x=x, y=y)
  for where in (tmp_path / "usps.npz", tmp_path):
    xu, yu = data.load_usps(where)
    np.testing.assert_allclose(xu, (x + 1) / 2)
    np.testing.assert_array_equal(yu, y)
  np.savez(tmp_path / "bad.npz", a=x)
  with pytest.raises(data.DataError, match="bad.npz"):
    data.load_usps(tmp_path / "bad.npz")


def test_digits_and_arrays():
  x, y = data.load_digits()
  assert x.shape == (1797, 64) and 0 <= x.min() and x.max() <= 1
  images = np.zeros((5, 4, 4))
  xa, ya = data.from_arrays(images, [0, 1, 0, 1, 1])
  assert xa.shape == (5, 16) and xa.dtype == np.float32
  with pytest.raises(ValueError, match="NaN"):
    data.from_arrays(np.full((3, 2), np.nan))
  with pytest.raises(ValueError, match="3 labels but the data has 5 rows"):
    data.from_arrays(images, [0, 1, 2])
  with pytest.raises(ValueError, match="unknown dataset"):
    data.load("cifar")


def test_images_option_gives_image_shaped_arrays(tmp_path):
  parts = write_mnist(tmp_path / "mnist")
  x, _ = data.load_mnist(tmp_path, images=True)
  assert x.shape == (10, 28, 28, 1) and x.dtype == np.float32
  # The pixel at row 3, column 5 of the first digit, as in the IDX file.
  assert x[0, 3, 5, 0] == pytest.approx(parts["train"][0][0, 3, 5] / 255.0)
  rng = np.random.default_rng(0)
  flat = rng.uniform(-1, 1, size=(7, 256)).astype(np.float32)
  np.savez(tmp_path / "usps.npz", x=flat, y=np.zeros(7, np.uint8))
  xu, _ = data.load_usps(tmp_path, images=True)
  assert xu.shape == (7, 16, 16, 1)
  np.testing.assert_allclose(xu[2, 1, :, 0], (flat[2, 16:32] + 1) / 2)  # row-major rows
  xd, _ = data.load("digits", images=True)
  assert xd.shape == (1797, 8, 8, 1) == (1797, *data.IMAGE_SHAPES["digits"])
  np.testing.assert_array_equal(xd.reshape(1797, -1), data.load_digits()[0])


def test_load_file_reads_csv_npz_and_npy(tmp_path):
  (tmp_path / "named.csv").write_text("f1,f2,kind\n1,2,cat\n3,4.5,dog\n5,6,cat\n\n")
  x, y, shape = data.load_file(tmp_path / "named.csv", label_column="kind")
  np.testing.assert_array_equal(x, [[1, 2], [3, 4.5], [5, 6]])
  np.testing.assert_array_equal(y, [0, 1, 0])
  assert shape is None
  (tmp_path / "bare.csv").write_text("7,1,2\n3,3,4\n")
  x, y, _ = data.load_file(tmp_path / "bare.csv", label_column="0")
  np.testing.assert_array_equal(x, [[1, 2], [3, 4]])
  np.testing.assert_array_equal(y, [7, 3])
  assert data.load_file(tmp_path / "bare.csv")[1] is None
  rng = np.random.default_rng(0)
  np.savez(tmp_path / "images.npz", x=rng.random((5, 4, 4)), y=np.arange(5))
  x, y, shape = data.load_file(tmp_path / "images.npz")
  assert x.shape == (5, 16) and x.dtype == np.float32 and shape == (4, 4, 1)
  np.testing.assert_array_equal(y, np.arange(5))
  np.save(tmp_path / "rows.npy", rng.random((6, 16)))
  x, y, shape = data.load_file(tmp_path / "rows.npy", image_shape=(4, 4, 1))
  assert x.shape == (6, 16) and y is None and shape == (4, 4, 1)


@pytest.mark.parametrize("name, content, kwargs, error, match", [
    ("missing.csv", None, {}, data.DataError, "no data file"),
    ("x.txt", "1,2\n", {}, data.DataError, "unknown data type '.txt'"),
    ("words.csv", "a,b\n1,2\n3,x\n", {}, data.DataError, r"line 3, column 1 \('b'\): 'x' is not"),
    ("ragged.csv", "1,2\n3\n", {}, data.DataError, "line 2: 1 values, but 2 columns"),
    ("label.csv", "a,b\n1,2\n", {"label_column": "c"}, data.DataError, "no column 'c'"),
    ("empty.csv", "a,b\n", {}, data.DataError, "a header but no rows"),
    ("nan.csv", "1,2\nnan,3\n", {}, ValueError, "NaN"),
    ("rows.npy", np.ones((3, 5)), {"label_column": "0"}, data.DataError, "for CSV files"),
    ("nox.npz", {"a": np.ones((3, 2))}, {}, data.DataError, "name the data 'x'"),
    ("text.npy", np.array([["a", "b"]]), {}, data.DataError, "real numbers"),
    ("shape.npy", np.ones((3, 10)), {"image_shape": (3, 3, 1)}, ValueError, "9 values"),
])
def test_load_file_errors_name_the_problem(tmp_path, name, content, kwargs, error, match):
  path = tmp_path / name
  if isinstance(content, str):
    path.write_text(content)
  elif isinstance(content, dict):
    np.savez(path, **content)
  elif content is not None:
    np.save(path, content)
  with pytest.raises(error, match=match):
    data.load_file(path, **kwargs)


def test_load_file_csv_without_header_keeps_every_row(tmp_path):
  (tmp_path / "names.csv").write_text("1,2,cat\n3,4,dog\n5,6,cat\n")
  for column in ("-1", "2", 2):
    x, y, _ = data.load_file(tmp_path / "names.csv", label_column=column)
    assert x.shape == (3, 2)
    np.testing.assert_array_equal(y, [0, 1, 0])
  (tmp_path / "gap.csv").write_text("a,kind\n1,x\n2,\n")
  with pytest.raises(data.DataError, match="line 3: the label column is empty"):
    data.load_file(tmp_path / "gap.csv", label_column="kind")
