"""Where arrays live: data parallelism over a one-axis device mesh.

Every phase runs the same code on 1 or N devices, on one host or several:
parameters, optimiser state and the (small, for DEC-sized data) training set
are replicated on every device of the mesh, and each batch, as well as each
chunk of the full-data q pass, is split by rows over the mesh's ``"data"``
axis. The compiler (GSPMD) inserts the all-reduce of the gradients, so one
step on N devices computes what one step on one device computes, up to the
order of float additions.

Several hosts: call ``jax.distributed.initialize()`` in every process first
(on a Cloud TPU VM slice it needs no arguments; on GPU hosts pass
``coordinator_address``, ``num_processes`` and ``process_id``); then
``jax.devices()`` lists the devices of every host and ``make_mesh()`` spans
them. Each process may load only its own rows and pass them to
``allgather_rows``.
"""

import dataclasses

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

AXIS = "data"


def make_mesh(devices=None) -> Mesh:
  """A mesh with one ``"data"`` axis over ``devices`` (default: all, every host)."""
  devices = jax.devices() if devices is None else list(devices)
  if not devices:
    raise ValueError("make_mesh needs at least one device")
  return Mesh(np.asarray(devices), (AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
  """The same full copy on every device of ``mesh``."""
  return NamedSharding(mesh, PartitionSpec())


def row_sharding(mesh: Mesh) -> NamedSharding:
  """Leading (row) axis split over the mesh's devices, the rest whole."""
  return NamedSharding(mesh, PartitionSpec(AXIS))


def replicate(tree, mesh: Mesh):
  """Places every leaf of ``tree`` (host or device arrays) whole on every device.

  In a multi-process run each process must pass the same values (they do
  when derived from the same seed and data).
  """
  sharding = replicated(mesh)
  if jax.process_count() == 1:
    return jax.device_put(tree, sharding)

  def put(a):
    a = np.asarray(a)
    return jax.make_array_from_callback(a.shape, sharding, lambda index: a[index])

  return jax.tree.map(put, tree)


def allgather_rows(local: np.ndarray) -> np.ndarray:
  """The rows of every process, concatenated in process order.

  For multi-host runs where each process reads only its part of the data:
  ``x = allgather_rows(my_rows)`` gives every process the same full ``x``.
  With one process it returns ``local`` unchanged.
  """
  local = np.asarray(local)
  if jax.process_count() == 1:
    return local
  return np.asarray(multihost_utils.process_allgather(local, tiled=True))


def to_host(a) -> np.ndarray:
  """A (replicated or sharded) array as one numpy array on this host."""
  if isinstance(a, jax.Array) and not a.is_fully_addressable:
    if a.sharding.is_fully_replicated:
      return np.asarray(a.addressable_data(0))
    return np.asarray(multihost_utils.process_allgather(a, tiled=True))
  return np.asarray(a)


@dataclasses.dataclass(frozen=True)
class Placement:
  """How a run lays out its arrays.

  Attributes:
    mesh: the devices (one ``"data"`` axis) that share each batch.
    stream: keep the training data (and DEC's target P) in host memory and
      send each block of batches to the devices as it is needed, so device
      memory no longer grows with the number of rows.
    stream_steps: steps per block sent when streaming.
  """

  mesh: Mesh
  stream: bool = False
  stream_steps: int = 64

  @property
  def batch_sharding(self) -> NamedSharding:
    return row_sharding(self.mesh)

  def put(self, tree):
    """``tree`` replicated on the mesh."""
    return replicate(tree, self.mesh)

  def put_data(self, x):
    """The training data where this placement keeps it (host or devices)."""
    return np.asarray(x) if self.stream else self.put(x)


def default_placement() -> Placement:
  """All devices, data on the devices."""
  return Placement(make_mesh())
