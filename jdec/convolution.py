"""2-D convolutions and transposed convolutions, NHWC, fast on CPU.

Two implementations with the same parameters (``kernel [kh, kw, cin, cout]``)
and the same outputs, so a model trained with one runs with the other:

- ``"lax"``: XLA's convolutions (``jax.lax.conv_general_dilated``), for GPU and TPU;
- ``"im2col"``: plain matrix products, for CPU, where XLA's convolutions (and
  above all their gradients) are slow on these shapes. A convolution is its
  strided patches ``[n, ho, wo, kh * kw * cin]`` times the kernel
  ``[kh * kw * cin, cout]``. A transposed convolution never multiplies
  inserted zeros: it is split into its ``stride ** 2`` output phases (the
  sub-pixel decomposition, see ``conv_transpose2d``). Custom VJPs make each
  gradient another such product: the input gradient of a convolution is a
  transposed convolution and vice versa. Each call runs over the batch in
  chunks whose patches fit in cache.

A transposed convolution is the gradient of a convolution (as in Keras,
TensorFlow and PyTorch): along each axis, input pixel ``i`` and tap ``a`` add
``x[i] kernel[a]`` to output ``o = stride * i + a - lo``, with ``lo`` the low
padding of the convolution it mirrors.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

IMPLS = ("lax", "im2col")
TRANSPOSE_METHODS = ("auto", "overlap_add", "subpixel")

# Each im2col layer runs over the batch in chunks whose largest intermediate
# (patches, or per-tap products) is about this size, so that it is written and
# read in the (32 MiB) L3 cache rather than memory: MNIST training steps took
# ~10% less time than with whole-batch patches, and 2-16 MiB were all close.
_CHUNK_BYTES = 8 << 20


def resolve_impl(impl: str) -> str:
  """``"auto"`` -> ``"im2col"`` on the CPU backend, ``"lax"`` elsewhere."""
  if impl == "auto":
    return "im2col" if jax.default_backend() == "cpu" else "lax"
  if impl not in IMPLS:
    raise ValueError(f"unknown conv impl {impl!r}; use 'auto', 'lax' or 'im2col'")
  return impl


def conv_geometry(size: int, k: int, stride: int, padding: str) -> tuple[int, int, int]:
  """Output size and ``(lo, hi)`` padding of a convolution along one axis.

  ``"same"`` is TensorFlow's: ``out = ceil(size / stride)``, the padding split
  with the odd pixel at the end.

  Returns:
    ``(out, lo, hi)``.
  """
  if padding == "same":
    out = -(-size // stride)
    total = max((out - 1) * stride + k - size, 0)
    return out, total // 2, total - total // 2
  if padding == "valid":
    return (size - k) // stride + 1, 0, 0
  raise ValueError(f"unknown padding {padding!r}; use 'same' or 'valid'")


def conv_transpose_geometry(size: int, k: int, stride: int, padding: str) -> tuple[int, int]:
  """Output size and low crop ``lo`` of a transposed convolution along one axis.

  It mirrors a convolution with the same ``k``, ``stride`` and ``padding``:
  ``"same"`` gives ``size * stride``, ``"valid"`` ``size * stride + max(k - stride, 0)``
  (Keras' ``Conv2DTranspose`` without ``output_padding``).

  Returns:
    ``(out, lo)``.
  """
  if padding == "same":
    return size * stride, max(k - stride, 0) // 2
  if padding == "valid":
    return size * stride + max(k - stride, 0), 0
  raise ValueError(f"unknown padding {padding!r}; use 'same' or 'valid'")


def _dot(a: jax.Array, b: jax.Array, dtype=None) -> jax.Array:
  """``a [m, k] @ b [k, n]``."""
  return jax.lax.dot_general(a, b, (((1,), (0,)), ((), ())), preferred_element_type=dtype)


def _grad_dot(a: jax.Array, b: jax.Array) -> jax.Array:
  """``a^T b`` in float32 for ``a [m, k]``, ``b [m, n]``: a kernel's gradient.

  XLA folds a transpose into the product as a contraction over rows, which
  its CPU backend runs 2-7% slower than a row-major ``[k, m] @ [m, n]`` when
  ``n`` is wide (and a little faster when it is thin): materialise ``a^T``
  (a thin copy) for the wide ones.
  """
  if b.shape[1] >= 64:
    return _dot(jax.lax.optimization_barrier(a.T), b, jnp.float32)
  return jax.lax.dot_general(a, b, (((0,), (0,)), ((), ())),
                             preferred_element_type=jnp.float32)


def _pad(x: jax.Array, pads) -> jax.Array:
  """Pads (negative: crops) the two spatial axes of ``x [n, h, w, c]``."""
  (lo_h, hi_h), (lo_w, hi_w) = pads
  return jax.lax.pad(x, jnp.zeros((), x.dtype),
                     ((0, 0, 0), (lo_h, hi_h, 0), (lo_w, hi_w, 0), (0, 0, 0)))


def _im2col(x: jax.Array, kh: int, kw: int, stride: int, pads) -> jax.Array:
  """Patches ``[n, ho, wo, kh * kw * c]`` of ``x [n, h, w, c]`` padded by ``pads``.

  The last axis is ordered ``(tap row, tap column, channel)``, as a kernel
  ``[kh, kw, c, cout]`` reshaped to ``[kh * kw * c, cout]``.
  """
  x = _pad(x, pads)
  n, h, w, c = x.shape
  ho, wo = (h - kh) // stride + 1, (w - kw) // stride + 1
  # Columns first, then rows: kh + kw strided slices instead of kh * kw
  # (as fast, and half the kernels for XLA to compile).
  x = _concat([jax.lax.slice(x, (0, 0, b, 0), (n, h, b + stride * (wo - 1) + 1, c),
                             (1, 1, stride, 1)) for b in range(kw)])
  return _concat([jax.lax.slice(x, (0, a, 0, 0), (n, a + stride * (ho - 1) + 1, wo, kw * c),
                                (1, stride, 1, 1)) for a in range(kh)])


def _concat(parts: list) -> jax.Array:
  return parts[0] if len(parts) == 1 else jnp.concatenate(parts, axis=-1)


def _swap_io(kernel: jax.Array) -> jax.Array:
  """``[kh, kw, cin, cout] -> [kh, kw, cout, cin]``."""
  return kernel.transpose(0, 1, 3, 2)


def _over_batch(fn, xs: tuple, image_bytes: int):
  """``fn(*xs) -> (rows, sums)`` over chunks of the batch (axis 0 of each ``xs``).

  ``rows`` (per-image outputs) are concatenated and ``sums`` (a kernel's
  gradient) added over chunks of about ``_CHUNK_BYTES / image_bytes`` images,
  run by a ``jax.lax.scan``; a chunk size that divides the batch is preferred,
  else a last, smaller chunk takes the rest.
  """
  n = xs[0].shape[0]
  size = max(1, _CHUNK_BYTES // max(image_bytes, 1))
  divisor = max(d for d in range(1, min(size, n) + 1) if n % d == 0)
  size = divisor if 2 * divisor > size else size
  m = n // size
  if m <= 1:
    return fn(*xs)

  def body(total, chunk):
    rows, sums = fn(*chunk)
    return jax.tree.map(jnp.add, total, sums), rows

  head = tuple(x[:m * size].reshape(m, size, *x.shape[1:]) for x in xs)
  zeros = jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype),
                       jax.eval_shape(fn, *(x[0] for x in head))[1])
  sums, rows = jax.lax.scan(body, zeros, head)
  rows = jax.tree.map(lambda a: a.reshape(m * size, *a.shape[2:]), rows)
  if m * size < n:
    tail_rows, tail_sums = fn(*(x[m * size:] for x in xs))
    rows = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), rows, tail_rows)
    sums = jax.tree.map(jnp.add, sums, tail_sums)
  return rows, sums


# Convolution: y[o] = sum_a x_pad[stride * o + a] kernel[a] along each axis.

def _corr_impl(x, kernel, stride, pads):
  kh, kw, cin, cout = kernel.shape
  kernel_mat = kernel.reshape(kh * kw * cin, cout)

  def fn(x):
    patches = _im2col(x, kh, kw, stride, pads)
    n, ho, wo, k = patches.shape
    return _dot(patches.reshape(n * ho * wo, k), kernel_mat).reshape(n, ho, wo, cout), ()

  _, h, w, _ = x.shape
  ho = (h + sum(pads[0]) - kh) // stride + 1
  wo = (w + sum(pads[1]) - kw) // stride + 1
  return _over_batch(fn, (x,), ho * wo * kh * kw * cin * x.dtype.itemsize)[0]


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _corr(x, kernel, stride, pads):
  return _corr_impl(x, kernel, stride, pads)


def _corr_fwd(x, kernel, stride, pads):
  return _corr_impl(x, kernel, stride, pads), (x, kernel)


def _corr_bwd(stride, pads, res, g):
  """``d_x``: the transposed convolution of ``g``; ``d_kernel = patches^T g``."""
  x, kernel = res
  kh, kw, cin, cout = kernel.shape
  _, h, w, _ = x.shape
  _, ho, wo, _ = g.shape
  plan = _scatter_plan(g.shape, (kh, kw, cout, cin), stride,
                       ((pads[0][0], h), (pads[1][0], w)), "auto")
  kernel_mat = _scatter_kernel(_swap_io(kernel), stride, plan)

  def fn(x, g):
    patches = _im2col(x, kh, kw, stride, pads)  # recomputed: cheaper than stored
    m = g.shape[0] * ho * wo
    d_kernel = _grad_dot(g.reshape(m, cout), patches.reshape(m, -1))
    return _scatter_apply(g, kernel_mat, (kh, kw), stride, plan), d_kernel

  image_bytes = (ho * wo * kh * kw * cin + plan["image_elems"]) * x.dtype.itemsize
  d_x, d_kernel = _over_batch(fn, (x, g), image_bytes)  # d_kernel [cout, taps]
  return d_x, d_kernel.T.reshape(kernel.shape).astype(kernel.dtype)


_corr.defvjp(_corr_fwd, _corr_bwd)


# Transposed convolution: y[stride * i + a - lo] += x[i] kernel[a] along each
# axis, cropped to [0, out). Output o = stride * q + r (phase r) receives tap
# a = stride * d + r + lo from input i = q - d.

def _phase_taps(size: int, k: int, stride: int, out: int, lo: int):
  """The phases of a transposed convolution along one axis.

  With the input padded by ``pad = (lo_x, hi_x)`` (negative crops), window
  ``t`` of a stride-1 sweep over ``q = ceil(out / stride)`` positions reads
  offset ``d = d_max - t``.

  Returns:
    ``(q, pad, table)`` with ``table [taps, stride]`` the tap ``a`` that
    window ``t`` feeds to phase ``r``, or ``-1`` for none.
  """
  offsets = {}
  for a in range(k):
    r = (a - lo) % stride
    offsets[(r, (a - lo - r) // stride)] = a
  ds = [d for _, d in offsets]
  d_min, d_max = min(ds), max(ds)
  table = np.full((d_max - d_min + 1, stride), -1)
  for (r, d), a in offsets.items():
    table[d_max - d, r] = a
  q = -(-out // stride)
  return q, (d_max, q - 1 - d_min - (size - 1)), table


def _scatter_plan(x_shape, kernel_shape, stride, geometry, method):
  """The phase tables and the method (see ``conv_transpose2d``)."""
  kh, kw, cin, cout = kernel_shape
  _, h, w, _ = x_shape
  (lo_h, out_h), (lo_w, out_w) = geometry
  q_h, pad_h, table_h = _phase_taps(h, kh, stride, out_h, lo_h)
  q_w, pad_w, table_w = _phase_taps(w, kw, stride, out_w, lo_w)
  subpixel = q_h * q_w * table_h.shape[0] * table_w.shape[0] * cin  # patch elements
  overlap_add = h * w * kh * kw * cout  # product elements
  if method == "auto":  # overlap-add has no zero taps, so allow it a larger intermediate
    method = "overlap_add" if overlap_add <= 2 * subpixel else "subpixel"
  if method not in TRANSPOSE_METHODS:
    raise ValueError(f"unknown method {method!r}; use one of {TRANSPOSE_METHODS}")
  return dict(method=method, q=(q_h, q_w), pads=(pad_h, pad_w), tables=(table_h, table_w),
              out=(out_h, out_w),
              image_elems=overlap_add if method == "overlap_add" else subpixel)


def _scatter_kernel(kernel, stride, plan):
  """The kernel as a matrix for ``plan``'s method."""
  kh, kw, cin, cout = kernel.shape
  if plan["method"] == "overlap_add":
    return kernel.transpose(2, 0, 1, 3).reshape(cin, kh * kw * cout)
  # The phase kernel [t_h, t_w, cin, s, s, cout]: the tap of each window
  # position that lands on each phase, or zero (index -1 of the kernel
  # padded with a zero tap).
  table_h, table_w = plan["tables"]
  padded = jnp.pad(kernel, ((0, 1), (0, 1), (0, 0), (0, 0)))
  phase_kernel = padded[table_h[:, None, :, None], table_w[None, :, None, :]]
  return phase_kernel.transpose(0, 1, 4, 2, 3, 5).reshape(
      table_h.shape[0] * table_w.shape[0] * cin, stride * stride * cout)


def _scatter_apply(x, kernel_mat, k_hw, stride, plan):
  """The transposed convolution of ``x`` with ``_scatter_kernel``'s matrix."""
  n, h, w, cin = x.shape
  kh, kw = k_hw
  (q_h, q_w), (out_h, out_w) = plan["q"], plan["out"]
  table_h, table_w = plan["tables"]
  cout = kernel_mat.shape[1] // (stride * stride if plan["method"] == "subpixel" else kh * kw)
  if plan["method"] == "subpixel":  # all phases from one product: [n, q, q, s, s, cout]
    t_h, t_w = table_h.shape[0], table_w.shape[0]
    patches = _im2col(x, t_h, t_w, 1, plan["pads"])
    y = _dot(patches.reshape(n * q_h * q_w, t_h * t_w * cin), kernel_mat)
    y = y.reshape(n, q_h, q_w, stride, stride, cout).transpose(0, 1, 3, 2, 4, 5)
  else:  # overlap-add: each phase sums its taps' products, shifted
    cols = _dot(x.reshape(n * h * w, cin), kernel_mat).reshape(n, h, w, kh * kw * cout)
    (lo_h, _), (lo_w, _) = plan["pads"]
    rows = []
    for ry in range(stride):
      row = []
      for rx in range(stride):
        phase = jnp.zeros((n, q_h, q_w, cout), x.dtype)
        for (ty, a), (tx, b) in ((ya, xb) for ya in enumerate(table_h[:, ry])
                                 for xb in enumerate(table_w[:, rx])):
          if a >= 0 and b >= 0:  # tap (a, b)'s plane, shifted by its window offset
            plane = cols[..., (a * kw + b) * cout:(a * kw + b + 1) * cout]
            phase = phase + _pad(plane, ((lo_h - ty, q_h - h - lo_h + ty),
                                         (lo_w - tx, q_w - w - lo_w + tx)))
        row.append(phase)
      rows.append(jnp.stack(row, axis=3))
    y = jnp.stack(rows, axis=2)  # [n, q, s, q, s, cout]
  return y.reshape(n, q_h * stride, q_w * stride, cout)[:, :out_h, :out_w]


def _scatter_impl(x, kernel, stride, geometry, method):
  plan = _scatter_plan(x.shape, kernel.shape, stride, geometry, method)
  kernel_mat = _scatter_kernel(kernel, stride, plan)
  fn = lambda x: (_scatter_apply(x, kernel_mat, kernel.shape[:2], stride, plan), ())
  return _over_batch(fn, (x,), plan["image_elems"] * x.dtype.itemsize)[0]


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _scatter(x, kernel, stride, geometry, method):
  return _scatter_impl(x, kernel, stride, geometry, method)


def _scatter_fwd(x, kernel, stride, geometry, method):
  return _scatter_impl(x, kernel, stride, geometry, method), (x, kernel)


def _scatter_bwd(stride, geometry, method, res, g):
  """Both gradients from the patches of ``g`` over the taps reaching each input pixel."""
  del method
  x, kernel = res
  kh, kw, cin, cout = kernel.shape
  _, h, w, _ = x.shape
  # d_x[i] = sum_a g[stride * i + a - lo] kernel[a]: a convolution of g.
  pads = tuple((lo, stride * (size - 1) + k - lo - out)
               for (lo, out), size, k in zip(geometry, (h, w), (kh, kw)))
  kernel_mat = _swap_io(kernel).reshape(kh * kw * cout, cin)

  def fn(x, g):
    m = x.shape[0] * h * w
    patches = _im2col(g, kh, kw, stride, pads).reshape(m, kh * kw * cout)
    d_kernel = _grad_dot(x.reshape(m, cin), patches)
    return _dot(patches, kernel_mat).reshape(x.shape), d_kernel

  d_x, d_kernel = _over_batch(fn, (x, g), h * w * kh * kw * cout * x.dtype.itemsize)
  d_kernel = d_kernel.reshape(cin, kh, kw, cout).transpose(1, 2, 0, 3)
  return d_x, d_kernel.astype(kernel.dtype)


_scatter.defvjp(_scatter_fwd, _scatter_bwd)


def conv2d(x: jax.Array, kernel: jax.Array, *, stride: int, padding: str,
           impl: str = "auto") -> jax.Array:
  """Convolution (cross-correlation, no bias) of images with a kernel.

  ``"im2col"``: the strided patches ``[n, ho, wo, kh * kw * cin]`` (strided
  slices) times the kernel as a ``[kh * kw * cin, cout]`` matrix. Its custom
  VJP takes the kernel's gradient from the same patches and the input's as
  the transposed convolution of the output's gradient, so no patch-sized
  gradient is scattered back.

  Args:
    x: images ``[n, h, w, cin]``.
    kernel: ``[kh, kw, cin, cout]``.
    stride: the same stride along both axes.
    padding: ``"same"`` or ``"valid"`` (see ``conv_geometry``).
    impl: ``"lax"``, ``"im2col"`` or ``"auto"``.

  Returns:
    ``[n, ho, wo, cout]``.
  """
  kh, kw, _, _ = kernel.shape
  _, h, w, _ = x.shape
  out_h, lo_h, hi_h = conv_geometry(h, kh, stride, padding)
  out_w, lo_w, hi_w = conv_geometry(w, kw, stride, padding)
  if out_h < 1 or out_w < 1:
    raise ValueError(f"a {kh}x{kw} '{padding}' convolution does not fit images of {h}x{w}")
  pads = ((lo_h, hi_h), (lo_w, hi_w))
  if resolve_impl(impl) == "lax":
    return jax.lax.conv_general_dilated(x, kernel, (stride, stride), pads,
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))
  return _corr(x, kernel, stride, pads)


