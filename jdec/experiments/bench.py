"""Side-by-side speed benchmark: bare-step ceilings, jdec, plain PyTorch, Keras 3, ClustPy.

    python -m jdec.experiments.bench --workdir experiments/results

On MNIST when its files are found (``--config.data_dir`` or
``JDEC_DATA_DIR``), else on uniform random data of MNIST's shape. Every row
uses the same layer sizes (``d-500-500-2000-10``), batch (256) and SGD with
momentum, so the throughputs compare like with like:

- ``ceiling``: a bare jitted step (plain ``jnp``, no Flax, no optax) on one
  fixed device batch, repeated in a ``lax.scan``: the model's own limit.
- ``jdec``: ``jdec.pretrain.pretrain_end_to_end`` and ``jdec.cluster.run``
  as ``fit`` runs them, with real batches, shuffles and DEC's full-data
  target refreshes.
- ``torch``: the same model as a plain PyTorch training loop.
- ``keras``: the DEC tutorial's Keras code (``fit``, then ``predict`` and
  ``train_on_batch``) on Keras 3 with its JAX backend (the ``bench`` extra).
- ``clustpy``: ``clustpy.deep.DEC`` (the ``bench`` extra).

Prints a table and writes ``bench-<host>-<date>.json`` into the work directory.
"""

import importlib.metadata
import json
import os
import pathlib
import platform
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

import jdec
from jdec import cluster, data, dec, models, parallel, pretrain, runs, train
from jdec.experiments import cli, peers


def get_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.data_dir = ml_collections.config_dict.placeholder(str)
  c.synthetic = False  # use random data even when MNIST files are found
  c.n_samples = 70_000
  c.hidden_dims = (500, 500, 2000, 10)
  c.batch_size = 256
  c.n_clusters = 10
  c.epochs = 3  # jdec and torch epochs per phase; the first is warm-up
  c.ceiling_steps = 100
  c.dec_intervals = 4  # DEC update intervals of 140 steps timed (after one warm-up)
  c.sweep_seeds = 4  # S for the "S seeds at once" row; 0 skips it
  c.bf16 = True  # time a bfloat16 pretraining epoch too
  c.torch = True
  c.keras = True
  c.clustpy = True
  c.clustpy_epochs = 2
  c.seed = 0
  return c


# ---- the ceilings: bare jitted steps in plain jnp ----

def _dense_params(key, widths):
  keys = jax.random.split(key, len(widths) - 1)
  return [(jax.random.normal(k, (a, b)) * np.sqrt(1.0 / a), jnp.zeros(b))
          for k, a, b in zip(keys, widths[:-1], widths[1:])]


def _mlp(params, x):
  for i, (w, b) in enumerate(params):
    x = x @ w + b[None, :]
    if i < len(params) - 1:
      x = jax.nn.relu(x)
  return x


def _sgd(params, mom, grads, lr, beta=0.9):
  mom = jax.tree.map(lambda m, g: beta * m + g, mom, grads)
  return jax.tree.map(lambda p, m: p - lr * m, params, mom), mom


def _time_scan(step, carry, steps: int) -> float:
  """Seconds per step of ``step`` repeated ``steps`` times in a scan (median of 3)."""
  run = jax.jit(lambda c: jax.lax.scan(lambda c, _: (step(c), None), c, None,
                                       length=steps)[0], donate_argnums=0)
  carry = jax.block_until_ready(run(carry))
  times = []
  for _ in range(3):
    t0 = time.perf_counter()
    carry = jax.block_until_ready(run(carry))
    times.append(time.perf_counter() - t0)
  return float(np.median(times)) / steps


