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

from jdec import checkpoint, models, parallel, runs, scan, train

LogFn = Callable[[dict], None]


def _check_finite(loss: np.ndarray, where: str):
  bad = [r for r, v in enumerate(loss) if not np.isfinite(v)]
  if bad:
    run = f" in run {bad[0]}" if len(loss) > 1 else ""
    raise FloatingPointError(
        f"the loss became {loss[bad[0]]}{run} during {where}; lower the learning rate "
        "or check the input scaling"
    )


def _run(state, step_fn, data, keys, *, num_steps, batch_size, steps_per_call,
         desc, phase, log_fn, progress, placement, step_name="epoch", data_axis=None,
         start_block=0, wall_s=0.0, on_block=None):
  """Runs ``num_steps`` steps of S runs (``keys [S]``, ``state`` stacked) in
  blocks of ``steps_per_call``, logging each block of each run.

  A resumed run starts at block ``start_block`` after ``wall_s`` seconds;
  ``on_block(blocks_done, state, wall_s)`` is called after every block.
  """
  if num_steps == 0 or start_block * steps_per_call >= num_steps:
    return state, []
  stepper = runs.Stepper(step_fn, block_steps=steps_per_call, batch_size=batch_size,
                         placement=placement, data_axis=data_axis)
  calls = -(-num_steps // steps_per_call)
  history, start = [], time.perf_counter() - wall_s
  for c in tqdm.trange(start_block, calls, initial=start_block, total=calls, desc=desc,
                       disable=not progress, leave=False):
    step0 = c * steps_per_call
    limit = min(steps_per_call, num_steps - step0)
    state, loss = stepper(state, data, keys, step0, np.full(keys.shape[0], limit))
    _check_finite(loss, f"{desc} ({step_name} {c + 1})")
    record = {"phase": phase, step_name: c + 1, "step": step0 + limit,
              "wall_s": time.perf_counter() - start}
    for r, v in enumerate(loss):
      history.append({**record, "run": r, "loss": float(v)})
      if log_fn:
        log_fn(history[-1])
    if on_block:
      on_block(c + 1, state, record["wall_s"])
  return state, history


def pretrain_end_to_end(
    keys: jax.Array,
    x: jax.Array,
    model: nn.Module,
    params: dict,
    *,
    num_epochs: int,
    batch_size: int,
    learning_rate: float,
    momentum: float,
    optimizer: str = "sgd",
    augment: train.Augment | None = None,
    log_fn: LogFn | None = None,
    progress: bool = True,
    placement: parallel.Placement | None = None,
    checkpoints: checkpoint.Progress | None = None,
) -> tuple[dict, list[dict]]:
  """Trains the whole autoencoder on the reconstruction MSE (DEC-keras recipe).

  Args:
    keys: ``[S]`` data-order keys, one per run: S runs train at once (one run
      is a stack of one; see ``jdec.runs``).
    x: ``[n, d]`` data, placed as ``placement.put_data`` places it.
    model: the autoencoder.
    params: its initial parameters, ``[S, ...]`` on every leaf.
    num_epochs, batch_size: the length of training and the batch size.
    learning_rate, momentum, optimizer: ``"sgd"`` with momentum or ``"adam"``
      (see ``train.optimizer``).
    augment: transforms each batch with the step's key before it is
      reconstructed (DEC-DA; see ``train.reconstruction_step``).
    log_fn: called with ``{"phase", "epoch", "step", "loss", "wall_s"}`` after
      each epoch and run (``"run"``, the run's index in the stack).
    progress: show a tqdm bar.
    placement: devices and data placement (default: all devices, data on them).
    checkpoints: saves the state every ``checkpoints.every`` epochs and at the
      end; when it already holds one, training resumes from it (the history
      then starts after the restored epoch).

  Returns:
    The trained parameters (``[S, ...]``) and the per-epoch history.
  """
  placement = placement or parallel.default_placement()
  state = placement.put(runs.create_states(
      model.apply, params, train.optimizer(optimizer, learning_rate, momentum)))
  steps_per_epoch = x.shape[0] // batch_size
  epoch, wall_s, on_block = 0, 0.0, None
  try:
    if checkpoints:
      epoch, state, wall_s = checkpoints.restore(state)
      if epoch > num_epochs:
        raise checkpoint.CheckpointError(
            f"{checkpoints.directory} holds epoch {epoch}, past this run's {num_epochs} "
            "epochs; resume with the settings it was saved with")
      on_block = lambda e, s, w: checkpoints.save(e, s, w, final=e == num_epochs)
    state, history = _run(
        state, functools.partial(train.reconstruction_step, augment=augment), x, keys,
        num_steps=num_epochs * steps_per_epoch, batch_size=batch_size,
        steps_per_call=steps_per_epoch, desc="pretrain", phase="pretrain",
        log_fn=log_fn, progress=progress, placement=placement,
        start_block=epoch, wall_s=wall_s, on_block=on_block,
    )
    if checkpoints:
      checkpoints.save(num_epochs, state, history[-1]["wall_s"] if history else wall_s,
                       final=True)
  finally:
    if checkpoints:
      checkpoints.close()
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
    keys: jax.Array,
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
    placement: parallel.Placement | None = None,
    checkpoints: checkpoint.Progress | None = None,
) -> tuple[dict, list[dict]]:
  """Greedy layer-wise denoising pretraining, then end-to-end fine-tuning.

  Each encoder layer ``i`` and its mirror decoder layer are trained as a
  denoising autoencoder on the output of the layers below for
  ``layer_steps`` steps; then the stack is fine-tuned without dropout for
  ``finetune_steps`` steps (Xie et al. 2016, section 4.3). The learning rate
  is divided by 10 every ``lr_decay_every`` steps in every stage.

  ``keys``, ``params``, ``log_fn`` and ``placement`` are as for
  ``pretrain_end_to_end`` (S runs at once); streaming the
  data from the host is not supported for this method.

  ``checkpoints`` counts blocks of ``log_every`` steps across all stages
  (``layerwise_blocks``): it saves the stage's train state with the layers
  trained so far, and a resumed run recomputes the stage's input from them.

  Returns:
    The trained autoencoder parameters (``[S, ...]``) and the history (one
    record per ``log_every`` steps and run).
  """
  placement = placement or parallel.default_placement()
  if placement.stream:
    raise ValueError("streaming the data from the host works with pretrain.method="
                     "'end_to_end' only; keep the data on the device for 'layerwise'")
  widths = list(model.hidden_dims)
  n_layers = len(widths)
  params = jax.tree.map(lambda a: a, params)  # new containers, filled in below
  tx = train.sgd(step_decay(learning_rate, lr_decay_every), momentum)
  blocks = layerwise_blocks(n_layers, layer_steps, finetune_steps, log_every)
  done = [sum(blocks[:i]) for i in range(len(blocks) + 1)]  # blocks before each stage

  def fresh_state(i):
    """Stage ``i``'s initial train state: denoising pair ``i``, or the whole
    autoencoder (``i == n_layers``) for fine-tuning."""
    if i == n_layers:
      return placement.put(runs.create_states(model.apply, params, tx))
    pair = DenoisingPair(
        features=widths[i], out_features=x.shape[-1] if i == 0 else widths[i - 1],
        linear_hidden=i == n_layers - 1, linear_output=i == 0,
        dropout_rate=dropout_rate, kernel_init=model.kernel_init,
    )
    row = jnp.zeros((1, pair.out_features), x.dtype)
    init = lambda k: pair.init(k, row, train=False)["params"]
    return placement.put(runs.create_states(pair.apply, jax.vmap(init)(
        runs.fold_in(keys, 2 * i)), tx))

  # Where a checkpoint left off: its stage (the last one it holds blocks of),
  # that stage's state, and the layers trained before it.
  position = checkpoints.latest_epoch() if checkpoints else None
  resume_stage, resumed, wall_s = 0, None, 0.0
  if position:
    if position > done[-1]:
      raise checkpoint.CheckpointError(
          f"{checkpoints.directory} holds block {position}, past this run's {done[-1]} "
          "blocks; resume with the settings it was saved with")
    resume_stage = next(i for i in range(len(blocks)) if position <= done[i + 1])
    template = {"stage": checkpoint.savable(fresh_state(resume_stage)),
                "params": placement.put(params)}
    _, tree, info = checkpoints.restore_tree(template, position)
    params, resumed, wall_s = tree["params"], tree["stage"], float(info["wall_s"])
  t_start = time.perf_counter() - wall_s

  def stage(i, step_fn, data, data_key, num_steps, desc, phase, data_axis):
    """Trains stage ``i``, from the checkpoint when it is in it."""
    state, start_block = fresh_state(i), 0
    if resumed is not None and i == resume_stage:
      state, start_block = state.replace(**resumed), position - done[i]
    on_block = None
    if checkpoints:  # fine-tuning trains (and donates) the autoencoder's parameters
      on_block = lambda b, s, w: checkpoints.save_tree(
          done[i] + b, {"stage": checkpoint.savable(s),
                        "params": s.params if i == n_layers else params},
          {"block": done[i] + b, "wall_s": w}, final=done[i] + b == done[-1])
    return _run(state, step_fn, data, runs.fold_in(keys, data_key), num_steps=num_steps,
                batch_size=batch_size, steps_per_call=min(log_every, num_steps), desc=desc,
                phase=phase, log_fn=log_fn, progress=progress, step_name="block",
                placement=placement, data_axis=data_axis, start_block=start_block,
                wall_s=time.perf_counter() - t_start, on_block=on_block)

  history, h = [], x
  try:
    for i in range(n_layers):
      per_run_input = i > 0  # h [S, n, width]: each run's own features
      if i >= resume_stage:
        state, hist = stage(i, _denoising_step, h, 2 * i + 1, layer_steps,
                            f"layer {i + 1}/{n_layers}",
                            f"pretrain_layer{i + 1}", 0 if per_run_input else None)
        history += hist
        params["encoder"][f"dense_{i}"] = state.params["encoder"]
        params["decoder"][f"dense_{n_layers - 1 - i}"] = state.params["decoder"]
      h = runs.vmap(functools.partial(_next_input, relu=i < n_layers - 1),
                    in_axes=(0, 0 if per_run_input else None))(
                        params["encoder"][f"dense_{i}"], h)
    state, hist = stage(n_layers, train.reconstruction_step, x, 2 * n_layers, finetune_steps,
                        "fine-tune", "pretrain_finetune", None)
  finally:
    if checkpoints:
      checkpoints.close()
  return state.params, history + hist


def layerwise_blocks(n_layers: int, layer_steps: int, finetune_steps: int,
                     log_every: int) -> list[int]:
  """The blocks (of ``log_every`` steps) of each stage of layer-wise pretraining:
  ``n_layers`` denoising pairs, then fine-tuning; the positions its checkpoints count."""
  count = lambda steps: -(-steps // min(log_every, steps)) if steps else 0
  return [count(layer_steps)] * n_layers + [count(finetune_steps)]


@functools.partial(jax.jit, static_argnames="relu")
def _next_input(dense_params, h, *, relu: bool):
  """The trained layer applied to all rows: the next pair's clean input."""

  def layer(a):
    a = a @ dense_params["kernel"] + dense_params["bias"][None, :]
    return nn.relu(a) if relu else a

  return scan.map_batches(layer, h)
