"""The compiled training step split across threads, each owning its part of every layer.

The kernel of ``compiled`` runs a step on one thread and leaves the products to a
multi-threaded oneDNN: every product thread reads every weight (X@W, dZ@Wᵀ), then the main
thread alone writes every weight (the optimizer's pass). Each weight line must then be taken
back from the other core's cache first; on some shared 2-vCPU hosts that cost 4-10x more for
minutes at a time, and made config C (784-512-512-10, Adam) 1.5x slower
(``benchmarks/shared_lines.py`` measures it). Here each of ``parts`` threads runs the same
kernel on its own part of every layer, and no weight line is ever touched by two threads:

- thread ``t`` owns the rows ``bounds[i, t]:bounds[i, t + 1]`` of layer ``i``'s ``W`` (a
  contiguous piece of the flat parameters), their gradient and optimizer state, the same
  columns of the layer's input (of ``X`` for the first layer: it gathers them itself), and
  the bias entries of the columns it owns of the layer's output;
- forward, ``Q[t] = a[:, own] @ W[own, :]`` is its part of the layer's product (a split of
  the inner dimension); after a barrier it adds the parts up, with the bias and the
  activation, for the columns it owns of the next layer's input: those are all the next
  product needs of it, so one barrier per layer. The last layer's output is added up by
  batch rows instead, with the loss of those rows;
- backward, ``gW[own, :] = a[:, own]ᵀ @ dz`` and ``dY[:, own] = dz @ W[own, :]ᵀ`` need the
  whole ``dz`` and only its own weights; the activation's derivative and the bias gradient
  follow on its own columns of ``dY``, then a barrier;
- the optimizer's pass runs over its own ranges only: the same formula, half the sweep.

Every product is a single-threaded oneDNN call; the threads are ``fit``'s (the main thread
and ``parts - 1`` Python threads running the same compiled function without the GIL), and
meet at a spin barrier on an atomic counter (``_sync_functions``). The math is the same
formulas as the one-thread kernel; only the order of the float sums differs (the partial
products are added up, the bias gradient is summed column by column).
"""

from __future__ import annotations

import platform
import threading
from typing import Any

import numpy as np

from . import compiled

__all__ = ["ALIGN", "aligned_empty", "helpers", "kernel_source", "reason_not_split",
           "run_lock", "split_bounds", "work_layout", "work_places"]

#: a thread's part of a layer's rows starts at a multiple of this many (one 64-byte cache
#: line of float32): two threads never write the same line of X, Z, A or dY
ALIGN = 16

_sync: dict[str, Any] | None = None
_pool: list[Any] = []  # [(threads, ThreadPoolExecutor)] once a split kernel used helpers
#: held while a split kernel runs: the parts of two at once could take all of the pool's
#: threads, each waiting at its barrier for a part still queued behind the other's
run_lock = threading.Lock()


def helpers(count: int) -> Any:
    """A pool of at least ``count`` threads kept for the process, which run the other parts
    of a split kernel (the calling thread runs part 0)."""
    from concurrent.futures import ThreadPoolExecutor

    if not _pool or _pool[0][0] < count:
        if _pool:
            _pool.pop()[1].shutdown(wait=False)
        _pool.append((count, ThreadPoolExecutor(count, thread_name_prefix="layerwise-part")))
    return _pool[0][1]


def reason_not_split(model: Any, dtype: str) -> str | None:
    """Why ``model`` cannot train in the split kernel (it then keeps the one-thread kernel),
    or None. It needs float32 (oneDNN), activations computed number by number (the last
    one's may be fused into the loss) and every layer at least ``2 * ALIGN`` inputs wide (a
    part for each of two threads)."""
    if dtype != "float32":
        return "not float32"
    last = len(model.layers) - 1
    for i, layer in enumerate(model.layers):
        if i == last and model._fused is not None:
            continue
        if not compiled._takes_numbers(layer.activation, dtype):
            return f"layer {i}'s activation is computed on whole rows"
    if min(layer.input_dim for layer in model.layers) < 2 * ALIGN:
        return f"a layer has fewer than {2 * ALIGN} inputs"
    return None


