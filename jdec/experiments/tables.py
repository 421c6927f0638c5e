"""The plain-text tables an experiment prints: one run's scores, a sweep's summary."""

SCORED = ("acc", "nmi", "nmi_geometric", "ari", "ae_kmeans_acc", "ae_kmeans_nmi",
           "ae_kmeans_ari", "kmeans_raw_acc", "kmeans_raw_nmi")


def sweep_table(results: dict) -> str:
  """Mean, sd, min and max over the seeds, then one line per seed."""
  lines = [f"{results['dataset']} | recipe {results['recipe']} | seeds {results['seeds']} "
           f"| n={results['n_samples']} | {results.get('device')}",
           f"  {'':<18} {'mean':>7} {'sd':>7} {'min':>7} {'max':>7}"]
  for name, s in results["summary"].items():
    lines.append(f"  {name:<18} {s['mean']:7.4f} {s['sd']:7.4f} {s['min']:7.4f} {s['max']:7.4f}")
  for r in results["per_seed"]:
    lines.append(f"  seed {r['seed']:<4} ACC {r.get('acc', float('nan')):.4f}  "
                 f"iterations {r['iterations']} ({r['stopped_by']})")
  lines.append(f"  time: pretraining {results['time_pretrain_s']:.1f} s, k-means "
               f"{results['time_kmeans_s']:.1f} s, DEC {results['time_dec_s']:.1f} s "
               f"(all seeds together)")
  return "\n".join(lines)


def summary_table(results: dict) -> str:
  """A short plain-text table of the scores and timings."""
  rows = [("k-means on raw input ACC", results.get("kmeans_raw_acc")),
          ("AE + k-means ACC", results.get("ae_kmeans_acc")),
          ("DEC ACC", results.get("acc")), ("DEC NMI (arithmetic)", results.get("nmi")),
          ("DEC NMI (geometric)", results.get("nmi_geometric")),
          ("DEC ARI", results.get("ari")),
          ("DEC iterations", results.get("iterations")),
          ("stopped by", results.get("stopped_by")),
          ("pretraining (s)", results.get("time_pretrain_s")),
          ("k-means (s)", results.get("time_kmeans_s")),
          ("DEC (s)", results.get("time_dec_s"))]
  lines = [f"{results['dataset']} | recipe {results['recipe']} | seed {results['seed']} "
           f"| n={results['n_samples']} | {results.get('device')}"]
  for name, value in rows:
    if value is not None:
      lines.append(f"  {name:<26} {value:.4f}" if isinstance(value, float) else f"  {name:<26} {value}")
  return "\n".join(lines)
