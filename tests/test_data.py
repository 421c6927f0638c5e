"""Loaders on tiny IDX files written here, on broken files and on mocked tfds."""

import functools
import gzip
import struct
import time

import numpy as np
import pytest
import tensorflow_datasets as tfds

from jdec import data, reuters


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


# REUTERS-10K on a tiny stand-in for fetch_rcv1's bunch: 200 documents, 50 terms.
RCV1_NAMES = np.array(["C15", "CCAT", "E21", "ECAT", "GCAT", "GSPO", "M14", "MCAT"], object)
TOPS = ("CCAT", "GCAT", "MCAT", "ECAT")  # DEC's labels 0..3
WINNERS = [3, 7, 11, 20, 41]  # in most kept documents
DECOYS = [45, 47, 49]  # in every dropped document, so the most frequent overall
ONLY_DROPPED = 48  # occurs only in dropped documents: outside the kept vocabulary
N_TRAIN = 40  # rows with LYRL2004 training ids, first as in fetch_rcv1


def fake_rcv1(n=200, v=50, seed=0, sample_ids=True):
  """A bunch shaped as fetch_rcv1's, with each document's expected label (-1: dropped).

  Values are ``(column + 1)`` times a small jitter, so a row's column pattern shows
  which columns were kept.
  """
  import scipy.sparse as sp
  from sklearn.utils import Bunch

  rng = np.random.default_rng(seed)
  target = np.zeros((n, len(RCV1_NAMES)), np.uint8)
  column = {name: j for j, name in enumerate(RCV1_NAMES)}
  label = np.full(n, -1)
  for i in range(n):
    n_tops = {0: 0, 1: 2, 2: 3}.get(i % 8, 1)  # none, two, three or one of the four
    tops = rng.choice(TOPS, size=n_tops, replace=False)
    for name in tops:
      target[i, column[name]] = 1
    for name in ("C15", "E21", "GSPO", "M14"):  # lower-level topics, ignored
      target[i, column[name]] = rng.random() < 0.5
    if n_tops == 1:
      label[i] = TOPS.index(tops[0])
  kept = label >= 0
  present = rng.random((n, v)) < 0.2
  present[np.ix_(kept, WINNERS)] = rng.random((kept.sum(), len(WINNERS))) < 0.7
  present[np.ix_(~kept, WINNERS)] = False
  present[np.ix_(~kept, DECOYS)] = True
  present[np.ix_(kept, DECOYS)] = rng.random((kept.sum(), len(DECOYS))) < 0.3
  present[kept, ONLY_DROPPED] = False
  present[np.flatnonzero(kept)[-1], WINNERS] = False  # a kept document with no winner
  values = (np.arange(v) + 1.0) * (1.0 + 0.05 * rng.random((n, v))) * present
  sample_id = np.concatenate([2286 + np.arange(N_TRAIN), 26151 + np.arange(n - N_TRAIN)])
  bunch = Bunch(data=sp.csr_matrix(values), target=sp.csr_array(target),
                target_names=RCV1_NAMES)
  if sample_ids:
    bunch.sample_id = sample_id.astype(np.uint32)
  return bunch, label


def counting_fetch(bunch):
  calls = []

  def fetch(data_home, download_if_missing):
    calls.append((data_home, download_if_missing))
    return bunch

  return fetch, calls


def expected_reuters(bunch, label, n_docs, n_terms, seed, dec_order=True):
  """The documented construction, written out plainly."""
  n = label.shape[0]
  is_train = np.asarray(bunch.sample_id) <= 26150 if dec_order else np.zeros(n, bool)
  order = [i for i in range(n) if not is_train[i]] + [i for i in range(n) if is_train[i]]
  kept = [i for i in order if label[i] >= 0]
  docs = [kept[p] for p in np.random.RandomState(seed).permutation(len(kept))[:n_docs]]
  rows = bunch.data.toarray()[np.ix_(docs, sorted(WINNERS))]
  norms = np.linalg.norm(rows, axis=1, keepdims=True)
  rows = np.where(norms > 0, rows / np.where(norms > 0, norms, 1), 0) * np.sqrt(n_terms)
  return rows, label[docs]


def test_fake_rcv1_is_built_as_the_tests_assume():
  bunch, label = fake_rcv1()
  kept = label >= 0
  df_kept = (bunch.data.toarray()[kept] != 0).sum(0)
  df_all = (bunch.data.toarray() != 0).sum(0)
  others = np.setdiff1d(np.arange(50), WINNERS)
  assert df_kept[WINNERS].min() > df_kept[others].max()  # the winners among kept docs
  assert df_all[DECOYS].min() > df_all[WINNERS].max()  # but not over all documents
  assert df_kept[ONLY_DROPPED] == 0 and df_all[ONLY_DROPPED] > 0
  top_counts = np.asarray(bunch.target[:, [1, 3, 4, 7]].sum(1)).ravel()
  assert set(top_counts) == {0, 1, 2, 3} and kept.sum() == 125