def conv_transpose2d(x: jax.Array, kernel: jax.Array, *, stride: int, padding: str,
                     impl: str = "auto", method: str = "auto") -> jax.Array:
  """Transposed convolution (no bias): the gradient of ``conv2d`` with respect to its input.

  Along each axis, input pixel ``i`` and tap ``a`` add ``x[i] kernel[a]`` to
  output ``o = stride * i + a - lo`` (``lo`` from ``conv_transpose_geometry``).

  ``"im2col"`` never forms the zero-dilated input. Output pixel
  ``o = stride * q + r`` (phase ``r``) only receives the taps
  ``a = stride * d + r + lo``, from inputs ``i = q - d``: each of the
  ``stride ** 2`` phases is a stride-1 convolution of ``x`` with its own
  sub-kernel, and the phases ``[n, q, q, s, s, cout]`` interleave into the
  output by a reshape (depth to space). Two ``method``s compute the phases:

  - ``"subpixel"``: one product of the stride-1 patches of ``x``
    ``[n * q * q, t * t * cin]`` with the sub-kernels side by side
    ``[t * t * cin, s * s * cout]`` (zero where a phase has fewer taps; for
    5x5, stride 2, ``t = 3``: 36 products per 25 taps);
  - ``"overlap_add"``: one product ``x [n * h * w, cin] @ [cin, kh * kw * cout]``
    (every tap, no zeros), then each phase adds its taps' shifted planes;
  - ``"auto"``: ``"overlap_add"`` unless its intermediate is more than twice
    the size of the subpixel patches (e.g. for few input channels). On the
    DCEC layers overlap-add is the smaller, and ~10% faster on CPU.

  Its custom VJP takes both gradients from the stride-``stride`` patches of
  the output's gradient (the input's gradient is a convolution of it).

  Args:
    x: ``[n, h, w, cin]``.
    kernel: ``[kh, kw, cin, cout]``.
    stride: the same stride along both axes.
    padding: ``"same"`` or ``"valid"`` (see ``conv_transpose_geometry``).
    impl: ``"lax"``, ``"im2col"`` or ``"auto"``.
    method: for ``"im2col"``: ``"auto"``, ``"subpixel"`` or ``"overlap_add"``.

  Returns:
    ``[n, ho, wo, cout]``.
  """
  kh, kw, _, _ = kernel.shape
  _, h, w, _ = x.shape
  out_h, lo_h = conv_transpose_geometry(h, kh, stride, padding)
  out_w, lo_w = conv_transpose_geometry(w, kw, stride, padding)
  if resolve_impl(impl) == "lax":
    pads = [(k - 1 - lo, out - (size - 1) * stride - 1 + lo)
            for k, lo, out, size in ((kh, lo_h, out_h, h), (kw, lo_w, out_w, w))]
    return jax.lax.conv_general_dilated(
        x, kernel[::-1, ::-1], (1, 1), pads, lhs_dilation=(stride, stride),
        dimension_numbers=("NHWC", "HWIO", "NHWC"))
  return _scatter(x, kernel, stride, ((lo_h, out_h), (lo_w, out_w)), method)
