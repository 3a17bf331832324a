"""Data-parallel training across processes and machines on MPI (``pip install 'layerwise[mpi]'``).

Launch the same script on every rank; after ``init()`` the ordinary ``model.fit(...)`` is
data-parallel::

    import layerwise as lw
    ctx = lw.distributed.init()          # every rank; MPI.COMM_WORLD
    model = ...                          # the same model and data on every rank
    model.fit(x, y, batch_size=256, epochs=10)   # 256 = the global batch
    if ctx.is_chief: print("done")

    mpiexec -n 4 python -m mpi4py train.py

What ``fit`` does under a context (``docs/distributed.md`` has the details and the costs):

- every rank draws the same epoch order from ``(seed, epoch)``, and takes its contiguous part
  of each global batch (parts differ by at most one row; some may be empty);
- each rank's gradient and loss, as sums over its part, and its sample count travel in one
  ``Allreduce`` of the flat gradient buffer (two extra elements carry the loss and the count);
  dividing by the global count gives exactly the gradient of the global batch's mean loss, so
  an uneven last batch gives the same result as one process;
- the NaN guard sees the global loss, so every rank stops or none; validation and
  ``evaluate`` are sharded the same way and reduced, so every rank logs the same values and
  EarlyStopping, ReduceLROnPlateau and TerminateOnNaN act in lockstep;
- at the start of ``fit`` rank 0 broadcasts the weights, the optimizer state and layer
  constants (Normalization's mean and variance; ``ctx.adapt`` computes them from all ranks'
  data);
- Dropout and RReLU noise comes from a per-rank stream derived from ``(seed, rank, epoch)``,
  so a run resumed at the same world size repeats the uninterrupted one bit for bit;
- progress bars, CSVLogger, ModelCheckpoint, plots and ``save`` write on rank 0 only.

With one rank everything reduces to plain ``fit`` (no communication). An exception on any
rank aborts the whole job (``MPI.Abort``) instead of leaving the other ranks waiting.
"""

from __future__ import annotations

import os
import sys
import tempfile
import warnings
from typing import Any

import numpy as np

from .utils import optional_import

__all__ = ["Context", "current", "init", "is_chief", "load_model", "shutdown"]

_context: list[Context | None] = [None]


def _mpi() -> Any:
    return optional_import("mpi4py.MPI", "Distributed training", "mpi")


class Context:
    """This process's place in a data-parallel job: ``rank``, ``size``, ``is_chief``, the
    communicator and the shared ``seed``."""

    def __init__(self, comm: Any, seed: int) -> None:
        self.comm = comm
        self.rank = int(comm.Get_rank())
        self.size = int(comm.Get_size())
        self.is_chief = self.rank == 0
        self.seed = int(seed)

    def __repr__(self) -> str:
        return f"<layerwise.distributed.Context rank={self.rank} size={self.size}>"

    def __reduce__(self) -> Any:
        raise TypeError("A distributed Context holds an MPI communicator and is not pickled; "
                        "call layerwise.distributed.init() in each process instead.")

    # -- collectives used by the training loop ---------------------------------------------
    @property
    def shard(self) -> tuple[int, int] | None:
        """(rank, size) for the batch sources, or None with one rank (nothing to split)."""
        return (self.rank, self.size) if self.size > 1 else None

    def sum(self, values: np.ndarray) -> np.ndarray:
        """The element-wise sum of ``values`` over all ranks (float64)."""
        values = np.ascontiguousarray(values, dtype=np.float64)
        if self.size == 1:
            return values
        out = np.empty_like(values)
        self.comm.Allreduce(values, out)
        return out

    def reduce_step(self, model: Any, loss: float, count: int) -> float:
        """Turn this rank's gradients (of its part's mean loss) into the global batch's, in
        place, with one Allreduce; returns the global mean loss."""
        if self.size == 1:
            return loss
        buffer = model._grad_buffer
        if buffer is None or model._grad_tail != 2:  # unpacked parameters: one call each
            sums = self.sum(np.array([loss * count, count]))
            for grad in model._grad_list:
                grad *= count
                self.comm.Allreduce(_mpi().IN_PLACE, grad)
                grad *= 1.0 / max(sums[1], 1.0)
            return float(sums[0] / sums[1]) if sums[1] else 0.0
        grads = buffer[:-2]
        if count != 1:
            grads *= count  # the mean over this rank's part -> its sum
        buffer[-2] = loss * count
        buffer[-1] = count
        self.comm.Allreduce(_mpi().IN_PLACE, buffer)
        total = float(buffer[-1])
        if total:
            grads *= 1.0 / total
        return float(buffer[-2]) / total if total else 0.0

    def seed_noise(self, epoch: int) -> None:
        """Dropout/RReLU noise of this rank in ``epoch``: a stream of (seed, rank, epoch)."""
        from . import utils

        utils._set_global_rng(np.random.default_rng([self.seed, self.rank, epoch]))

    def broadcast_model(self, model: Any) -> None:
        """Give every rank rank 0's weights, optimizer state and layer constants."""
        if self.size == 1:
            return
        frozen = [p for layer in model.layers if not layer.trainable
                  for p in layer.params.values()]
        for array in ([model._flat_params, *frozen] if model._flat_params is not None
                      else model.params):
            self.comm.Bcast(array, root=0)
        constants = self.comm.bcast([layer.get_constants() for layer in model.layers], root=0)
        for layer, values in zip(model.layers, constants):
            if values:
                layer.set_constants(values)
        # the optimizer: every rank takes the same branch, decided by rank 0's state
        optimizer = model.optimizer
        chief_has_state = self.comm.bcast(optimizer.built or optimizer._restore is not None,
                                          root=0)
        if chief_has_state:
            state = self.comm.bcast(optimizer.get_state() if self.is_chief else None, root=0)
            if not self.is_chief:
                optimizer.set_state(state)
        else:
            iterations = self.comm.bcast(optimizer.iterations, root=0)
            if not self.is_chief:
                optimizer.set_state({"iterations": iterations, "slots": {}})

    def adapt(self, layer: Any, data: Any) -> None:
        """``layer.adapt`` (Normalization) on the union of every rank's ``data``: the mean and
        variance of all rows, combined from each rank's count, mean and squared deviations."""
        data = np.asarray(data, dtype=np.float64)
        if data.ndim == 1:
            data = data[:, None]
        n = data.shape[0]
        mean = data.mean(axis=0) if n else np.zeros(data.shape[1])
        m2 = ((data - mean) ** 2).sum(axis=0) if n else np.zeros(data.shape[1])
        parts = self.comm.allgather((n, mean, m2))
        total, mean_all, m2_all = 0, np.zeros_like(mean), np.zeros_like(m2)
        for count, part_mean, part_m2 in parts:  # Chan et al.'s pairwise update, rank order
            if not count:
                continue
            delta = part_mean - mean_all
            new_total = total + count
            mean_all = mean_all + delta * (count / new_total)
            m2_all = m2_all + part_m2 + delta**2 * (total * count / new_total)
            total = new_total
        if not total:
            raise ValueError("adapt() needs data: every rank passed an empty array.")
        layer.set_constants({"mean": mean_all, "variance": m2_all / total})

    def barrier(self) -> None:
        self.comm.Barrier()


