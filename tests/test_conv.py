"""The convolutional autoencoder: shapes, im2col equals lax, training, errors.

Compiling dominates these tests' time, so each jits as few functions as it can.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jdec import conv, convolution, train
from jdec.scan import compile_scan, run_steps_reference

SIDES = (28, 16, 8)  # MNIST, USPS, sklearn digits
CHANNELS = (1, 32, 64, 128)


def _normal(*shape, seed=0):
  """Test inputs from numpy (``jax.random`` compiles a sampler per shape)."""
  return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), jnp.float32)


def _close(a, b, rtol=1e-4, err_msg=""):
  """Elementwise close, with the absolute slack scaled to the array's size."""
  a, b = np.asarray(a), np.asarray(b)
  assert a.shape == b.shape, err_msg
  np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * float(np.max(np.abs(a))),
                             err_msg=err_msg)


@functools.cache
def _params(side: int) -> dict:
  """The model's initial parameters (the same for both impls; lax compiles faster)."""
  model = conv.ConvAutoEncoder((side, side, 1), conv_impl="lax")
  return jax.jit(model.init)(_key(0), jnp.zeros((1, model.input_dim)))["params"]


def _key(seed):
  """A key whose sampler compiles in a fraction of threefry's time."""
  return jax.random.key(seed, impl="rbg")


def _layer_configs(side):
  """Each (layer, input side, cin, cout, kernel, padding) of the model at ``side``."""
  configs = []
  for i, p in enumerate(conv.cae_plan((side, side, 1), (32, 64, 128))):
    configs.append(("conv", p["in_hw"][0], CHANNELS[i], CHANNELS[i + 1], p["kernel"],
                    p["padding"]))
    configs.append(("deconv", p["out_hw"][0], CHANNELS[i + 1], CHANNELS[i], p["kernel"],
                    p["padding"]))
  return configs


@pytest.mark.parametrize("side,flat", [(28, 1152), (16, 512), (8, 128)])
def test_shapes_and_parameters(side, flat):
  model = conv.ConvAutoEncoder((side, side, 1))
  assert model.embed_dim == 10 and model.input_dim == side * side
  params = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, side * side)))
  shapes = jax.tree.map(lambda a: a.shape, params["params"])
  assert shapes["conv1"]["kernel"] == (5, 5, 1, 32)
  assert shapes["conv2"]["kernel"] == (5, 5, 32, 64)
  assert shapes["conv3"]["kernel"] == (3, 3, 64, 128)
  assert shapes["embedding"]["kernel"] == (flat, 10)
  assert shapes["dense"]["kernel"] == (10, flat)
  assert shapes["deconv3"]["kernel"] == (3, 3, 128, 64)
  assert shapes["deconv2"]["kernel"] == (5, 5, 64, 32)
  assert shapes["deconv1"] == {"kernel": (5, 5, 32, 1), "bias": (1,)}
  shape = lambda *args, **kw: jax.eval_shape(functools.partial(model.apply, **kw), params,
                                             *args)
  rows, images = jnp.zeros((3, side * side)), jnp.zeros((3, side, side, 1))
  assert [(a.shape, a.dtype) for a in shape(rows)] == [((3, side * side), jnp.float32),
                                                       ((3, 10), jnp.float32)]
  assert [a.shape for a in shape(images)] == [(3, side, side, 1), (3, 10)]
  assert shape(rows, method=model.encode).shape == (3, 10)
  assert shape(images, method=model.encode).shape == (3, 10)
  assert shape(jnp.zeros((3, 10)), method=model.decode).shape == (3, side, side, 1)


def test_glorot_uniform_kernels_and_zero_biases():
  for name, layer in _params(8).items():
    kernel = np.asarray(layer["kernel"])
    receptive = int(np.prod(kernel.shape[:-2]))
    bound = np.sqrt(6.0 / (receptive * (kernel.shape[-2] + kernel.shape[-1])))
    assert np.max(np.abs(kernel)) <= bound, name
    if kernel.size > 100:
      assert np.max(np.abs(kernel)) > 0.9 * bound, name  # uniform over the whole range
    np.testing.assert_array_equal(layer["bias"], 0.0)


def _layer_grads(configs, impls):
  """``[{impl: (y, d_x, d_kernel)}]`` of layers for the cotangent ``cos(y)``, in one jit."""
  fns = {"conv": convolution.conv2d, "deconv": convolution.conv_transpose2d}

  @jax.jit
  def run(inputs):
    outs = []
    for (kind, _, _, _, _, padding), (x, kernel) in zip(configs, inputs):
      out = {}
      for name in impls[kind]:
        impl, _, method = name.partition(":")
        extra = {"method": method} if method else {}
        f = lambda x, w: fns[kind](x, w, stride=2, padding=padding, impl=impl, **extra)
        y, vjp = jax.vjp(f, x, kernel)
        out[name] = (y, *vjp(jnp.cos(y)))
      outs.append(out)
    return outs

  return run([(_normal(5, side, side, cin), _normal(k, k, cin, cout, seed=1) / k / np.sqrt(cin))
              for _, side, cin, cout, k, _ in configs])


