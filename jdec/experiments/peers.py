"""The peers the benchmark runs against: a plain PyTorch loop, ClustPy's DEC and
the DEC tutorial's Keras code on Keras 3's JAX backend.

All need the optional ``bench`` extra (``pip install "jdec[bench]"``); they
are imported only when called. Every function returns seconds per epoch.
"""

import os
import sys
import time

import numpy as np


def _torch(rows: str = "the PyTorch rows"):
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError(f'{rows} need PyTorch: pip install "jdec[bench]"') from e
  return torch


def _mlp(torch, widths):
  layers = []
  for i in range(len(widths) - 1):
    layers.append(torch.nn.Linear(widths[i], widths[i + 1]))
    if i < len(widths) - 2:
      layers.append(torch.nn.ReLU())
  return torch.nn.Sequential(*layers)


def torch_epochs(x: np.ndarray, hidden_dims, *, batch_size: int, epochs: int,
                 n_clusters: int = 10, update_interval: int = 140, device: str = "cpu",
                 seed: int = 0) -> dict:
  """A plain PyTorch loop: autoencoder epochs, then DEC (encoder + KL) epochs.

  Same layer sizes, batch and SGD with momentum as jdec; data on ``device``,
  a fresh shuffle every epoch, no DataLoader; DEC refreshes its target P on
  all rows every ``update_interval`` steps, as jdec does. Returns the median seconds per
  pretraining epoch and per clustering epoch (the first epoch of each,
  which includes warm-up, is dropped when there are more).
  """
  torch = _torch()
  torch.manual_seed(seed)
  dev = torch.device(device)
  data = torch.as_tensor(x, device=dev)
  n, d = data.shape
  widths = [d, *hidden_dims]
  encoder = _mlp(torch, widths).to(dev)
  decoder = _mlp(torch, widths[::-1]).to(dev)
  steps = n // batch_size

  def sync():
    if dev.type == "cuda":
      torch.cuda.synchronize()

  def timed_epochs(step):
    times = []
    for _ in range(epochs):
      sync()
      t0 = time.perf_counter()
      order = torch.randperm(n, device=dev)
      for s in range(steps):
        step(order[s * batch_size:(s + 1) * batch_size])
      sync()
      times.append(time.perf_counter() - t0)
    return float(np.median(times[1:] if len(times) > 1 else times))

  opt = torch.optim.SGD([*encoder.parameters(), *decoder.parameters()], lr=1.0, momentum=0.9)

  def ae_step(rows):
    batch = data[rows]
    opt.zero_grad(set_to_none=True)
    loss = torch.mean((decoder(encoder(batch)) - batch) ** 2)
    loss.backward()
    opt.step()

  pretrain = timed_epochs(ae_step)
  centres = torch.nn.Parameter(torch.randn(n_clusters, widths[-1], device=dev))
  opt_dec = torch.optim.SGD([*encoder.parameters(), centres], lr=0.01, momentum=0.9)

  def soft_assign(z):
    q = 1.0 / (1.0 + torch.cdist(z, centres) ** 2)
    return q / q.sum(1, keepdim=True)

  target_p, count = [None], [0]

  def dec_step(rows):
    if count[0] % update_interval == 0:  # DEC's full-data target refresh
      with torch.no_grad():
        q = torch.cat([soft_assign(encoder(c)) for c in torch.split(data, 4096)])
        w = q ** 2 / q.sum(0)
        target_p[0] = w / w.sum(1, keepdim=True)
    count[0] += 1
    opt_dec.zero_grad(set_to_none=True)
    q = soft_assign(encoder(data[rows]))
    target = target_p[0][rows]
    loss = torch.sum(target * (torch.log(target) - torch.log(q))) / rows.shape[0]
    loss.backward()
    opt_dec.step()

  clustering = timed_epochs(dec_step)
  return {"pretrain_epoch_s": pretrain, "dec_epoch_s": clustering}


