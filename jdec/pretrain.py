"""Autoencoder pretraining: end to end (DEC-keras) or greedy layer-wise (the paper)."""

import functools
import time
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import tqdm

from jdec import models, train

LogFn = Callable[[dict], None]


def _check_finite(loss: float, where: str):
  if not np.isfinite(loss):
    raise FloatingPointError(
        f"the loss became {loss} during {where}; lower the learning rate "
        "or check the input scaling"
    )


def _run(state, step_fn, data, key, *, num_steps, batch_size, steps_per_call,
         desc, phase, log_fn, progress, step_name="epoch"):
  """Runs ``num_steps`` steps as scans of ``steps_per_call``, logging each call."""
  if num_steps == 0:
    return state, []
  scan = train.compile_scan(step_fn, num_steps=steps_per_call, batch_size=batch_size)
  calls = -(-num_steps // steps_per_call)
  history, start = [], time.perf_counter()
  for c in tqdm.trange(calls, desc=desc, disable=not progress, leave=False):
    step0 = c * steps_per_call
    limit = min(steps_per_call, num_steps - step0)
    state, metrics = scan(state, data, key, jnp.asarray(step0), jnp.asarray(limit))
    loss = float(jnp.sum(metrics["loss"]) / limit)
    _check_finite(loss, f"{desc} ({step_name} {c + 1})")
    record = {"phase": phase, step_name: c + 1, "step": step0 + limit, "loss": loss,
              "wall_s": time.perf_counter() - start}
    history.append(record)
    if log_fn:
      log_fn(record)
  return state, history


def pretrain_end_to_end(
    key: jax.Array,
    x: jax.Array,
    model: nn.Module,
    params: dict,
    *,
    num_epochs: int,
    batch_size: int,
    learning_rate: float,
    momentum: float,
    log_fn: LogFn | None = None,
    progress: bool = True,
) -> tuple[dict, list[dict]]:
  """Trains the whole autoencoder on the reconstruction MSE (DEC-keras recipe).

  Args:
    key: data-order key.
    x: ``[n, d]`` device array.
    model: the autoencoder.
    params: its initial parameters.
    num_epochs, batch_size, learning_rate, momentum: SGD settings.
    log_fn: called with ``{"phase", "epoch", "step", "loss"}`` after each epoch.
    progress: show a tqdm bar.

  Returns:
    The trained parameters and the per-epoch history.
  """
  state = train.create_state(
      apply_fn=model.apply, params=params, tx=train.sgd(learning_rate, momentum)
  )
  steps_per_epoch = x.shape[0] // batch_size
  state, history = _run(
      state, train.reconstruction_step, x, key,
      num_steps=num_epochs * steps_per_epoch, batch_size=batch_size,
      steps_per_call=steps_per_epoch, desc="pretrain", phase="pretrain",
      log_fn=log_fn, progress=progress,
  )
  return state.params, history


class DenoisingPair(nn.Module):
  """One layer pair of the stacked denoising autoencoder (paper section 3.2).

  ``h = g1(W1 dropout(x) + b1)``, ``y = g2(W2 dropout(h) + b2)``: g1 is linear
  for the innermost pair (the embedding), g2 for the outermost (the input).
  """

  features: int
  out_features: int
  linear_hidden: bool
  linear_output: bool
  dropout_rate: float
  kernel_init: str

  @nn.compact
  def __call__(self, x, *, train: bool):
    init = models.kernel_init(self.kernel_init)
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    h = nn.Dense(self.features, kernel_init=init, name="encoder")(x)
    h = h if self.linear_hidden else nn.relu(h)
    h = nn.Dropout(self.dropout_rate, deterministic=not train)(h)
    y = nn.Dense(self.out_features, kernel_init=init, name="decoder")(h)
    return y if self.linear_output else nn.relu(y)


def _denoising_step(state, batch, key):
  def loss_fn(params):
    y = state.apply_fn({"params": params}, batch, train=True, rngs={"dropout": key})
    return jnp.mean(jnp.square(y - batch))

  loss, grads = jax.value_and_grad(loss_fn)(state.params)
  return state.apply_gradients(grads=grads), {"loss": loss}


def step_decay(learning_rate: float, every: int, factor: float = 0.1) -> optax.Schedule:
  """``learning_rate * factor ** (step // every)`` (Caffe's "step" policy)."""
  return optax.exponential_decay(learning_rate, every, factor, staircase=True)


def pretrain_layerwise(
    key: jax.Array,
    x: jax.Array,
    model: models.AutoEncoder,
    params: dict,
    *,
    layer_steps: int,
    finetune_steps: int,
    batch_size: int,
    learning_rate: float,
    lr_decay_every: int,
    momentum: float,
    dropout_rate: float,
    log_every: int = 1000,
    log_fn: LogFn | None = None,
    progress: bool = True,
) -> tuple[dict, list[dict]]:
  """Greedy layer-wise denoising pretraining, then end-to-end fine-tuning.

  Each encoder layer ``i`` and its mirror decoder layer are trained as a
  denoising autoencoder on the output of the layers below for
  ``layer_steps`` steps; then the stack is fine-tuned without dropout for
  ``finetune_steps`` steps (Xie et al. 2016, section 4.3). The learning rate
  is divided by 10 every ``lr_decay_every`` steps in every stage.

  Returns:
    The trained autoencoder parameters and the history (one record per
    ``log_every`` steps).
  """
  widths = list(model.hidden_dims)
  n_layers = len(widths)
  params = jax.tree.map(lambda a: a, params)  # new containers, filled in below
  tx = train.sgd(step_decay(learning_rate, lr_decay_every), momentum)
  history = []
  h = x
  for i in range(n_layers):
    pair = DenoisingPair(
        features=widths[i], out_features=h.shape[1],
        linear_hidden=i == n_layers - 1, linear_output=i == 0,
        dropout_rate=dropout_rate, kernel_init=model.kernel_init,
    )
    pair_params = pair.init(jax.random.fold_in(key, 2 * i), h[:1], train=False)["params"]
    state = train.create_state(apply_fn=pair.apply, params=pair_params, tx=tx)
    state, hist = _run(
        state, _denoising_step, h, jax.random.fold_in(key, 2 * i + 1),
        num_steps=layer_steps, batch_size=batch_size,
        steps_per_call=min(log_every, layer_steps), desc=f"layer {i + 1}/{n_layers}",
        phase=f"pretrain_layer{i + 1}", log_fn=log_fn, progress=progress,
        step_name="block",
    )
    history += hist
    params["encoder"][f"dense_{i}"] = state.params["encoder"]
    params["decoder"][f"dense_{n_layers - 1 - i}"] = state.params["decoder"]
    h = _next_input(state.params["encoder"], h, relu=i < n_layers - 1)

  state = train.create_state(apply_fn=model.apply, params=params, tx=tx)
  state, hist = _run(
      state, train.reconstruction_step, x, jax.random.fold_in(key, 2 * n_layers),
      num_steps=finetune_steps, batch_size=batch_size,
      steps_per_call=min(log_every, finetune_steps), desc="fine-tune",
      phase="pretrain_finetune", log_fn=log_fn, progress=progress, step_name="block",
  )
  return state.params, history + hist


@functools.partial(jax.jit, static_argnames="relu")
def _next_input(dense_params, h, *, relu: bool):
  """The trained layer applied to all rows: the next pair's clean input."""

  def layer(a):
    a = a @ dense_params["kernel"] + dense_params["bias"][None, :]
    return nn.relu(a) if relu else a

  return train.map_batches(layer, h)