def split_bounds(model: Any, parts: int) -> np.ndarray:
    """``(layers + 1, parts + 1)``: row ``i < layers`` splits layer ``i``'s inputs (its W's
    rows) into ``parts`` ranges starting at multiples of ``ALIGN`` (an empty range where there
    are too few); the last row splits the last layer's units (whose bias each part updates)."""
    sizes = [layer.input_dim for layer in model.layers]
    rows = []
    for size in sizes:
        cuts = [min(size, round(size * t / parts / ALIGN) * ALIGN) for t in range(parts)]
        rows.append([*cuts, size])
    units = model.layers[-1].units
    rows.append([units * t // parts for t in range(parts + 1)])
    return np.array(rows, dtype=np.int64)


def work_layout(model: Any) -> list[tuple[str, tuple[Any, ...]]]:
    """The arrays the threads share, by name and shape (``"batch"``, ``"parts"`` and
    ``"targets"`` stand for the batch size, the thread count and the targets' columns): the
    kernel's views of one buffer (``work_places``)."""
    dense, fused = model.layers, model._fused is not None
    last = len(dense) - 1
    arrays: list[tuple[str, tuple[Any, ...]]] = [
        ("X", ("batch", dense[0].input_dim)), ("T", ("batch", "targets")), ("Wt", ("batch",)),
        ("DL", ("batch", dense[last].units))]
    for i, layer in enumerate(dense):
        arrays += [(f"Q{i}", ("parts", "batch", layer.units)), (f"Z{i}", ("batch", layer.units))]
        if not (i == last and fused):
            arrays.append((f"A{i}", ("batch", layer.units)))
        if i > 0:
            arrays.append((f"DY{i}", ("batch", layer.input_dim)))
    return arrays


def work_places(model: Any, batch: int, parts: int, targets: int) -> tuple[np.ndarray, int]:
    """Each array of ``work_layout`` by its offset in the shared buffer (a multiple of
    ``ALIGN``), and the buffer's size."""
    value = {"batch": batch, "parts": parts, "targets": targets}
    places, size = [], 0
    for _, shape in work_layout(model):
        places.append(size)
        count = int(np.prod([value.get(d, d) for d in shape]))
        size += -(-count // ALIGN) * ALIGN
    return np.array(places, dtype=np.int64), size


def aligned_empty(size: int, dtype: Any) -> np.ndarray:
    """An uninitialised 1-D array whose first element starts a cache line."""
    raw = np.empty(size + ALIGN, dtype)
    shift = (-raw.ctypes.data // raw.itemsize) % ALIGN
    return raw[shift:shift + size]


def _sync_functions() -> dict[str, Any]:
    """``barrier(sync, generation, parts)``: wait until all ``parts`` threads have called it
    for the ``generation + 1``-th time; returns the new generation, or -1 when ``sync[1]``
    (abort: another thread failed) is set. ``sync[0]`` counts the arrivals and only grows, so
    it needs no reset within a run."""
    global _sync
    if _sync is None:
        from llvmlite import ir
        from numba.core import cgutils
        from numba.extending import intrinsic

        numba = compiled._numba
        nb = compiled._nb()

        def pointer(context: Any, builder: Any, kind: Any, array: Any, index: Any) -> Any:
            data = context.make_array(kind)(context, builder, array)
            return cgutils.get_item_pointer(context, builder, kind, data, [index],
                                            wraparound=False)

        @intrinsic
        def atomic_add(typingctx: Any, array: Any, index: Any, value: Any) -> Any:
            def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
                at = pointer(context, builder, signature.args[0], args[0], args[1])
                return builder.atomic_rmw("add", at, args[2], "seq_cst")
            return nb.int64(array, index, value), codegen

        @intrinsic
        def atomic_load(typingctx: Any, array: Any, index: Any) -> Any:
            def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
                at = pointer(context, builder, signature.args[0], args[0], args[1])
                return builder.load_atomic(at, "acquire", 8)
            return nb.int64(array, index), codegen

        x86 = platform.machine().lower() in ("x86_64", "amd64", "i686", "x86")

        @intrinsic
        def pause(typingctx: Any) -> Any:
            """The spin-wait hint (x86's ``pause``): the waiting core yields to its sibling
            hyper-thread and leaves the loop without a memory-order stall."""
            def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
                if x86:
                    function = cgutils.get_or_insert_function(
                        builder.module, ir.FunctionType(ir.VoidType(), []),
                        "llvm.x86.sse2.pause")
                    builder.call(function, [])
                return context.get_dummy_value()
            return nb.void(), codegen

        @numba.njit(nogil=True)
        def barrier(sync, generation, parts):  # type: ignore[no-untyped-def]
            generation += 1
            atomic_add(sync, 0, 1)
            while atomic_load(sync, 0) < generation * parts:
                if atomic_load(sync, 1) != 0:
                    return -1
                pause()
            return generation

        _sync = {"barrier": barrier}
    return _sync


def kernel_source(model: Any, n_hyper: list[int], n_loss_hyper: int, present: tuple[bool, ...],
                  n_opt_hyper: int, decoupled: bool, dtype: str, loss_numbers: bool) -> str:
    """The source of one network's split kernel (see the module's docstring)."""
    dense = model.layers
    fused = model._fused is not None
    last = len(dense) - 1
    num = f"np.{dtype}"

    def nhp(i: int) -> str:
        return "".join(f", ah{i}_{h}" for h in range(n_hyper[i]))

    lhp = "".join(f", lh{h}" for h in range(n_loss_hyper))
    slots = [f"S{i}" for i in range(len(present))]
    lines = [f"def epoch(x, t, sw, order, first, steps, batch, P, G, {', '.join([*slots, ''])}"
             "H, offsets, ahyper, lhyper, loss_weight, units_denominator, every, it0, losses, "
             "part, parts, bounds, work, places, sync, shared):",
             "    n = order.shape[0]"]
    lines += compiled._parameter_views(dense)
    for k, (name, shape) in enumerate(work_layout(model)):
        shape = tuple("t.shape[1]" if d == "targets" else d for d in shape)
        dims = ", ".join(str(d) for d in shape)
        size = " * ".join(str(d) for d in shape)
        lines.append(f"    {name} = work[places[{k}]:places[{k}] + {size}].reshape(({dims},))")
    for i in range(len(dense)):
        lines += [f"    ah{i}_{h} = {num}(ahyper[{i}, {h}])" for h in range(n_hyper[i])]
    lines += [f"    lh{h} = {num}(lhyper[{h}])" for h in range(n_loss_hyper)]
    lines.append(f"    zero = {num}(0.0)  # an optimizer slot that is off")
    # this thread's rows of each W (lo, hi), and the flat ranges it updates: its W rows, and
    # the bias of the columns it owns (a layer's output columns are the next one's rows)
    # (unsigned: numba then needs no check for negative indices, and the loops vectorise)
    lines += [f"    lo{i}, hi{i} = np.uint64(bounds[{i}, part]), np.uint64(bounds[{i}, part + 1])"
              for i in range(len(dense) + 1)]
    lines.append(f"    own = np.zeros(({2 * len(dense)}, 2), np.uint64)")
    for i, layer in enumerate(dense):
        lines.append(f"    own[{2 * i}] = (offsets[{i}, 0] + bounds[{i}, part] * {layer.units}, "
                     f"offsets[{i}, 0] + bounds[{i}, part + 1] * {layer.units})")
        if layer.use_bias:
            lines.append(f"    own[{2 * i + 1}] = (offsets[{i}, 1] + bounds[{i + 1}, part], "
                         f"offsets[{i}, 1] + bounds[{i + 1}, part + 1])")
    lines += ["    generation = 0",
              "    total = 0.0",
              "    for s in range(steps):",
              "        start = (first + s) * batch",
              "        m = min(batch, n - start)",
              "        rlo = np.uint64(m * part // parts)  # this thread's rows of the loss",
              "        rhi = np.uint64(m * (part + 1) // parts)",
              "        for r in range(m):  # this thread's columns of the batch",
              "            j = order[start + r]",
              "            for c in range(lo0, hi0):",
              "                X[r, c] = x[j, c]",
              "        for r in range(rlo, rhi):",
              "            j = order[start + r]",
              "            for c in range(t.shape[1]):",
              "                T[r, c] = t[j, c]",
              "            Wt[r] = sw[j]",
              "        ahead = start + batch  # the next batch's rows: on their way meanwhile",
              "        for r in range(min(batch, n - ahead) if s + 1 < steps else 0):",
              "            j = order[ahead + r]",
              f"            for c in range(lo0, hi0, {ALIGN}):",
              "                prefetch(x, j, c)",
              "            prefetch(t, j, 0)"]
    wait = ["        generation = barrier(sync, generation, parts)",
            "        if generation < 0:",
            "            return s, 3, total"]
    for i, layer in enumerate(dense):
        below = "X" if i == 0 else f"A{i - 1}"
        lines += [f"        if hi{i} > lo{i}:",
                  f"            gemm({below}[:m, lo{i}:hi{i}], W{i}[lo{i}:hi{i}], Q{i}[part, :m], "
                  "False, False)",
                  "        else:  # no rows here (oneDNN leaves the product unwritten)",
                  f"            Q{i}[part, :m] = 0.0", *wait]
        bias = f" + B{i}[c]" if layer.use_bias else ""
        if i < last:  # this thread's columns of z and a: the next product's rows
            rows, cols = "range(m)", f"range(lo{i + 1}, hi{i + 1})"
        else:  # the last layer by batch rows, for the loss of those rows
            rows, cols = "range(rlo, rhi)", f"range({layer.units})"
        lines += [f"        for r in {rows}:",
                  f"            for c in {cols}:",
                  f"                Z{i}[r, c] = Q{i}[0, r, c]{bias}",
                  "            for q in range(1, parts):",
                  f"                for c in {cols}:",
                  f"                    Z{i}[r, c] += Q{i}[q, r, c]"]
        if not (i == last and fused):
            lines += [f"            for c in {cols}:",
                      f"                A{i}[r, c] = f{i}(Z{i}[r, c]{nhp(i)})"]
    out = f"Z{last}" if fused else f"A{last}"
    lines.append("        part_loss = 0.0")
    if loss_numbers:  # this thread's rows: each unit's loss and derivative, in one loop
        lines += [f"        factor = {num}(loss_weight / (units_denominator * m))",
                  "        for r in range(rlo, rhi):",
                  "            weight = Wt[r] * factor",
                  f"            for c in range({dense[last].units}):",
                  f"                part_loss += loss_value(T[r, c], {out}[r, c]{lhp}) * weight",
                  f"                DL[r, c] = loss_grad(T[r, c], {out}[r, c]{lhp}) * weight"]
    else:  # the formulas take whole rows (a softmax's): this thread's block of rows
        lines += ["        rows = np.int64(rhi - rlo)",
                  "        if rows > 0:",
                  "            tb, wb, ob = T[rlo:rhi], Wt[rlo:rhi], " + out + "[rlo:rhi]",
                  f"            each = loss_value(tb, ob{lhp})",
                  "            part_loss = (each * wb.reshape((rows, 1))).sum() "
                  "/ units_denominator / m * loss_weight",
                  "            scale = wb * (loss_weight / (units_denominator * m))",
                  f"            DL[rlo:rhi] = cast(loss_grad(tb, ob{lhp}) "
                  "* scale.reshape((rows, 1)), ob)"]
    if not fused:
        lines += ["        for r in range(rlo, rhi):",
                  f"            for c in range({dense[last].units}):",
                  f"                DL[r, c] = DL[r, c] * df{last}(Z{last}[r, c], "
                  f"A{last}[r, c]{nhp(last)})"]
    lines += ["        shared[part] = part_loss", *wait,
              "        loss = 0.0",
              "        for q in range(parts):",
              "            loss += shared[q]",
              "        if not np.isfinite(loss):",
              "            losses[0] = loss",
              "            return s, 1, total"]
    for i in range(last, -1, -1):
        layer = dense[i]
        dz = "DL" if i == last else f"DY{i + 1}"  # the whole batch's dz, all columns
        below = "X" if i == 0 else f"A{i - 1}"
        lines.append(f"        gemm({below}[:m, lo{i}:hi{i}], {dz}[:m], gW{i}[lo{i}:hi{i}], "
                     "True, False)")
        if i == last and layer.use_bias:  # the last layer's bias by its own columns
            lines += compiled._bias_gradient(i, dz, f"lo{last + 1}", f"hi{last + 1}")
        if i > 0:  # dz of the layer below, on this thread's columns
            lines += [f"        gemm({dz}[:m], W{i}[lo{i}:hi{i}], DY{i}[:m, lo{i}:hi{i}], "
                      "False, True)",
                      "        for r in range(m):",
                      f"            for c in range(lo{i}, hi{i}):",
                      f"                DY{i}[r, c] = DY{i}[r, c] * df{i - 1}(Z{i - 1}[r, c], "
                      f"A{i - 1}[r, c]{nhp(i - 1)})"]
            if dense[i - 1].use_bias:
                lines += compiled._bias_gradient(i - 1, f"DY{i}", f"lo{i}", f"hi{i}")
            lines += wait
    lines += compiled._update_lines(slots, present, n_opt_hyper, decoupled, num, own=True)
    lines += ["        total += loss * m",
              "        losses[0] = loss",
              "        if (it0 + s + 1) % every == 0:  # every part's weights finite?",
              "            fine = 1.0",
              f"            for k in range({2 * len(dense)}):",
              "                lo, hi = own[k, 0], own[k, 1]",
              "                if hi > lo and not all_finite(P[lo:hi]):",
              "                    fine = 0.0",
              "            shared[parts + part] = fine",
              "            generation = barrier(sync, generation, parts)",
              "            if generation < 0:",
              "                return s + 1, 3, total",
              "            for q in range(parts):",
              "                if shared[parts + q] == 0.0:",
              "                    return s + 1, 2, total",
              "    return steps, 0, total"]
    return "\n".join(lines) + "\n"

