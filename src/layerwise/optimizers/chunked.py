"""Chunked element-wise updates.

An optimizer's ``formula`` is a few arithmetic operations per parameter. Applied by NumPy to
whole arrays it makes a dozen passes over parameters, gradients and moments, each streaming
through memory; applied to cache-sized chunks, the later passes over a chunk find it in the
cache. With numba installed the formula runs instead as one compiled pass over the flat
buffer (``layerwise.compiled.update_in_one_pass``): one read and one write of each array.
"""

from __future__ import annotations

from collections.abc import Iterator

__all__ = ["CHUNK", "chunks"]

#: elements per chunk: a handful of float32 arrays of this size fit in a 2 MB L2 cache
CHUNK = 65536


def chunks(n: int, size: int = CHUNK) -> Iterator[slice]:
    """Slices of at most ``size`` elements covering ``range(n)``."""
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))