@pytest.mark.parametrize("side", SIDES)
def test_layers_im2col_equal_lax(side):
  """Every layer of the model at ``side``: outputs and both gradients."""
  impls = {"conv": ("lax", "im2col"), "deconv": ("lax", "im2col")}
  if side == 28:  # the model uses the default method; check subpixel on MNIST's layers
    impls["deconv"] += ("im2col:subpixel",)
  configs = _layer_configs(side)
  for config, out in zip(configs, _layer_grads(configs, impls)):
    for name in impls[config[0]][1:]:
      for got, want in zip(out[name], out["lax"]):
        _close(got, want, err_msg=f"{config} {name}")


def test_layer_chunks_over_the_batch_give_the_same_result(monkeypatch):
  configs = [("conv", 14, 32, 64, 5, "same"), ("deconv", 7, 64, 32, 5, "same")]
  impls = {"conv": ("im2col",), "deconv": ("im2col",)}
  whole = _layer_grads(configs, impls)
  # 5 images in chunks of 2 and a last one of 1.
  monkeypatch.setattr(convolution, "_CHUNK_BYTES", 2 * 7 * 7 * 25 * 64 * 4)
  for chunked, out in zip(_layer_grads(configs, impls), whole):
    for got, want in zip(chunked["im2col"], out["im2col"]):
      _close(got, want, rtol=1e-5)


def test_transposed_conv_is_the_gradient_of_conv():
  """An independent check of the convention (the lax path is not used)."""
  x, g = _normal(2, 7, 7, 3), _normal(2, 14, 14, 4, seed=2)
  kernel = _normal(5, 5, 4, 3, seed=1)  # conv: 4 -> 3 channels
  one = np.zeros((1, 7, 7, 1), np.float32)
  one[0, 3, 2, 0] = 1.0
  k1 = jnp.arange(25.0).reshape(5, 5, 1, 1)

  @jax.jit
  def run(x, g, kernel, one, k1):
    _, vjp = jax.vjp(lambda g: convolution.conv2d(g, kernel, stride=2, padding="same",
                                           impl="im2col"), g)
    transposed = lambda x, k, method: convolution.conv_transpose2d(
        x, k, stride=2, padding="same", impl="im2col", method=method)
    return (vjp(x)[0], transposed(x, kernel.transpose(0, 1, 3, 2), "auto"),
            [transposed(one, k1, method) for method in ("subpixel", "overlap_add")])

  want_vjp, got, pixels = run(x, g, kernel, one, k1)
  _close(got, want_vjp)
  # One pixel by hand: o = 2 i + a - lo, with lo = 1 for 5x5 'same'.
  want = np.zeros((14, 14))
  want[5:10, 3:8] = np.arange(25.0).reshape(5, 5)
  for y in pixels:
    np.testing.assert_array_equal(y[0, :, :, 0], want)


def test_model_im2col_equals_lax():
  x = jnp.abs(_normal(6, 784, seed=1))

  @jax.jit
  def both(params):
    out = {}
    for impl in ("lax", "im2col"):
      model = conv.ConvAutoEncoder((28, 28, 1), conv_impl=impl)

      def loss(params):
        x_hat, z = model.apply({"params": params}, x)
        return jnp.mean(jnp.square(x_hat - x)) + 1e-3 * jnp.mean(jnp.square(z)), (x_hat, z)

      out[impl] = jax.value_and_grad(loss, has_aux=True)(params)
    return out

  out = both(_params(28))
  (loss_lax, (x_lax, z_lax)), g_lax = out["lax"]
  (loss_im, (x_im, z_im)), g_im = out["im2col"]
  _close(x_im, x_lax)
  _close(z_im, z_lax)
  _close(loss_im, loss_lax)
  assert jax.tree.structure(g_im) == jax.tree.structure(g_lax)
  for a, b in zip(jax.tree.leaves(g_im), jax.tree.leaves(g_lax)):
    _close(a, b)


def test_gradients_vmap_over_stacked_runs():
  """Stacked runs (``jdec.runs.compile_runs``) vmap the custom VJPs."""
  x = jnp.abs(_normal(5, 64, seed=3))
  stacked = jax.tree.map(lambda a: jnp.stack([a, 0.5 * a]), _params(8))

  @jax.jit
  def grads(params):
    out = {}
    for impl in ("lax", "im2col"):
      model = conv.ConvAutoEncoder((8, 8, 1), conv_impl=impl)
      loss = lambda p: jnp.mean(jnp.square(model.apply({"params": p}, x)[0] - x))
      out[impl] = jax.vmap(jax.grad(loss))(params)
    return out

  out = grads(stacked)
  for a, b in zip(jax.tree.leaves(out["im2col"]), jax.tree.leaves(out["lax"])):
    assert a.shape[0] == 2
    _close(a, b)


