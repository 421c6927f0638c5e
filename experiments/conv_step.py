"""Time per training step of the convolutional autoencoder: lax vs im2col convolutions.

    python experiments/conv_step.py --batch 256 --steps 20 --image 28

Each model takes ``--steps`` Adam steps on the mean squared reconstruction error
inside one jitted ``jax.lax.scan`` (``jdec.scan.compile_scan``, batches drawn
from a random array on the device). The table gives the median wall and CPU
milliseconds per step over ``--repeats`` calls after a compiling one, the
step's FLOPs (counted from the layer shapes: forward, kernel gradient and input
gradient of every layer but the first) and the ceiling those FLOPs allow at
``--peak_gflops``. The fully connected d-500-500-2000-10 autoencoder is timed
the same way for comparison. With ``--augment`` each model is also timed with
DEC-DA's augmentation in its (pretraining) step (``jdec.augment.augment_flat``,
rotation up to 10 degrees, shifts up to 10%), plain and augmented calls
alternating, with the median and quartiles of the paired differences; and the
jitted augmentation alone on one batch. On a shared machine compare rows of one run: the
load average is printed, and CPU time exceeding wall time shows both cores at
work.
"""

import argparse
import functools
import os
import subprocess
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jdec import augment as augment_lib
from jdec import conv, models, train
from jdec import scan as scan_lib


def cpu_model() -> str:
  """``lscpu``'s model name and CPU count."""
  try:
    out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
  except (OSError, subprocess.CalledProcessError):
    return "unknown (no lscpu)"
  fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
  flags = fields.get("Flags", "")
  isa = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
  return f"{fields.get('Model name', '?').strip()}, {fields.get('CPU(s)', '?').strip()} CPUs, {isa}"


def cae_flops(side: int, batch: int, filters=(32, 64, 128), embed: int = 10) -> float:
  """FLOPs of one CAE training step: 2 per multiply-add, 3 products per layer."""
  macs, chans = [], (1, *filters)
  for i, p in enumerate(conv.cae_plan((side, side, 1), filters)):
    conv_macs = np.prod(p["out_hw"]) * p["kernel"] ** 2 * chans[i] * chans[i + 1]
    macs += [conv_macs, conv_macs]  # the conv and its mirror, the transposed conv
  dense = np.prod(conv.cae_plan((side, side, 1), filters)[-1]["out_hw"]) * filters[-1] * embed
  first = macs[0]  # conv1 needs no input gradient
  return 2.0 * batch * (3 * (sum(macs) + 2 * dense) - first - dense)


def fc_flops(dims, batch: int) -> float:
  """FLOPs of one step of the symmetric fully connected autoencoder."""
  widths = list(dims) + list(dims[-2::-1])
  macs = [a * b for a, b in zip(widths[:-1], widths[1:])]
  return 2.0 * batch * (3 * sum(macs) - macs[0])


def time_model(model, input_dim: int, *, batch: int, steps: int, repeats: int,
               n_rows: int = 4096, augment=None) -> dict:
  """Wall and CPU seconds per step inside one scan of ``steps`` steps.

  With ``augment`` (``(key, x) -> x``, applied to each batch inside the step) the
  plain and the augmented scan are both compiled, then called alternately
  (plain, augmented, plain, ...) so that both see the same machine load.

  Returns:
    ``{"wall", "cpu"}`` medians over ``repeats`` calls, and with ``augment``
    also ``"aug_wall"``, ``"aug_cpu"`` and ``"extra"``: the median, 25th and
    75th percentile of the paired differences (augmented minus plain call).
  """
  key = jax.random.key(0)
  data = jax.random.uniform(key, (n_rows, input_dim))
  params = models.init_autoencoder(key, model, input_dim)
  tx = optax.adam(1e-3)
  variants = [None] if augment is None else [None, augment]
  scans = [scan_lib.compile_scan(functools.partial(train.reconstruction_step, augment=a),
                                 num_steps=steps, batch_size=batch) for a in variants]
  args = (data, key, jnp.asarray(0), jnp.asarray(steps))
  fresh = lambda: train.create_state(model.apply, jax.tree.map(jnp.copy, params), tx)
  for scan in scans:
    jax.block_until_ready(scan(fresh(), *args))  # compile
  wall, cpu = [[] for _ in scans], [[] for _ in scans]
  for _ in range(repeats):
    for i, scan in enumerate(scans):
      state = jax.block_until_ready(fresh())
      t0, c0 = time.perf_counter(), time.process_time()
      jax.block_until_ready(scan(state, *args))
      wall[i].append((time.perf_counter() - t0) / steps)
      cpu[i].append((time.process_time() - c0) / steps)
  out = {"wall": float(np.median(wall[0])), "cpu": float(np.median(cpu[0]))}
  if augment is not None:
    diff = np.asarray(wall[1]) - np.asarray(wall[0])
    out.update(aug_wall=float(np.median(wall[1])), aug_cpu=float(np.median(cpu[1])),
               extra=tuple(float(v) for v in np.percentile(diff, (50, 25, 75))))
  return out


