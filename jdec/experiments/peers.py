"""The peers the benchmark runs against: a plain PyTorch loop and ClustPy's DEC.

Both need the optional ``bench`` extra (``pip install "jdec[bench]"``); they
are imported only when called. Every function returns seconds per epoch.
"""

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