@pytest.mark.parametrize("dec_order", [True, False])
def test_reuters10k_follows_decs_construction(tmp_path, dec_order):
  bunch, label = fake_rcv1(sample_ids=dec_order)
  fetch, calls = counting_fetch(bunch)
  x, y = data.load_reuters10k(tmp_path, n_docs=125, n_terms=5, fetch=fetch)
  assert calls == [(str(tmp_path), False)]  # the local copy, no download asked for
  assert x.shape == (125, 5) and x.dtype == np.float32 and y.dtype == np.int64
  want_x, want_y = expected_reuters(bunch, label, 125, 5, 1234, dec_order)
  np.testing.assert_array_equal(y, want_y)  # the same documents, labels and order
  np.testing.assert_allclose(x, want_x, rtol=1e-6, atol=1e-6)
  # All 125 single-category documents, each label as often as in the data.
  np.testing.assert_array_equal(np.bincount(y, minlength=4),
                                np.bincount(label[label >= 0], minlength=4))


def test_reuters10k_dec_order_puts_training_documents_last(tmp_path):
  bunch, _ = fake_rcv1()
  _, y = data.load_reuters10k(tmp_path / "a", n_docs=125, n_terms=5,
                              fetch=counting_fetch(bunch)[0])
  del bunch["sample_id"]  # the bunch's own order instead
  _, y_plain = data.load_reuters10k(tmp_path / "b", n_docs=125, n_terms=5,
                                    fetch=counting_fetch(bunch)[0])
  assert not np.array_equal(y, y_plain)


def test_reuters10k_terms_by_document_frequency_of_kept_documents(tmp_path):
  bunch, _ = fake_rcv1()
  x, _ = data.load_reuters10k(tmp_path, n_docs=60, n_terms=5, fetch=counting_fetch(bunch)[0])
  # A row holding all five kept terms is proportional to (column + 1) (up to 5% jitter).
  full = np.flatnonzero((x > 0).all(1))
  assert len(full) > 0
  pattern = (np.array(WINNERS) + 1.0) / np.linalg.norm(np.array(WINNERS) + 1.0)
  np.testing.assert_allclose(x[full] / np.sqrt(5), np.broadcast_to(pattern, (len(full), 5)),
                             rtol=0.1)


def test_reuters10k_ties_go_to_the_lower_column(tmp_path):
  import scipy.sparse as sp
  from sklearn.utils import Bunch

  values = np.array([[1.0, 2, 3, 4]] * 4)
  values[1:, 0] = 0  # column 0 in one document, the others in all four
  target = np.zeros((4, 8), np.uint8)
  target[:, 1] = 1  # CCAT
  bunch = Bunch(data=sp.csr_matrix(values), target=target, target_names=RCV1_NAMES)
  x, y = data.load_reuters10k(tmp_path, n_docs=4, n_terms=2, fetch=lambda **_: bunch)
  np.testing.assert_allclose(x, np.tile([2.0, 3.0], (4, 1)) / np.sqrt(13) * np.sqrt(2),
                             rtol=1e-6)
  np.testing.assert_array_equal(y, [0, 0, 0, 0])


def test_reuters10k_rows_seed_and_dtype(tmp_path):
  bunch, _ = fake_rcv1()
  fetch = counting_fetch(bunch)[0]
  x, y = data.load_reuters10k(tmp_path / "a", n_docs=50, n_terms=5, fetch=fetch)
  again = data.load_reuters10k(tmp_path / "b", n_docs=50, n_terms=5, fetch=fetch)
  other = data.load_reuters10k(tmp_path / "c", n_docs=50, n_terms=5, seed=7, fetch=fetch)
  np.testing.assert_array_equal(x, again[0])
  np.testing.assert_array_equal(y, again[1])
  assert not np.array_equal(x, other[0])
  assert x.dtype == np.float32 and np.isfinite(x).all() and (x >= 0).all()
  norms = np.linalg.norm(np.concatenate([x, other[0]]), axis=1)
  assert np.all(np.isclose(norms, np.sqrt(5), rtol=1e-5) | (norms == 0))
  # The kept document with none of the kept terms is a zero row, as in DEC.
  full, _ = data.load_reuters10k(tmp_path / "d", n_docs=125, n_terms=5, fetch=fetch)
  assert (np.linalg.norm(full, axis=1) == 0).sum() >= 1 and np.isfinite(full).all()


