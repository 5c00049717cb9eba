"""How an op's result lies over the chips, from how its operands do (the SPMD rules).

Every op infers its per-chip result shape from its per-chip operand shapes; these rules then give
the result's layout, or a TypeInferenceError when the operands' layouts cannot meet in that op
(a norm over a split dimension, a partial sum added to a replicated tensor). An op whose operands
are all replicated has a replicated result and never reaches these rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from irperf.layout import REPLICATED, Layout, partial, sharded
from irperf.types import TensorType

if TYPE_CHECKING:
    from irperf.ops.base import Op


def aligned(op: Op, inputs: Sequence[TensorType], out: TensorType) -> Layout:
    """Broadcasting ops: operands aligned from the right. Split operands must be split alike; a
    replicated operand may only broadcast (size 1) over the split dimension. A partial sum must
    first be reduced."""
    if any(t.layout.partial for t in inputs):
        raise op.fail(f"reads a partial sum {_first_partial(inputs)}; reduce it first")
    found: Layout | None = None
    for t in inputs:
        if t.layout.sharded:
            assert t.layout.dim is not None
            dim = t.layout.dim + out.rank - t.rank
            here = sharded(dim, t.layout.parts, t.layout.axis)
            if found is not None and found != here:
                raise op.fail(f"operands split differently: {found} and {t.layout}")
            found = here
    assert found is not None and found.dim is not None
    for t in inputs:
        d = found.dim - (out.rank - t.rank)
        if t.layout.replicated and 0 <= d < t.rank and t.shape[d] != 1:
            raise op.fail(
                f"mixes a split operand ({found}) with a replicated {t} that is whole along "
                f"dimension {found.dim}"
            )
    return found


def _first_partial(inputs: Sequence[TensorType]) -> str:
    return str(next(t for t in inputs if t.layout.partial))


def same_as_first(op: Op, inputs: Sequence[TensorType], out: TensorType) -> Layout:
    """Ops acting on each element or row of their first operand alone (RoPE per head, a view of
    the same shape): its layout carries over; the other operands must be replicated."""
    for t in inputs[1:]:
        if not t.layout.replicated:
            raise op.fail(f"needs its operands after the first replicated, got {t}")
    return inputs[0].layout


def linear_in_partial(op: Op, inputs: Sequence[TensorType], out: TensorType) -> Layout:
    """A sum's addends may go through linear ops (a scale by a replicated factor, a sum of
    partial sums) and stay a partial sum; anything else reads them after a reduction."""
    parts = [t for t in inputs if t.layout.partial]
    if not parts:
        return aligned(op, inputs, out)
    others = [t for t in inputs if not t.layout.partial]
    if others and any(not t.layout.replicated for t in others):
        raise op.fail(f"mixes a partial sum with a split operand {others[0]}")
    return parts[0].layout


def sum_of(op: Op, inputs: Sequence[TensorType], out: TensorType) -> Layout:
    """Adding partial sums gives a partial sum; a partial sum plus anything else is wrong (the
    other addend would be counted once per chip)."""
    parts = [t for t in inputs if t.layout.partial]
    if not parts:
        return aligned(op, inputs, out)
    if len(parts) != len(inputs) or any(t.layout != parts[0].layout for t in inputs):
        raise op.fail(f"adds a partial sum {parts[0]} to a whole operand; reduce it first")
    return parts[0].layout


def last_dim_whole(op: Op, inputs: Sequence[TensorType], out: TensorType) -> Layout:
    """Ops that reduce over the last dimension (norms, softmax): it must not be split."""
    x = inputs[0]
    if x.layout.partial:
        raise op.fail(f"reads a partial sum {x}; reduce it first")
    if x.layout.sharded and x.layout.dim == x.rank - 1:
        raise op.fail(f"normalises over dimension {x.rank - 1}, which {x} splits; gather it first")
    for t in inputs[1:]:
        if not t.layout.replicated:
            raise op.fail(f"needs replicated parameters, got {t}")
    return x.layout


def reshaped(
    op: Op, inputs: Sequence[TensorType], out: TensorType, split_dim: int | None = None
) -> Layout:
    """A view: the split dimension is the one that starts where the operand's did (a split
    ``[B, S, H*hd]`` viewed as ``[B, S, H, hd]`` is split on the heads); ``split_dim`` says which
    when per-chip sizes of 1 make it ambiguous."""
    x = inputs[0]
    if not x.layout.sharded:
        return x.layout  # a partial sum's view is still one
    assert x.layout.dim is not None
    before = _product(x.shape[: x.layout.dim])
    dims = [d for d in range(out.rank) if _product(out.shape[:d]) == before]
    if split_dim is not None:
        if split_dim not in dims:
            raise op.fail(f"cannot view {x} as {out.shape} split on dimension {split_dim}")
        return sharded(split_dim, x.layout.parts, x.layout.axis)
    for dim in dims:
        if out.shape[dim] > 1:
            return sharded(dim, x.layout.parts, x.layout.axis)
    raise op.fail(f"cannot view {x} as {out.shape}: the split dimension does not survive")


def permuted(op: Op, x: TensorType, perm: Sequence[int]) -> Layout:
    if not x.layout.sharded:
        return x.layout
    assert x.layout.dim is not None
    return sharded(list(perm).index(x.layout.dim), x.layout.parts, x.layout.axis)


def along_whole_axis(op: Op, inputs: Sequence[TensorType], axis: int) -> Layout:
    """Slices, pads and concatenations along ``axis``: that axis must be whole on each chip."""
    for t in inputs:
        if t.layout.partial:
            raise op.fail(f"reads a partial sum {t}; reduce it first")
        if t.layout.sharded and t.layout.dim == axis % t.rank:
            raise op.fail(f"works along dimension {axis % t.rank}, which {t} splits")
    first = inputs[0].layout
    if any(t.layout != first for t in inputs):
        raise op.fail("operands lie differently over the chips")
    return first


def matmul(op: Op, a: TensorType, b: TensorType, out: TensorType) -> Layout:
    """Column-parallel (``b`` split on N): the result is split on its last dimension.
    Row-parallel (``a`` split on K, ``b`` on K): each chip's product is a partial sum.
    A replicated ``b`` with ``a`` split on a batch or row dimension keeps ``a``'s split."""
    la, lb = a.layout, b.layout
    if la.partial or lb.partial:
        raise op.fail(f"reads a partial sum {a if la.partial else b}; reduce it first")
    k_a, k_b, n_b = a.rank - 1, b.rank - 2, b.rank - 1
    if la.replicated and lb.sharded and lb.dim == n_b:
        return sharded(out.rank - 1, lb.parts, lb.axis)
    if la.sharded and la.dim == k_a and lb.sharded and lb.dim == k_b:
        if la.parts != lb.parts:
            raise op.fail(f"contracts over {la} and {lb}: different splits")
        return partial(la.parts, la.axis)
    if la.sharded and lb.replicated and la.dim is not None and la.dim < a.rank - 1:
        return sharded(la.dim + out.rank - a.rank, la.parts, la.axis)
    raise op.fail(f"has no SPMD rule for {a} @ {b}")


def whole_operands(op: Op, inputs: Sequence[TensorType], out: TensorType) -> Layout:
    """Ops with no split rule: every operand must be whole on each chip."""
    for t in inputs:
        if not t.layout.replicated:
            raise op.fail(f"needs whole operands on each chip, got {t}")
    return REPLICATED


def _product(dims: Sequence[int]) -> int:
    n = 1
    for d in dims:
        n *= d
    return n
