"""Time per training step of the convolutional autoencoder: lax vs im2col convolutions.

    python experiments/conv_step.py --batch 256 --steps 20 --image 28

Each model takes ``--steps`` Adam steps on the mean squared reconstruction error
inside one jitted ``jax.lax.scan`` (batches drawn from a random array on the
device); the table gives the median milliseconds per step over ``--repeats``
calls after a compiling one. The fully connected d-500-500-2000-10
autoencoder is timed the same way for comparison; the ceiling column is the
step's FLOP count at the given rate (``--gflops``, e.g. the machine's peak).
"""

import argparse
import functools
import subprocess
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jdec import conv, models, train


def _cpu_model() -> str:
  try:
    out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
  except (OSError, subprocess.CalledProcessError):
    return "unknown (no lscpu)"
  fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
  return (f"{fields.get('Model name', '?').strip()}, {fields.get('CPU(s)', '?').strip()} CPUs, "
          f"backend {jax.default_backend()}")


def time_model(model, input_dim: int, *, batch: int, steps: int, repeats: int,
               n_rows: int = 4096) -> tuple[float, float]:
  """Median seconds per step, and the step's FLOPs (XLA's count per step)."""
  key = jax.random.key(0)
  data = jax.random.uniform(key, (n_rows, input_dim))
  params = models.init_autoencoder(key, model, input_dim)
  tx = optax.adam(1e-3)
  scan = train.compile_scan(train.reconstruction_step, num_steps=steps, batch_size=batch)

  def fresh():
    return train.create_state(model.apply, jax.tree.map(jnp.copy, params), tx)

  args = (data, key, jnp.asarray(0), jnp.asarray(steps))
  state, m = scan(fresh(), *args)
  jax.block_until_ready(m)
  times = []
  for _ in range(repeats):
    s = fresh()
    t0 = time.perf_counter()
    _, m = scan(s, *args)
    jax.block_until_ready(m)
    times.append((time.perf_counter() - t0) / steps)
  step = jax.jit(functools.partial(train.reconstruction_step, key=key))
  cost = step.lower(fresh(), data[:batch]).compile().cost_analysis()
  cost = cost[0] if isinstance(cost, list) else cost
  return float(np.median(times)), float(cost.get("flops", np.nan))


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=int, default=256)
  parser.add_argument("--steps", type=int, default=20)
  parser.add_argument("--lax_steps", type=int, default=3, help="steps for the slow lax path")
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--image", type=int, default=28, help="side of the square 1-channel images")
  parser.add_argument("--gflops", type=float, default=146.0,
                      help="rate for the ceiling column, GFLOP/s")
  parser.add_argument("--skip", default="", help="comma-separated rows to skip: lax,im2col,fc")
  args = parser.parse_args()
  side, skip = args.image, set(filter(None, args.skip.split(",")))
  d = side * side
  rows = {
      "CAE, conv_impl=lax": (conv.ConvAutoEncoder((side, side, 1), conv_impl="lax"),
                             args.lax_steps, "lax"),
      "CAE, conv_impl=im2col": (conv.ConvAutoEncoder((side, side, 1), conv_impl="im2col"),
                                args.steps, "im2col"),
      f"FC AE {d}-500-500-2000-10": (models.AutoEncoder(d, (500, 500, 2000, 10)),
                                     args.steps, "fc"),
  }
  print(f"CPU: {_cpu_model()}; jax {jax.__version__}")
  print(f"batch {args.batch}, {side}x{side}x1, Adam, MSE, steps inside one lax.scan, "
        f"median of {args.repeats}")
  print(f"{'model':<30} {'steps':>5} {'ms/step':>9} {'MFLOP/step':>11} "
        f"{'ceiling ms':>11} {'x ceiling':>9}")
  for name, (model, steps, tag) in rows.items():
    if tag in skip:
      continue
    sec, flops = time_model(model, d, batch=args.batch, steps=steps, repeats=args.repeats)
    ceiling = flops / (args.gflops * 1e9)
    print(f"{name:<30} {steps:>5} {sec * 1e3:>9.1f} {flops / 1e6:>11.0f} "
          f"{ceiling * 1e3:>11.1f} {sec / ceiling:>9.2f}", flush=True)


if __name__ == "__main__":
  main()