def test_bfloat16_compute_keeps_float32_outputs_and_params():
  x = jnp.abs(_normal(4, 64, seed=1))
  models = {"float32": conv.ConvAutoEncoder((8, 8, 1), conv_impl="lax"),
            "bfloat16": conv.ConvAutoEncoder((8, 8, 1), conv_impl="im2col",
                                             compute_dtype="bfloat16")}

  @jax.jit
  def run(params):
    loss = lambda p: jnp.mean(jnp.square(models["bfloat16"].apply({"params": p}, x)[0] - x))
    return ({d: m.apply({"params": params}, x) for d, m in models.items()},
            jax.grad(loss)(params))

  out, grads = run(_params(8))
  (x16, z16), (x32, z32) = out["bfloat16"], out["float32"]
  assert x16.dtype == z16.dtype == jnp.float32
  for a, b in ((z16, z32), (x16, x32)):
    assert float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b)) < 0.03
  assert all(g.dtype == jnp.float32 and np.isfinite(g).all() for g in jax.tree.leaves(grads))


def _squares(side, n=64):
  """Images of one bright square each, at one of four places."""
  rng = np.random.default_rng(0)
  x = np.zeros((n, side, side), np.float32)
  for i, (r, c) in enumerate(rng.integers(0, 2, (n, 2)) * (side // 2)):
    x[i, r:r + side // 2, c:c + side // 2] = 1.0
  return jnp.asarray(x.reshape(n, side * side) + 0.05 * rng.random((n, side * side)))


def test_training_scan_equals_reference_and_loss_falls():
  model = conv.ConvAutoEncoder((8, 8, 1), conv_impl="im2col")
  x, params, tx = _squares(8), _params(8), optax.adam(3e-3)
  state = lambda: train.create_state(model.apply, jax.tree.map(jnp.copy, params), tx)
  scan = compile_scan(train.reconstruction_step, num_steps=4, batch_size=16)
  s_scan, m_scan = scan(state(), x, _key(1), jnp.asarray(0), jnp.asarray(4))
  s_ref, m_ref = run_steps_reference(train.reconstruction_step, state(), x,
                                           _key(1), 0, 4, 16)
  np.testing.assert_allclose(m_scan["loss"], [m["loss"] for m in m_ref], rtol=1e-4)
  for a, b in zip(jax.tree.leaves(s_scan.params), jax.tree.leaves(s_ref.params)):
    np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)
  losses = [float(m_scan["loss"][0])]
  for block in range(1, 8):
    s_scan, m = scan(s_scan, x, _key(1), jnp.asarray(4 * block), jnp.asarray(4))
    losses.append(float(m["loss"][-1]))
  assert losses[-1] < 0.5 * losses[0]
  assert scan._cache_size() == 1  # no recompiles across calls


def test_rows_and_images_agree_without_recompiling():
  model = conv.ConvAutoEncoder((8, 8, 1))
  apply = jax.jit(model.apply)
  for seed in range(3):
    rows = jnp.abs(_normal(5, 64, seed=seed))
    x_rows, z_rows = apply({"params": _params(8)}, rows)
    x_img, z_img = apply({"params": _params(8)}, rows.reshape(5, 8, 8, 1))
    assert x_rows.shape == (5, 64) and x_img.shape == (5, 8, 8, 1)
    _close(z_img, z_rows, rtol=1e-6)
    _close(x_img.reshape(5, 64), x_rows, rtol=1e-6)
  assert apply._cache_size() == 2  # one for rows, one for images, none after


def test_auto_impl_is_im2col_on_cpu():
  assert jax.default_backend() != "cpu" or convolution.resolve_impl("auto") == "im2col"
  assert convolution.resolve_impl("lax") == "lax"


@pytest.mark.parametrize("shape,match", [
    ((4, 4, 1), "too small"),
    ((27, 27, 1), "cannot be mirrored"),
    ((26, 26, 1), "cannot be mirrored"),
    ((28, 28), "height, width, channels"),
])
def test_bad_image_shapes_raise(shape, match):
  with pytest.raises(ValueError, match=match):
    conv.ConvAutoEncoder(shape)


def test_bad_inputs_and_options_raise():
  model = conv.ConvAutoEncoder((28, 28, 1))
  params = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 784)))
  for bad in (jnp.zeros((2, 100)), jnp.zeros((2, 28, 28, 3)), jnp.zeros((784,))):
    with pytest.raises(ValueError, match=r"\[n, 784\] rows or \[n, 28, 28, 1\] images"):
      jax.eval_shape(model.apply, params, bad)
  with pytest.raises(ValueError, match="conv impl"):
    conv.ConvAutoEncoder((28, 28, 1), conv_impl="fft")
  with pytest.raises(ValueError, match="padding"):
    convolution.conv2d(jnp.zeros((1, 8, 8, 1)), jnp.zeros((3, 3, 1, 1)), stride=2, padding="full")
  with pytest.raises(ValueError, match="method"):
    convolution.conv_transpose2d(jnp.zeros((1, 4, 4, 1)), jnp.zeros((3, 3, 1, 1)), stride=2,
                          padding="same", impl="im2col", method="fft")
