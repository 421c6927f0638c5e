"""The train state, the optimisers and the train steps of every phase, for one run.

A step is ``step(state, batch, key) -> (state, metrics)``; ``jdec.scan`` runs
many of them in one ``jax.lax.scan`` and ``jdec.runs`` maps that over seeds.
"""

from typing import Callable

import jax
import jax.numpy as jnp
import optax
from flax.training import train_state

from jdec import dec

TrainState = train_state.TrainState


def create_state(apply_fn, params, tx: optax.GradientTransformation) -> TrainState:
  """``TrainState.create`` with a typed int32 step, so the first call of a
  jitted step and later ones see the same input types (no recompile)."""
  state = TrainState.create(apply_fn=apply_fn, params=params, tx=tx)
  return state.replace(step=jnp.zeros((), jnp.int32))


def sgd(learning_rate, momentum: float) -> optax.GradientTransformation:
  """SGD with (heavy-ball) momentum, as in Keras and Caffe."""
  return optax.sgd(learning_rate, momentum=momentum or None)


def optimizer(name: str, learning_rate, momentum: float = 0.0) -> optax.GradientTransformation:
  """``"sgd"`` (with ``momentum``) or ``"adam"`` (Keras's betas and epsilon 1e-7)."""
  if name == "sgd":
    return sgd(learning_rate, momentum)
  if name == "adam":
    return optax.adam(learning_rate, b1=0.9, b2=0.999, eps=1e-7)
  raise ValueError(f"unknown optimizer {name!r}; use 'sgd' or 'adam'")


Augment = Callable[[jax.Array, jax.Array], jax.Array]  # (key, x [b, d]) -> [b, d]


def reconstruction_step(state: TrainState, batch: jax.Array, key: jax.Array, *,
                        augment: Augment | None = None):
  """One autoencoder step on the mean squared reconstruction error.

  With ``augment``, the batch is first transformed with the step's key and the
  autoencoder reconstructs the transformed batch (DEC-DA's pretraining).
  """
  if augment is not None:
    batch = augment(key, batch)

  def loss_fn(params):
    x_hat, _ = state.apply_fn({"params": params}, batch)
    return jnp.mean(jnp.square(x_hat - batch))

  loss, grads = jax.value_and_grad(loss_fn)(state.params)
  return state.apply_gradients(grads=grads), {"loss": loss}


def clustering_step(state: TrainState, batch, key: jax.Array, *, objective: str = "dec",
                    kl_weight: float = 0.1, augment: Augment | None = None):
  """One clustering step on the batch's rows ``(x [b, d], p [b, k])`` of the target P.

  Objectives:
    ``"dec"``: the mean KL(P || Q) (Xie et al. 2016).
    ``"idec"``: ``MSE + kl_weight * KL``, the decoder kept (Guo et al. 2017).

  With ``augment``, the model sees the batch transformed with the step's key
  while P, computed from the clean data, stays as it is (DEC-DA); IDEC then
  reconstructs the transformed batch.
  """
  if objective not in ("dec", "idec"):
    raise ValueError(f"unknown objective {objective!r}; use 'dec' or 'idec'")
  x, p = batch
  if augment is not None:
    x = augment(key, x)
  joint = objective == "idec"

  def loss_fn(params):
    log_q, _, x_hat = state.apply_fn({"params": params}, x, decode=joint)
    kl = jnp.mean(dec.kl_loss_from_log(p, log_q))
    if joint:
      return jnp.mean(jnp.square(x_hat - x)) + kl_weight * kl, kl
    return kl, kl

  (loss, kl), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  return state.apply_gradients(grads=grads), {"loss": loss, "kl": kl}
