"""Wall seconds until a finished run's ACC first reaches given levels, from its work directory.

  python experiments/time_to_accuracy.py runs/usps-dec_da [more work directories] \
      [--levels 0.90,0.95]

The clock starts with pretraining: a level first met at DEC update ``i`` is reached
after ``time_pretrain_s + time_kmeans_s`` plus that update's ``wall_s`` (seconds since
DEC began). In a seed sweep all seeds share the sweep's pretraining and k-means time,
and the DEC clock is the sweep's, so a seed's time includes the work on the other seeds.
"""

import argparse
import pathlib

from jdec import report, runfiles


def time_to_accuracy(workdir, levels=(0.90, 0.95)) -> list[dict]:
  """One row per seed: ``{"seed", "final_acc", "t_<level>": seconds or None}``."""
  workdir = pathlib.Path(workdir)
  if not (workdir / "results.json").exists():
    raise FileNotFoundError(f"{workdir} holds no results.json: the run is not finished (or "
                            "this is not a work directory)")
  results = runfiles.read_json(workdir / "results.json", ("time_pretrain_s", "time_kmeans_s"),
                               advice="restore it from a copy")
  lead = results["time_pretrain_s"] + results["time_kmeans_s"]
  records = report.read_records(workdir)
  seeds = results.get("seeds") or [results["seed"]]
  per_seed = {r["seed"]: r for r in results.get("per_seed", [results])}
  rows = []
  for seed in seeds:
    dec = [r for r in records if r.get("phase") == "dec" and r.get("seed", seed) == seed
           and r.get("acc") is not None]
    row = {"seed": seed, "final_acc": per_seed[seed].get("acc")}
    for level in levels:
      hit = next((r for r in dec if r["acc"] >= level), None)
      row[f"t_{level:.2f}"] = None if hit is None else lead + hit["wall_s"]
    rows.append(row)
  return rows


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("workdirs", nargs="+")
  parser.add_argument("--levels", default="0.90,0.95")
  args = parser.parse_args()
  levels = [float(v) for v in args.levels.split(",")]
  for workdir in args.workdirs:
    print(workdir)
    for row in time_to_accuracy(workdir, levels):
      final = "n/a (no labels)" if row["final_acc"] is None else f"{row['final_acc']:.4f}"
      cells = [f"seed {row['seed']}", f"final ACC {final}"]
      for level in levels:
        t = row[f"t_{level:.2f}"]
        cells.append(f"ACC>={level:.2f}: " + ("never" if t is None else f"{t:.0f} s"))
      print("  " + " | ".join(cells))


if __name__ == "__main__":
  main()