def time_augment(side: int, batch: int, repeats: int, calls: int = 20) -> float:
  """Median wall seconds of the jitted augmentation alone on one ``[batch, side*side]`` batch."""
  aug = jax.jit(functools.partial(augment_lib.augment_flat, image_shape=(side, side, 1)))
  key = jax.random.key(0)
  x = jax.random.uniform(key, (batch, side * side))
  jax.block_until_ready(aug(key, x))  # compile
  times = []
  for r in range(repeats):
    t0 = time.perf_counter()
    for i in range(calls):
      out = aug(jax.random.fold_in(key, r * calls + i), x)
    jax.block_until_ready(out)
    times.append((time.perf_counter() - t0) / calls)
  return float(np.median(times))


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=int, default=256)
  parser.add_argument("--steps", type=int, default=20)
  parser.add_argument("--lax_steps", type=int, default=3, help="steps for the slow lax path")
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--image", type=int, default=28, help="side of the square 1-channel images")
  parser.add_argument("--peak_gflops", type=float, default=146.0,
                      help="rate for the ceiling column (2 cores x 2.3 GHz x 32 FLOP/cycle)")
  parser.add_argument("--skip", default="", help="rows to skip, comma-separated: lax,im2col,fc")
  parser.add_argument("--augment", action="store_true",
                      help="also time each model with DEC-DA's augmentation in the step")
  args = parser.parse_args()
  side, skip = args.image, set(filter(None, args.skip.split(",")))
  d, fc_dims = side * side, (500, 500, 2000, 10)
  rows = [
      ("lax", "CAE, conv_impl=lax", conv.ConvAutoEncoder((side, side, 1), conv_impl="lax"),
       args.lax_steps, cae_flops(side, args.batch)),
      ("im2col", "CAE, conv_impl=im2col",
       conv.ConvAutoEncoder((side, side, 1), conv_impl="im2col"), args.steps,
       cae_flops(side, args.batch)),
      ("fc", f"FC AE {d}-500-500-2000-10", models.AutoEncoder(d, fc_dims), args.steps,
       fc_flops((d, *fc_dims), args.batch)),
  ]
  print(f"CPU: {cpu_model()}; jax {jax.__version__}; load average "
        f"{' '.join(f'{v:.1f}' for v in os.getloadavg())}")
  print(f"batch {args.batch} of {side}x{side}x1, Adam, MSE, steps in one lax.scan, "
        f"median of {args.repeats} calls; ceiling at {args.peak_gflops:.0f} GFLOP/s")
  print(f"{'model':<28} {'steps':>5} {'wall ms':>8} {'cpu ms':>8} {'GFLOP':>6} "
        f"{'ceiling ms':>10} {'x ceiling':>9}")
  if args.augment:
    print(f"augmentation alone (jitted, one batch of {args.batch} {side}x{side}x1): "
          f"{time_augment(side, args.batch, args.repeats) * 1e3:.2f} ms", flush=True)
  for tag, name, model, steps, flops in rows:
    if tag in skip:
      continue
    aug = (functools.partial(augment_lib.augment_flat, image_shape=(side, side, 1))
           if args.augment else None)
    t = time_model(model, d, batch=args.batch, steps=steps, repeats=args.repeats, augment=aug)
    ceiling = flops / (args.peak_gflops * 1e9)
    print(f"{name:<28} {steps:>5} {t['wall'] * 1e3:>8.2f} {t['cpu'] * 1e3:>8.2f} "
          f"{flops / 1e9:>6.2f} {ceiling * 1e3:>10.1f} {t['wall'] / ceiling:>9.2f}", flush=True)
    if aug is not None:
      mid, lo, hi = (v * 1e3 for v in t["extra"])
      print(f"{'  + augmentation':<28} {steps:>5} {t['aug_wall'] * 1e3:>8.2f} "
            f"{t['aug_cpu'] * 1e3:>8.2f} {'':>6} {'':>10} {t['aug_wall'] / ceiling:>9.2f}   "
            f"augmented minus plain, paired calls: median {mid:+.2f} ms "
            f"(quartiles {lo:+.2f} to {hi:+.2f})", flush=True)

if __name__ == "__main__":
  main()