def test_reuters10k_second_call_reads_the_cache(tmp_path):
  bunch, _ = fake_rcv1()
  fetch, calls = counting_fetch(bunch)
  x, y = data.load_reuters10k(tmp_path, n_docs=30, n_terms=5, fetch=fetch)
  path = reuters.reuters10k_cache_path(tmp_path, n_docs=30, n_terms=5, seed=1234)
  assert path.is_file() and len(calls) == 1

  def offline(**_):
    raise AssertionError("fetch called although the arrays are cached")

  x2, y2 = data.load_reuters10k(tmp_path, n_docs=30, n_terms=5, download=False, fetch=offline)
  np.testing.assert_array_equal(x, x2)
  np.testing.assert_array_equal(y, y2)
  assert x2.dtype == np.float32 and y2.dtype == np.int64
  data.load_reuters10k(tmp_path, n_docs=31, n_terms=5, fetch=fetch)  # other parameters
  assert len(calls) == 2
  whole = path.read_bytes()
  for damaged in (b"not an npz", whole[:len(whole) // 2], whole[:-30] + b"\0" * 30):
    path.write_bytes(damaged)  # text, cut short, its end (the zip's directory) zeroed
    with pytest.raises(data.DataError, match=rf"cached REUTERS-10K {path}.*delete it"):
      data.load_reuters10k(tmp_path, n_docs=30, n_terms=5, fetch=offline)


def test_load_dispatches_reuters10k(tmp_path, monkeypatch):
  bunch, _ = fake_rcv1()
  x, y = data.load_reuters10k(tmp_path, n_docs=20, n_terms=5, fetch=counting_fetch(bunch)[0])
  # load() passes data_dir on as data_home; smaller sizes so the cache above is found.
  monkeypatch.setitem(data.LOADERS, "reuters10k",
                      functools.partial(data.load_reuters10k, n_docs=20, n_terms=5,
                                        download=False))
  xl, yl = data.load("reuters10k", tmp_path)
  np.testing.assert_array_equal(xl, x)
  np.testing.assert_array_equal(yl, y)
  with pytest.raises(ValueError, match="holds no images"):
    data.load("reuters10k", tmp_path, images=True)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"n_docs": 0}, ValueError, "n_docs must be a positive integer"),
    ({"n_docs": 2.5}, ValueError, "n_docs must be a positive integer"),
    ({"n_docs": True}, ValueError, "n_docs must be a positive integer"),
    ({"n_terms": -1}, ValueError, "n_terms must be a positive integer"),
    ({"seed": -1}, ValueError, "seed must be an integer"),
    ({"seed": "1234"}, ValueError, "seed must be an integer"),
    ({"fetch": 42}, TypeError, "fetch must be callable"),
    ({"n_docs": 126}, ValueError, "only 125 documents have exactly one"),
    ({"n_terms": 50}, ValueError, "only 49 of the 50 terms occur in the 125 kept"),
])
def test_reuters10k_bad_requests_say_what_is_wrong(tmp_path, kwargs, error, match):
  bunch, _ = fake_rcv1()
  kwargs = {"n_docs": 10, "n_terms": 5, "fetch": counting_fetch(bunch)[0], **kwargs}
  with pytest.raises(error, match=match):
    data.load_reuters10k(tmp_path, **kwargs)
  assert not list(tmp_path.rglob("*.npz"))  # nothing cached


def test_reuters10k_n_terms_up_to_the_kept_vocabulary(tmp_path):
  bunch, _ = fake_rcv1()
  x, _ = data.load_reuters10k(tmp_path, n_docs=10, n_terms=49, fetch=counting_fetch(bunch)[0])
  assert x.shape == (10, 49)


def test_reuters10k_not_rcv1_is_named(tmp_path):
  bunch, _ = fake_rcv1()
  bunch.target_names = np.array(["C15", "CCAT", "E21", "EXXX", "GCAT", "GSPO", "M14", "MCAT"])
  with pytest.raises(data.DataError, match=r"\['ECAT'\] are not among target_names"):
    data.load_reuters10k(tmp_path, n_docs=10, n_terms=5, fetch=lambda **_: bunch)


def test_reuters10k_offline_without_data_says_what_to_do(tmp_path):
  calls = []

  def no_copy(data_home, download_if_missing):
    calls.append(download_if_missing)
    raise FileNotFoundError("no RCV1 here")

  with pytest.raises(data.DataError, match="download=False") as info:
    data.load_reuters10k(tmp_path, download=False, fetch=no_copy)
  assert calls == [False]
  message = str(info.value)
  assert str(tmp_path / "RCV1") in message and "with internet" in message
  assert str(reuters.reuters10k_cache_path(tmp_path)) in message

  def broken(data_home, download_if_missing):
    if not download_if_missing:
      raise FileNotFoundError("no RCV1 here")
    raise ConnectionError("connection reset by peer")

  with pytest.raises(data.DataError, match="fetching RCV1 failed.*connection reset.*with internet"):
    data.load_reuters10k(tmp_path, fetch=broken)


def test_reuters10k_default_fetch_offline_fails_fast(tmp_path, monkeypatch):
  """scikit-learn's own fetch_rcv1 on an empty folder, with the network faked away."""
  monkeypatch.setattr(data, "_online", lambda *a, **k: False)
  start = time.perf_counter()
  with pytest.raises(data.DataError, match="no copy of RCV1"):
    data.load_reuters10k(tmp_path / "home")
  with pytest.raises(data.DataError, match="download=False"):
    data.load_reuters10k(tmp_path / "home", download=False)
  assert time.perf_counter() - start < 30
  assert not (tmp_path / "home" / "RCV1").exists() or not any((tmp_path / "home" / "RCV1").iterdir())
