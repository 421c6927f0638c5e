"""Pictures of a clustering: the aligned confusion matrix, a gallery of each cluster's
most confident images, a 2-D map of the embedding and the training curves.

Figures are built with ``matplotlib.figure.Figure`` and written by the Agg
canvas: importing or using this module never changes matplotlib's backend or
pyplot's state. Each ``*_figure`` returns a ``Figure`` (show it in a notebook
by evaluating it); each ``save_*`` writes a PNG.
"""

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from jdec import metrics

MAX_MAP_POINTS = 5000  # rows drawn in the embedding map
MAP_METHODS = ("tsne", "pca")


def _save(fig: Figure, path, dpi: int = 120) -> None:
  FigureCanvasAgg(fig)
  fig.savefig(path, dpi=dpi)


def aligned_confusion(y_true, y_pred) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Confusion matrix ``[n_classes, n_clusters]`` with columns ordered by the
  Hungarian map, so a perfect clustering is diagonal.

  Returns:
    ``(matrix, classes, clusters)``: the counts and the labels of rows and columns.
  """
  table, clusters, classes = metrics.contingency(y_true, y_pred)
  mapping = metrics.hungarian_map(y_true, y_pred)
  class_pos = {c: i for i, c in enumerate(classes)}
  # Matched clusters first, in the order of their class; unmatched ones last.
  order = sorted(range(len(clusters)),
                 key=lambda j: class_pos.get(mapping.get(clusters[j].item()), len(classes) + j))
  return table.T[:, order], classes, clusters[order]


def confusion_matrix_figure(y_true, y_pred, title: str = "") -> Figure:
  """A heat map of ``aligned_confusion`` with every count written in its cell."""
  matrix, classes, clusters = aligned_confusion(y_true, y_pred)
  size = max(4.0, 0.6 * max(matrix.shape) + 1.5)
  fig = Figure(figsize=(size, size * 0.9))
  ax = fig.subplots()
  ax.imshow(matrix, cmap="Blues")
  threshold = matrix.max() / 2 if matrix.size else 0
  for (i, j), count in np.ndenumerate(matrix):
    ax.text(j, i, str(count), ha="center", va="center", fontsize=7,
            color="white" if count > threshold else "black")
  ax.set_xticks(range(len(clusters)), [str(c) for c in clusters])
  ax.set_yticks(range(len(classes)), [str(c) for c in classes])
  ax.set_xlabel("cluster (matched to classes by the Hungarian algorithm)")
  ax.set_ylabel("true class")
  acc = metrics.cluster_acc(y_true, y_pred)
  ax.set_title(f"{title} ACC {acc:.4f}".strip())
  fig.tight_layout()
  return fig


def save_confusion_matrix(path, y_true, y_pred, title: str = "") -> None:
  """Writes the aligned confusion matrix to ``path`` (PNG)."""
  _save(confusion_matrix_figure(y_true, y_pred, title), path)


def most_confident(q: np.ndarray, per_cluster: int) -> list[np.ndarray]:
  """For each cluster ``j``: the indices of up to ``per_cluster`` rows assigned to it
  (argmax of ``q``), most confident (highest ``q[:, j]``) first."""
  q = np.asarray(q)
  labels = q.argmax(1)
  out = []
  for j in range(q.shape[1]):
    rows = np.flatnonzero(labels == j)
    out.append(rows[np.argsort(-q[rows, j], kind="stable")][:per_cluster])
  return out


def cluster_gallery_figure(images, q, per_cluster: int = 10, title: str = "") -> Figure:
  """One row per cluster of its ``per_cluster`` most confident images (the DEC paper's figure).

  Args:
    images: ``[n, h, w]`` or ``[n, h, w, c]`` (c = 1 or 3).
    q: ``[n, k]`` soft assignments.
  """
  images = np.asarray(images, np.float64)
  if images.ndim not in (3, 4):
    raise ValueError(f"images must be [n, h, w] or [n, h, w, c], got shape {images.shape}")
  if images.ndim == 4 and images.shape[-1] not in (3, 4):
    images = images[..., 0]  # one channel (or the first of an unusual number) in grey
  if images.ndim == 4:  # colour: matplotlib wants [0, 1]
    lo, hi = images.min(), images.max()
    images = (images - lo) / (hi - lo if hi > lo else 1.0)
  rows = most_confident(q, per_cluster)
  fig = Figure(figsize=(0.8 * per_cluster + 0.8, 0.8 * len(rows) + 0.6))
  ax = fig.add_subplot()
  grey = images.ndim == 3
  mosaic = gallery_mosaic(images, rows, per_cluster)
  if not grey:  # colour: the blanks transparent (matplotlib masks only single values)
    shown = (~np.ma.getmaskarray(mosaic)[..., 0]).astype(np.float64)
    if mosaic.shape[-1] == 4:
      shown *= mosaic.filled(0)[..., 3]
    mosaic = np.dstack([mosaic.filled(0)[..., :3], shown])
  ax.imshow(mosaic, cmap="gray_r" if grey else None,
            vmin=float(images.min()) if grey else None,
            vmax=float(images.max()) if grey else None, interpolation="nearest")
  h = images.shape[1] + 1  # a row of images and the gap below it
  sizes = np.bincount(np.asarray(q).argmax(1), minlength=len(rows))
  ax.set_yticks([j * h + (h - 1) / 2 for j in range(len(rows))],
                [f"{j} ({sizes[j]})" for j in range(len(rows))], fontsize=8)
  ax.set_xticks([])
  ax.tick_params(length=0)
  for spine in ax.spines.values():
    spine.set_visible(False)
  ax.set_title(title or "most confident members of each cluster (cluster, size)", fontsize=9)
  fig.subplots_adjust(left=0.12, right=0.99, bottom=0.01, top=1 - 0.35 / (0.8 * len(rows) + 0.6))
  return fig


def gallery_mosaic(images: np.ndarray, rows: list, per_cluster: int) -> np.ma.MaskedArray:
  """The gallery as one picture: cluster ``j``'s images ``images[rows[j]]`` side by
  side in row ``j``, one blank pixel between images; blanks (gaps, clusters
  with fewer members) are masked, so they show as the background.

  Args:
    images: ``[n, h, w]`` or ``[n, h, w, c]``.
    rows: ``k`` index arrays, each of at most ``per_cluster`` rows of ``images``.

  Returns:
    ``[k * (h + 1) - 1, per_cluster * (w + 1) - 1 (, c)]``.
  """
  h, w = images.shape[1:3]
  shape = (len(rows) * (h + 1) - 1, per_cluster * (w + 1) - 1, *images.shape[3:])
  mosaic = np.full(shape, np.nan)  # NaN under the mask: nothing to overflow a colormap
  for j, picked in enumerate(rows):
    for i, row in enumerate(picked[:per_cluster]):
      mosaic[j * (h + 1):j * (h + 1) + h, i * (w + 1):i * (w + 1) + w] = images[row]
  return np.ma.masked_invalid(mosaic)


def save_cluster_gallery(path, images, q, per_cluster: int = 10, title: str = "") -> None:
  """Writes ``cluster_gallery_figure`` to ``path`` (PNG)."""
  _save(cluster_gallery_figure(images, q, per_cluster, title), path)


def embedding_map(z, method: str = "tsne", max_points: int = MAX_MAP_POINTS,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """``(rows, xy)``: up to ``max_points`` rows of ``z [n, e]`` (a seeded random choice)
  and their 2-D map ``[m, 2]`` by t-SNE or PCA (scikit-learn)."""
  from sklearn.decomposition import PCA  # pylint: disable=import-outside-toplevel
  from sklearn.manifold import TSNE  # pylint: disable=import-outside-toplevel

  if method not in MAP_METHODS:
    raise ValueError(f"unknown map method {method!r}; use one of {list(MAP_METHODS)}")
  z = np.asarray(z, np.float64)
  n = z.shape[0]
  rows = np.arange(n)
  if n > max_points:
    rows = np.sort(np.random.default_rng(seed).choice(n, max_points, replace=False))
  z = z[rows]
  if z.shape[1] <= 2:
    xy = np.pad(z, ((0, 0), (0, 2 - z.shape[1])))
  elif len(rows) < 3:  # too few rows for a map
    xy = np.zeros((len(rows), 2))
  elif method == "pca" or len(rows) < 5:
    xy = PCA(2, random_state=seed).fit_transform(z)
  else:
    xy = TSNE(2, perplexity=min(30.0, (len(rows) - 1) / 3), init="pca",
              random_state=seed).fit_transform(z)
  return rows, xy


def embedding_figure(z, labels, y=None, method: str = "tsne",
                     max_points: int = MAX_MAP_POINTS, seed: int = 0, title: str = "") -> Figure:
  """The embedding's 2-D map coloured by cluster, and by true class when ``y`` is given."""
  rows, xy = embedding_map(z, method, max_points, seed)
  panels = [("cluster", np.asarray(labels)[rows])]
  if y is not None:
    panels.append(("true class", np.asarray(y)[rows]))
  fig = Figure(figsize=(5.2 * len(panels), 5.0))
  axes = np.atleast_1d(fig.subplots(1, len(panels)))
  for ax, (name, colour) in zip(axes, panels):
    values = np.unique(colour)
    cmap = "tab10" if len(values) <= 10 else "tab20"
    ax.scatter(xy[:, 0], xy[:, 1], c=colour, cmap=cmap, s=3, linewidths=0)
    for v in values:  # each group's label at its median
      centre = np.median(xy[colour == v], axis=0)
      ax.text(centre[0], centre[1], str(v), fontsize=9, weight="bold", ha="center",
              va="center", bbox=dict(boxstyle="round,pad=0.1", fc="white", alpha=0.6, lw=0))
    ax.set_title(f"coloured by {name}", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
  method_name = "t-SNE" if method == "tsne" and z.shape[1] > 2 else "PCA"
  fig.suptitle(f"{title} embedding, {method_name} of {len(rows)} rows".strip(), fontsize=10)
  fig.tight_layout()
  return fig


def save_embedding(path, z, labels, y=None, method: str = "tsne",
                   max_points: int = MAX_MAP_POINTS, seed: int = 0, title: str = "") -> None:
  """Writes ``embedding_figure`` to ``path`` (PNG)."""
  _save(embedding_figure(z, labels, y, method, max_points, seed, title), path)


def training_curves_figure(records: list[dict], title: str = "") -> Figure:
  """Pretraining loss per epoch (or logged step), and per DEC update its loss, the
  fraction of labels that changed, ACC/NMI when known and the smallest cluster's
  share of the rows (a red x where a cluster is empty); one line per seed."""
  by_seed: dict = {}
  for r in records:
    by_seed.setdefault(r.get("seed"), []).append(r)
  fig = Figure(figsize=(16, 3.6))
  ax_pre, ax_loss, ax_delta, ax_score, ax_size = fig.subplots(1, 5)
  n_clusters = None
  for seed, rs in sorted(by_seed.items(), key=lambda kv: (kv[0] is None, kv[0])):
    tag = "" if seed is None else f"seed {seed}"
    # End-to-end pretraining logs epochs; layer-wise ("pretrain_layer<i>",
    # "pretrain_finetune") logs steps.
    pre = [r for r in rs if str(r.get("phase", "")).startswith("pretrain")
           and r.get("loss") is not None]
    if pre:
      xkey = "epoch" if all("epoch" in r for r in pre) else "step"
      ax_pre.plot([r.get(xkey, 0) for r in pre], [r["loss"] for r in pre], marker=".",
                  label=tag)
      ax_pre.set_xlabel(xkey)
    dec = [r for r in rs if r.get("phase") == "dec"]
    its = [r["iteration"] for r in dec]
    loss = [(r["iteration"], r["loss"]) for r in dec if r.get("loss") is not None]
    if loss:
      ax_loss.plot(*zip(*loss), marker=".", label=tag)
    delta = [(r["iteration"], r["delta_label"]) for r in dec if r.get("delta_label") is not None]
    if delta:
      ax_delta.plot(*zip(*delta), marker=".", label=tag)
    for name, style in (("acc", "-"), ("nmi", "--")):
      if dec and all(name in r for r in dec):
        ax_score.plot(its, [r[name] for r in dec], style, marker=".",
                      label=f"{name.upper()} {tag}".strip())
    sizes = [(r["iteration"], r["cluster_sizes"]) for r in dec if r.get("cluster_sizes")]
    if sizes:
      n_clusters = len(sizes[0][1])
      share = [(i, min(c) / max(sum(c), 1)) for i, c in sizes]
      ax_size.plot(*zip(*share), marker=".", label=tag)
      dead = [i for i, c in sizes if min(c) == 0]
      if dead:
        ax_size.plot(dead, [0.0] * len(dead), "x", color="red", markersize=8,
                     label=f"empty cluster {tag}".strip())
  ax_pre.set_title("pretraining loss (MSE)", fontsize=9)
  ax_pre.set_yscale("log")
  ax_loss.set_title("clustering loss per update", fontsize=9)
  ax_delta.set_title("fraction of labels changed", fontsize=9)
  ax_score.set_title("ACC / NMI per update", fontsize=9)
  ax_size.set_title("smallest cluster (share of rows)", fontsize=9)
  if n_clusters:
    ax_size.axhline(1.0 / n_clusters, linestyle=":", color="grey", label="1/k (balanced)")
    ax_size.set_ylim(bottom=-0.01)
  for ax in (ax_loss, ax_delta, ax_score, ax_size):
    ax.set_xlabel("DEC iteration")
  for ax in (ax_pre, ax_loss, ax_delta, ax_score, ax_size):
    if ax.get_legend_handles_labels()[0] and any(ax.get_legend_handles_labels()[1]):
      ax.legend(fontsize=7)
  if not ax_score.lines:
    ax_score.text(0.5, 0.5, "no true labels", ha="center", va="center",
                  transform=ax_score.transAxes)
  if title:
    fig.suptitle(title, fontsize=10)
  fig.tight_layout()
  return fig


def save_training_curves(path, records: list[dict], title: str = "") -> None:
  """Writes ``training_curves_figure`` to ``path`` (PNG)."""
  _save(training_curves_figure(records, title), path, dpi=100)