def init(comm: Any = None, seed: int | None = None, blas_threads: int | None = 1,
         abort_on_error: bool = True) -> Context:
    """Join the data-parallel job (every rank calls this once, before building models).

    Args:
        comm: an mpi4py communicator (default ``MPI.COMM_WORLD``).
        seed: the shared seed of weights, epoch orders and noise streams (default: rank 0
            draws one and broadcasts it); the global generator is seeded with it on every
            rank, so models built afterwards start identical.
        blas_threads: BLAS threads per rank (default 1: ranks usually share a machine's
            cores, and two OpenBLAS threads per rank on shared cores ran 6x slower); None
            leaves them to ``layerwise.threads``.
        abort_on_error: an exception that reaches the top of any rank calls ``MPI.Abort``,
            ending every rank with a non-zero status instead of leaving them waiting.
    """
    mpi = _mpi()
    comm = mpi.COMM_WORLD if comm is None else comm
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % 2**63) if comm.Get_rank() == 0 else 0
    seed = int(comm.bcast(seed, root=0))
    from . import threads, utils

    utils.set_random_seed(seed)  # identical initial weights on every rank
    if blas_threads is not None:
        threads.set_threads(blas_threads)
        _limit_blas(blas_threads)
    context = Context(comm, seed)
    _context[0] = context
    if abort_on_error and context.size > 1:
        _install_abort(comm)
    return context


def _limit_blas(n: int) -> None:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(limits=n, user_api="blas")


def _install_abort(comm: Any) -> None:
    previous = sys.excepthook

    def abort(kind: Any, value: Any, traceback: Any) -> None:
        previous(kind, value, traceback)
        sys.stderr.flush()
        comm.Abort(1)

    sys.excepthook = abort


def shutdown() -> None:
    """Leave the job: ``fit`` is single-process again (MPI itself ends with the process)."""
    _context[0] = None


def current() -> Context | None:
    """The context of this process's job, or None outside one."""
    return _context[0]


def is_chief() -> bool:
    """True on rank 0, and outside a distributed job: whether this process writes files
    and progress."""
    context = _context[0]
    return context is None or context.is_chief


def load_model(path: str | os.PathLike[str], **kwargs: Any) -> Any:
    """``layerwise.load_model`` for every rank, with only rank 0 reading ``path``: the bytes
    are broadcast, so no shared filesystem is needed. Warns when the file was saved at
    another world size (a resumed run then differs from the uninterrupted one)."""
    from .saving import load_model as load

    context = _context[0]
    if context is None or context.size == 1:
        return load(path, **kwargs)
    data = None
    if context.is_chief:
        with open(os.fspath(path), "rb") as handle:
            data = handle.read()
    data = context.comm.bcast(data, root=0)
    with tempfile.TemporaryDirectory() as folder:
        local = os.path.join(folder, "model.safetensors")
        with open(local, "wb") as handle:
            handle.write(data)
        model = load(local, **kwargs)
    saved = getattr(model, "saved_world_size", None)
    if saved is not None and saved != context.size:
        warnings.warn(f"{path} was saved by a job of {saved} ranks; this job has "
                      f"{context.size}, so the noise streams and batch splits differ from the "
                      "saved run's.", UserWarning, stacklevel=2)
    return model