def ceiling_autoencoder(key, d, hidden_dims, batch_size, steps) -> float:
  """Seconds per bare autoencoder step (MSE, SGD with momentum) on a fixed batch."""
  widths = [d, *hidden_dims]
  k1, k2, k3 = jax.random.split(key, 3)
  params = (_dense_params(k1, widths), _dense_params(k2, widths[::-1]))
  batch = jax.random.uniform(k3, (batch_size, d))

  def loss(params):
    enc, dec_ = params
    return jnp.mean(jnp.square(_mlp(dec_, _mlp(enc, batch)) - batch))

  def step(carry):
    params, mom = carry
    return _sgd(params, mom, jax.grad(loss)(params), 1.0)

  return _time_scan(step, (params, jax.tree.map(jnp.zeros_like, params)), steps)


def ceiling_dec(key, d, hidden_dims, batch_size, n_clusters, steps) -> float:
  """Seconds per bare DEC step (encoder, Student-t q, KL to a fixed P) on a fixed batch."""
  k1, k2, k3, k4 = jax.random.split(key, 4)
  params = (_dense_params(k1, [d, *hidden_dims]),
            jax.random.normal(k2, (n_clusters, hidden_dims[-1])))
  batch = jax.random.uniform(k3, (batch_size, d))
  p = jax.nn.softmax(jax.random.normal(k4, (batch_size, n_clusters)))

  def loss(params):
    enc, centres = params
    log_q = dec.log_soft_assignment(_mlp(enc, batch), centres)
    return jnp.mean(dec.kl_loss_from_log(p, log_q))

  def step(carry):
    params, mom = carry
    return _sgd(params, mom, jax.grad(loss)(params), 0.01)

  return _time_scan(step, (params, jax.tree.map(jnp.zeros_like, params)), steps)


# ---- jdec as fit runs it ----

def jdec_pretrain_epoch(key, x_dev, model, cfg, *, seeds: int = 0,
                        placement=None) -> float:
  """Median seconds per pretraining epoch (``cfg.epochs``, the first dropped)."""
  keys = jax.random.split(key, seeds) if seeds else key[None]  # one run: a stack of one
  params = jax.vmap(lambda k: models.init_autoencoder(k, model, x_dev.shape[1]))(keys)
  _, history = pretrain.pretrain_end_to_end(
      keys, x_dev, model, params, num_epochs=cfg.epochs, batch_size=cfg.batch_size,
      learning_rate=1.0, momentum=0.9, progress=False, placement=placement)
  ends = sorted({h["wall_s"] for h in history})
  return float(np.median(np.diff(ends))) if len(ends) > 1 else ends[0]


def jdec_dec_step(key, x_dev, model, cfg, placement=None) -> tuple[float, float]:
  """Seconds per DEC step: ``(steps alone, with the target refreshes)``.

  The first is ``jdec.runs.Stepper`` on a 140-step interval, as ``cluster.run``
  calls it; the second is ``cluster.run`` itself, whose every interval also
  computes q on all rows, the labels and the target P. Medians, the first
  (compiling) call dropped.
  """
  clustering = models.ClusteringModel(model, cfg.n_clusters)
  ae_params = models.init_autoencoder(key, model, x_dev.shape[1])
  centroids = jax.random.normal(key, (cfg.n_clusters, model.embed_dim))
  placement = placement or parallel.default_placement()
  make_state = lambda: placement.put(runs.create_states(
      clustering.apply, runs.stack([models.clustering_params(ae_params, centroids)]),
      train.sgd(0.01, 0.9)))
  keys, interval = key[None], 140
  _, history, _ = cluster.run(
      keys, make_state(), x_dev, batch_size=cfg.batch_size, update_interval=interval,
      tol=0.0, maxiter=interval * (cfg.dec_intervals + 1), progress=False,
      placement=placement)
  walls = [h["wall_s"] for h in history]
  with_refresh = float(np.median(np.diff(walls)[1:])) / interval

  stepper = runs.Stepper(train.clustering_step, block_steps=interval,
                         batch_size=cfg.batch_size, placement=placement, data_axis=(None, 0))
  state = make_state()
  p = placement.put(jax.nn.softmax(jax.random.normal(key, (1, x_dev.shape[0], cfg.n_clusters))))
  times = []
  for i in range(cfg.dec_intervals + 1):
    t0 = time.perf_counter()
    state, _ = stepper(state, (x_dev, p), keys, i * interval, [interval])  # waits for the loss
    times.append(time.perf_counter() - t0)
  return float(np.median(times[1:])) / interval, with_refresh


