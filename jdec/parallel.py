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

Every process must run the same JAX computations in the same order; what
differs is who touches files. ``is_writer()`` names the one process (0) that
writes, ``from_writer`` shares what it read or decided with the others, and
``on_every_process`` turns one process's failure into the same error
everywhere instead of a hang.
"""

import dataclasses
import json

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


def is_writer() -> bool:
  """Whether this process writes files: process 0, or the only process."""
  return jax.process_index() == 0


def broadcast_json(value=None):
  """Process 0's ``value`` (anything ``json`` can write) on every process.

  Every process must call it at the same point; the others' ``value`` is ignored.
  """
  if jax.process_count() == 1:
    return value
  data = np.frombuffer(json.dumps(value).encode(), np.uint8) if is_writer() else None
  size = int(multihost_utils.broadcast_one_to_all(
      np.int64(data.size if data is not None else 0)))
  buffer = data if data is not None else np.zeros(size, np.uint8)
  return json.loads(np.asarray(multihost_utils.broadcast_one_to_all(buffer)).tobytes())


def broadcast_arrays(tree):
  """Process 0's tree of arrays on every process, as numpy arrays.

  The other processes pass a tree of the same structure, shapes and dtypes
  (their values are ignored).
  """
  return jax.tree.map(np.asarray, multihost_utils.broadcast_one_to_all(tree))


def from_writer(fn, errors: tuple = (Exception,)):
  """Runs ``fn()`` on the writing process only and returns its result everywhere.

  For what only the writer may look at (the work directory): its result must
  be JSON-serialisable. An exception of a type in ``errors`` raised there is
  raised on every process, same type and message, so that no process goes on
  alone. With one process this is just ``fn()``.
  """
  if jax.process_count() == 1:
    return fn()
  outcome, error = None, None
  if is_writer():
    try:
      outcome = {"value": fn()}
    except errors as e:  # shared below, then raised everywhere
      error = e
      outcome = {"error": _describe(e)}
  outcome = broadcast_json(outcome)
  if error is not None:
    raise error
  if "error" in outcome:
    raise _rebuild(outcome["error"], errors, 0)
  return outcome["value"]


def _describe(error: Exception) -> list[str]:
  """``[type name, message]`` of ``error``, to send to the other processes."""
  return [type(error).__name__, str(error.args[0] if error.args else error)]


def _rebuild(described, errors: tuple, process: int) -> Exception:
  """The exception ``_describe`` described, as one of ``errors`` (else RuntimeError)."""
  name, message = described
  kind = next((t for t in errors if t.__name__ == name), RuntimeError)
  return kind(f"process {process}: {message}")


_MESSAGE_BYTES = 4096


def on_every_process(fn, errors: tuple = (Exception,)):
  """Runs ``fn()`` on every process; if it fails on any, it fails on all.

  Each process keeps its own result. When ``fn`` raises one of ``errors`` on
  some process, every process raises that exception type with the failing
  process's message (the first one, by process index), prefixed with its
  index, instead of the others waiting in the next collective for ever.
  """
  if jax.process_count() == 1:
    return fn()
  value, error = None, None
  try:
    value = fn()
  except errors as e:  # shared below, then raised everywhere
    error = e
  report = np.zeros(_MESSAGE_BYTES, np.uint8)
  if error is not None:
    encoded = json.dumps(_describe(error)).encode()[: _MESSAGE_BYTES - 1]
    report[0] = 1
    report[1:1 + len(encoded)] = np.frombuffer(encoded, np.uint8)
  reports = np.asarray(multihost_utils.process_allgather(report))  # [processes, bytes]
  failed = np.flatnonzero(reports[:, 0])
  if failed.size == 0:
    return value
  if error is not None and failed[0] == jax.process_index():
    raise error
  first = int(failed[0])
  text = reports[first, 1:].tobytes().rstrip(b"\0").decode(errors="replace")
  try:
    described = json.loads(text)
  except ValueError:  # a message cut at the buffer's end
    described = ["RuntimeError", text]
  raise _rebuild(described, errors, first)


def differing_processes(value: np.ndarray) -> list[int]:
  """The processes whose ``value`` (same shape everywhere) differs from process 0's.

  Every process must call it; all get the same answer (``[]`` with one process).
  """
  if jax.process_count() == 1:
    return []
  values = np.asarray(multihost_utils.process_allgather(np.asarray(value)))
  return [i for i in range(1, len(values)) if not np.array_equal(values[i], values[0])]


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