def clustpy_epochs(x: np.ndarray, hidden_dims, *, batch_size: int, n_clusters: int = 10,
                   epochs: int = 2, device: str = "cpu", seed: int = 0) -> dict:
  """ClustPy's ``clustpy.deep.DEC`` with the same layers, batch and SGD.

  ClustPy's public API times only whole fits, so three fits are timed:
  (1 pretraining epoch, 1 clustering epoch), (1 + ``epochs``, 1) and
  (1, 1 + ``epochs``); the differences, divided by ``epochs``, are the
  seconds per pretraining and per clustering epoch (the k-means and set-up
  costs cancel out). ClustPy pretrains with learning rate 0.001 here: its
  reconstruction loss sums over the 784 features where jdec's averages, and
  1.0 diverges to NaN, which its k-means refuses; the learning rate does
  not change the time per epoch.
  """
  torch = _torch("the ClustPy rows")
  try:
    from clustpy.deep import DEC  # pylint: disable=g-import-not-at-top
    from clustpy.deep.neural_networks import FeedforwardAutoencoder  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError('the ClustPy rows need ClustPy: pip install "jdec[bench]"') from e
  layers = [x.shape[1], *hidden_dims]

  def fit_seconds(pretrain_epochs, clustering_epochs):
    torch.manual_seed(seed)
    model = DEC(
        n_clusters, batch_size=batch_size, pretrain_epochs=pretrain_epochs,
        clustering_epochs=clustering_epochs, optimizer_class=torch.optim.SGD,
        pretrain_optimizer_params={"lr": 0.001, "momentum": 0.9},
        clustering_optimizer_params={"lr": 0.01, "momentum": 0.9},
        neural_network=(FeedforwardAutoencoder,
                        {"layers": layers, "activation_fn": torch.nn.ReLU}),
        embedding_size=hidden_dims[-1], device=torch.device(device), random_state=seed,
    )
    t0 = time.perf_counter()
    model.fit(x)
    return time.perf_counter() - t0

  base = fit_seconds(1, 1)
  more_pretrain = fit_seconds(1 + epochs, 1)
  more_clustering = fit_seconds(1, 1 + epochs)
  return {"pretrain_epoch_s": (more_pretrain - base) / epochs,
          "dec_epoch_s": (more_clustering - base) / epochs,
          "fit_1_1_s": base}


class KerasBackendError(RuntimeError):
  """Keras was imported before :func:`keras_epochs` with a backend other than JAX."""


def _keras():
  """Keras 3 on its JAX backend, which is fixed when keras is first imported."""
  if "keras" not in sys.modules:
    os.environ.setdefault("KERAS_BACKEND", "jax")
  try:
    import keras  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError('the Keras rows need Keras 3: pip install "jdec[bench]"') from e
  if int(keras.__version__.split(".")[0]) < 3:
    raise ImportError(f'the Keras rows need Keras 3, found {keras.__version__}: '
                      'pip install "jdec[bench]"')
  if keras.backend.backend() != "jax":
    raise KerasBackendError(
        f"the Keras rows need Keras's JAX backend, but keras was imported with "
        f"{keras.backend.backend()!r}: set KERAS_BACKEND=jax before anything imports keras")
  return keras


def _keras_autoencoder(keras, widths, seed):
  """The tutorial's ``autoencoder(dims)``: ``(autoencoder, encoder)`` models."""
  init = lambda i: keras.initializers.VarianceScaling(
      1.0 / 3.0, mode="fan_in", distribution="uniform", seed=seed + i)
  dense = lambda i, width, act: keras.layers.Dense(
      width, activation=act, kernel_initializer=init(i))
  n = len(widths) - 1
  inputs = keras.Input((widths[0],))
  h = inputs
  for i in range(n):
    h = dense(i, widths[i + 1], "relu" if i < n - 1 else None)(h)
  embedding = h
  for i in range(n - 1, -1, -1):
    h = dense(2 * n - 1 - i, widths[i], "relu" if i > 0 else None)(h)
  return keras.Model(inputs, h), keras.Model(inputs, embedding)


def _keras_clustering_layer(keras):
  """The tutorial's ``ClusteringLayer``: Student-t q (alpha 1), centres as a weight."""
  ops = keras.ops

  class ClusteringLayer(keras.layers.Layer):

    def __init__(self, n_clusters, alpha=1.0, **kwargs):
      super().__init__(**kwargs)
      self.n_clusters, self.alpha = n_clusters, alpha

    def build(self, input_shape):
      self.clusters = self.add_weight(
          shape=(self.n_clusters, input_shape[-1]), initializer="glorot_uniform",
          name="clusters")

    def call(self, inputs):
      d2 = ops.sum(ops.square(ops.expand_dims(inputs, 1) - self.clusters), axis=2)
      q = (1.0 + d2 / self.alpha) ** (-(self.alpha + 1.0) / 2.0)
      return q / ops.sum(q, axis=1, keepdims=True)

  return ClusteringLayer