def _load(cfg):
  if cfg.synthetic:
    rng = np.random.default_rng(cfg.seed)
    return rng.random((cfg.n_samples, 784), dtype=np.float32), "synthetic uniform"
  try:
    x, _ = data.load("mnist", cfg.data_dir)
    return x[: cfg.n_samples], "mnist"
  except data.DataError:
    rng = np.random.default_rng(cfg.seed)
    return rng.random((cfg.n_samples, 784), dtype=np.float32), "synthetic uniform"


def run(cfg: ml_collections.ConfigDict, workdir) -> dict:
  x, source = _load(cfg)
  n, d = x.shape
  steps_per_epoch = n // cfg.batch_size
  key = jax.random.key(cfg.seed)
  hidden = tuple(cfg.hidden_dims)
  placement = parallel.default_placement()
  x_dev = placement.put_data(x)
  model = models.AutoEncoder(d, hidden)
  rows, out = [], {}

  def row(name, phase, epoch_s, note="", vs="jdec"):
    """``vs``: the jdec row doing the same work, which this row is compared with."""
    rows.append({"name": name, "phase": phase, "epoch_s": epoch_s, "vs": vs,
                 "samples_per_s": steps_per_epoch * cfg.batch_size / epoch_s, "note": note})
    print(f"  {name:<28} {phase:<9} {epoch_s:8.2f} s/epoch", flush=True)

  print(f"bench on {source} ({n} x {d}), batch {cfg.batch_size}, "
        f"{jax.devices()[0].device_kind} x{jax.device_count()}", flush=True)
  row("ceiling (bare jitted step)", "pretrain",
      ceiling_autoencoder(key, d, hidden, cfg.batch_size, cfg.ceiling_steps) * steps_per_epoch)
  row("jdec", "pretrain", jdec_pretrain_epoch(key, x_dev, model, cfg, placement=placement))
  if cfg.bf16:
    row("jdec bfloat16 matmuls", "pretrain", jdec_pretrain_epoch(
        key, x_dev, models.AutoEncoder(d, hidden, compute_dtype="bfloat16"), cfg,
        placement=placement))
  if cfg.sweep_seeds:
    row(f"jdec {cfg.sweep_seeds} seeds at once", "pretrain", jdec_pretrain_epoch(
        key, x_dev, model, cfg, seeds=cfg.sweep_seeds, placement=placement),
        note=f"all {cfg.sweep_seeds} runs")
  row("ceiling (bare jitted step)", "dec", ceiling_dec(
      key, d, hidden, cfg.batch_size, cfg.n_clusters, cfg.ceiling_steps) * steps_per_epoch)
  steps_only, with_refresh = jdec_dec_step(key, x_dev, model, cfg, placement)
  row("jdec", "dec", steps_only * steps_per_epoch, note="train steps only")
  row("jdec with target refreshes", "dec", with_refresh * steps_per_epoch,
      note="q on all rows, labels and P every 140 steps, as fit runs it")
  torch_device = "cuda" if jax.default_backend() == "gpu" else "cpu"
  if cfg.torch:
    try:
      t = peers.torch_epochs(
          x, hidden, batch_size=cfg.batch_size, epochs=cfg.epochs, device=torch_device)
      row("plain PyTorch loop", "pretrain", t["pretrain_epoch_s"])
      row("plain PyTorch loop", "dec", t["dec_epoch_s"], vs="jdec with target refreshes",
          note="target refresh every 140 steps included")
    except ImportError as e:
      out["torch_skipped"] = str(e)
      print(f"  (PyTorch skipped: {e})")
  if cfg.keras:
    try:
      k = peers.keras_epochs(x, hidden, batch_size=cfg.batch_size, epochs=cfg.epochs,
                             n_clusters=cfg.n_clusters, seed=cfg.seed)
      row("Keras 3 (JAX backend)", "pretrain", k["pretrain_epoch_s"],
          note="model.fit, last partial batch included")
      row("Keras 3 (JAX backend)", "dec", k["dec_epoch_s"], vs="jdec with target refreshes",
          note="predict on all rows and P every 140 steps, train_on_batch")
    except (ImportError, peers.KerasBackendError) as e:
      out["keras_skipped"] = str(e)
      print(f"  (Keras skipped: {e})")
  if cfg.clustpy:
    try:
      c = peers.clustpy_epochs(
          x, hidden, batch_size=cfg.batch_size, epochs=cfg.clustpy_epochs,
          n_clusters=cfg.n_clusters, device=torch_device)
      row("ClustPy DEC", "pretrain", c["pretrain_epoch_s"])
      row("ClustPy DEC", "dec", c["dec_epoch_s"],
          note="ClustPy takes each batch's target from the batch itself: no refreshes")
      out["clustpy_fit_1_1_s"] = c["fit_1_1_s"]
    except ImportError as e:
      out["clustpy_skipped"] = str(e)
      print(f"  (ClustPy skipped: {e})")

  out.update({
      "data": source, "n": n, "d": d, "batch_size": cfg.batch_size, "hidden_dims": hidden,
      "rows": rows, "ratios": ratios(rows), "config": cfg.to_dict(),
      "device": jax.devices()[0].device_kind, "device_count": jax.device_count(),
      "platform": jax.default_backend(), "host": platform.node(),
      "cpu_count": os.cpu_count(), "jax_version": jax.__version__,
      "jdec_version": jdec.__version__, "date": time.strftime("%Y-%m-%d"),
      "versions": package_versions(("jaxlib", "flax", "optax", "torch", "keras", "clustpy")),
  })
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  path = workdir / f"bench-{platform.node()}-{out['date']}.json"
  path.write_text(json.dumps(out, indent=2, default=str))
  print(table(rows))
  print(f"wrote {path}")
  return out


