"""Chunked element-wise updates.

An optimizer step is a few arithmetic operations per parameter. Written as whole-array NumPy
operations it makes a dozen passes over parameters, gradients and moments, each streaming
through memory; applied to cache-sized chunks, the later passes over a chunk find it in the
L2 cache. Measured on config C's 670k parameters (2 cores): Adam 1.9 ms whole-array, 1.2 ms
in chunks of 65,536.

A numba-compiled single pass was tried and dropped: on its own it took 0.5-1 ms, but in the
training loop its thread pool and OpenBLAS's spinning threads slowed each other (GEMMs 2x
slower) and single-threaded it was no faster than the chunked NumPy update.
"""

from __future__ import annotations

from collections.abc import Iterator

__all__ = ["chunks", "CHUNK"]

#: elements per chunk: a handful of float32 arrays of this size fit in a 2 MB L2 cache
CHUNK = 65536


def chunks(n: int) -> Iterator[slice]:
    """Slices of at most ``CHUNK`` elements covering ``range(n)``."""
    for start in range(0, n, CHUNK):
        yield slice(start, min(start + CHUNK, n))