def _median_after_first(times) -> float:
  return float(np.median(times[1:] if len(times) > 1 else times))


def _keras_fit_epochs(keras, autoencoder, x, batch_size, epochs) -> float:
  """The tutorial's pretraining, ``autoencoder.fit``, timed per epoch by a callback."""

  class EpochTimer(keras.callbacks.Callback):

    def __init__(self):
      super().__init__()
      self.times = []

    def on_epoch_begin(self, epoch, logs=None):
      self.t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
      float(logs["loss"])  # the epoch's work is done
      self.times.append(time.perf_counter() - self.t0)

  autoencoder.compile(optimizer=keras.optimizers.SGD(learning_rate=1.0, momentum=0.9),
                      loss="mse")
  timer = EpochTimer()
  autoencoder.fit(x, x, batch_size=batch_size, epochs=epochs, shuffle=True, verbose=0,
                  callbacks=[timer])
  return _median_after_first(timer.times)


def _keras_dec_epochs(keras, encoder, x, batch_size, epochs, n_clusters, update_interval,
                      seed) -> float:
  """The tutorial's clustering loop (``predict``, P, ``train_on_batch``), timed per epoch."""
  n = x.shape[0]
  steps = n // batch_size
  clustering = _keras_clustering_layer(keras)(n_clusters, name="clustering")
  model = keras.Model(encoder.input, clustering(encoder.output))
  rows = np.random.default_rng(seed).choice(n, n_clusters, replace=False)
  clustering.set_weights([encoder.predict(x[rows], verbose=0)])
  model.compile(optimizer=keras.optimizers.SGD(0.01, 0.9), loss="kld")
  p, times, ite = None, [], 0
  for _ in range(epochs):
    t0 = time.perf_counter()
    for _ in range(steps):
      if ite % update_interval == 0:
        q = model.predict(x, batch_size=4096, verbose=0)
        w = q ** 2 / q.sum(0)
        p = (w.T / w.sum(1)).T
      idx = slice((ite % steps) * batch_size, (ite % steps + 1) * batch_size)
      model.train_on_batch(x[idx], p[idx])  # returns the loss as a float: waits
      ite += 1
    times.append(time.perf_counter() - t0)
  return _median_after_first(times)


def keras_epochs(x: np.ndarray, hidden_dims, *, batch_size: int, epochs: int,
                 n_clusters: int = 10, update_interval: int = 140, seed: int = 0) -> dict:
  """The DEC tutorial's Keras code (DEC-keras) on Keras 3 with the JAX backend.

  Pretraining is ``model.fit(x, x, shuffle=True)`` on the same autoencoder,
  initialiser and SGD as jdec, timed per epoch by a callback (``fit`` also
  runs the last partial batch). Clustering is the tutorial's loop: every
  ``update_interval`` steps ``model.predict`` on all rows (in batches of
  4096, as jdec and the torch peer refresh) and the target P, then
  ``train_on_batch`` on the next batch, walking the rows in order (full
  batches only, so the tutorial's partial last batch is skipped). Centres
  start at random rows' embeddings. Returns the median seconds per
  pretraining and per clustering epoch of ``n // batch_size`` steps (the
  first of each, which compiles, is dropped when there are more). Runs
  with JAX's implicit rank promotion allowed, which Keras's ops need.
  """
  import jax  # pylint: disable=g-import-not-at-top
  keras = _keras()
  x = np.asarray(x, np.float32)
  with jax.numpy_rank_promotion("allow"):  # Keras's ops broadcast implicitly
    autoencoder, encoder = _keras_autoencoder(keras, [x.shape[1], *hidden_dims], seed)
    pretrain = _keras_fit_epochs(keras, autoencoder, x, batch_size, epochs)
    clustering = _keras_dec_epochs(keras, encoder, x, batch_size, epochs, n_clusters,
                                   update_interval, seed)
  return {"pretrain_epoch_s": pretrain, "dec_epoch_s": clustering}