def ratios(rows: list[dict]) -> dict:
  """jdec's throughput over the ceiling's and the peers', per phase.

  Each row is compared with the jdec row that does the same work (its ``vs``).
  """
  epoch = {(r["name"], r["phase"]): r["epoch_s"] for r in rows}
  out = {}
  for r in rows:
    label = {"ceiling (bare jitted step)": "of_ceiling", "plain PyTorch loop": "x_torch",
             "Keras 3 (JAX backend)": "x_keras", "ClustPy DEC": "x_clustpy"}.get(r["name"])
    mine = epoch.get((r.get("vs", "jdec"), r["phase"]))
    if label and mine:
      out[f"{r['phase']}_{label}"] = r["epoch_s"] / mine
  return out


def table(rows: list[dict]) -> str:
  """Markdown table; the last column is the row's time over its jdec row's."""
  epoch = {(r["name"], r["phase"]): r["epoch_s"] for r in rows}
  lines = [f"| {'run':<28} | {'phase':<8} | {'s / epoch':>9} | {'samples / s':>11} | "
           f"{'jdec speed-up':>13} | compared with |", "|" + "---|" * 6]
  for r in rows:
    vs = r.get("vs", "jdec")
    mine = epoch.get((vs, r["phase"]))
    ratio = f"{r['epoch_s'] / mine:12.2f}x" if mine and r["name"] != vs else f"{'':>13}"
    lines.append(f"| {r['name']:<28} | {r['phase']:<8} | {r['epoch_s']:9.2f} | "
                 f"{r['samples_per_s']:11.0f} | {ratio} | {vs if r['name'] != vs else ''} |")
  return "\n".join(lines)


def package_versions(names) -> dict:
  """``{name: version}`` of the installed packages among ``names`` (the others left out)."""
  versions = {}
  for name in names:
    try:
      versions[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      pass
  return versions


def main():
  cli.main(get_config, run, default_workdir="experiments/results")


if __name__ == "__main__":
  main()
