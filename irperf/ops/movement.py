"""Data movement: reshape, transpose, slice, pad, concat, expand, cache append, and the
placement's spill and reshard. No arithmetic."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from attrs import field, frozen

from irperf.homes import Home
from irperf.layout import Layout
from irperf.ops import spmd
from irperf.ops.base import Op, OpFamily, normalize_axis
from irperf.types import TensorType


def _ints(value: Sequence[int]) -> tuple[int, ...]:
    return tuple(value)


@frozen(kw_only=True)
class Movement(Op):
    family: ClassVar[OpFamily] = OpFamily.MOVEMENT


@frozen(kw_only=True)
class Reshape(Movement):
    """A view with a new shape and the same number of elements.

    ``split_dim``: on a split operand, the result dimension that holds the split (per-chip shapes
    alone can be ambiguous: one head per chip makes ``[B, S, 1, hd]``); None: the first result
    dimension of size > 1 that starts where the operand's split did."""

    kind: ClassVar[str] = "reshape"
    shape: tuple[int, ...] = field(converter=_ints)
    split_dim: int | None = None

    def _infer(self, inputs: Sequence[TensorType]) -> TensorType:
        x = inputs[0]
        out = x.with_shape(self.shape)
        if out.numel != x.numel:
            raise self.fail(f"cannot reshape {x} to {self.shape}")
        return out

    def layout_of(self, inputs: Sequence[TensorType], out: TensorType) -> Layout:
        return spmd.reshaped(self, inputs, out, self.split_dim)


@frozen(kw_only=True)
class Transpose(Movement):
    kind: ClassVar[str] = "transpose"
    perm: tuple[int, ...] = field(converter=_ints)

    def _infer(self, inputs: Sequence[TensorType]) -> TensorType:
        x = inputs[0]
        if sorted(self.perm) != list(range(x.rank)):
            raise self.fail(f"perm {self.perm} is not a permutation of {x.rank} axes")
        return x.with_shape(tuple(x.shape[i] for i in self.perm))

    def layout_of(self, inputs: Sequence[TensorType], out: TensorType) -> Layout:
        return spmd.permuted(self, inputs[0], self.perm)


@frozen(kw_only=True)
class Slice(Movement):
    """``x[..., start:stop, ...]`` along one axis."""

    kind: ClassVar[str] = "slice"
    axis: int
    start: int
    stop: int

    def _infer(self, inputs: Sequence[TensorType]) -> TensorType:
        x = inputs[0]
        ax = normalize_axis(self, self.axis, x.rank)
        if not 0 <= self.start < self.stop <= x.shape[ax]:
            raise self.fail(f"[{self.start}:{self.stop}] outside axis {ax} of {x}")
        shape = list(x.shape)
        shape[ax] = self.stop - self.start
        return x.with_shape(tuple(shape))

    def layout_of(self, inputs: Sequence[TensorType], out: TensorType) -> Layout:
        return spmd.along_whole_axis(self, inputs, self.axis)


@frozen(kw_only=True)
class Pad(Movement):
    """Zero padding along one axis."""

    kind: ClassVar[str] = "pad"
    axis: int
    before: int = 0
    after: int = 0

    def _infer(self, inputs: Sequence[TensorType]) -> TensorType:
        x = inputs[0]
        ax = normalize_axis(self, self.axis, x.rank)
        if self.before < 0 or self.after < 0:
            raise self.fail("padding must be non-negative")
        shape = list(x.shape)
        shape[ax] += self.before + self.after
        return x.with_shape(tuple(shape))

    def layout_of(self, inputs: Sequence[TensorType], out: TensorType) -> Layout:
        return spmd.along_whole_axis(self, inputs, self.axis)


@frozen(kw_only=True)
class Concat(Movement):
    """Joins its operands along ``axis``; every other dimension and the dtype must agree."""

    kind: ClassVar[str] = "concat"
    arity: ClassVar[int | None] = None
    axis: int

    def _infer(self, inputs: Sequence[TensorType]) -> TensorType:
        first = inputs[0]
        ax = normalize_axis(self, self.axis, first.rank)
        total = 0
        for t in inputs:
            same_rank = t.rank == first.rank and t.dtype == first.dtype
            others = same_rank and all(
                t.shape[i] == first.shape[i] for i in range(first.rank) if i != ax
            )
            if not others:
                raise self.fail(f"{t} does not concatenate with {first} along axis {ax}")
            total += t.shape[ax]
        shape = list(first.shape)
        shape[ax] = total
        return first.with_shape(tuple(shape))

    def layout_of(self, inputs: Sequence[TensorType], out: TensorType) -> Layout:
        return spmd.along_whole_axis(self, inputs, self.axis)


@frozen(kw_only=True)
class CacheAppend(Movement):
    """Writes ``new[B, T, D]`` in place after the ``C`` rows of ``cache[B, C, D]``.

    The result ``[B, C+T, D]`` is the cache buffer after the write: it aliases the cache's
    storage, so the old rows are neither read nor copied (a runtime's static KV cache).
    """

    kind: ClassVar[str] = "cache_append"
    arity: ClassVar[int | None] = 2
    axis: ClassVar[int] = 1  # the sequence axis

    def _infer(self, inputs: Sequence[TensorType]) -> TensorType:
        cache, new = inputs
        if cache.rank != 3 or new.rank != 3:
            raise self.fail(f"needs [B, C, D] and [B, T, D], got {cache} and {new}")
        if (cache.shape[0], cache.shape[2], cache.dtype) != (new.shape[0], new.shape[2], new.dtype):
            raise self.fail(f"{new} does not append to {cache}: batch, width and dtype must agree")
        b, c, d = cache.shape
        return cache.with_shape((b, c + new.shape[1], d))


@frozen(kw_only=True)
class Expand(Movement):
    """Broadcast to a larger shape (size-1 dimensions grow, new leading dimensions appear)."""

    kind: ClassVar[str] = "expand"
    shape: tuple[int, ...] = field(converter=_ints)

    def _infer(self, inputs: Sequence[TensorType]) -> TensorType:
        x = inputs[0]
        if len(self.shape) < x.rank:
            raise self.fail(f"cannot expand {x} to fewer dimensions {self.shape}")
        for d, target in zip(reversed(x.shape), reversed(self.shape), strict=False):
            if d not in (1, target):
                raise self.fail(f"cannot expand {x} to {self.shape}")
        return x.with_shape(self.shape)


@frozen(kw_only=True)
class MemoryMove(Movement):
    """A tensor copied to memory home ``home`` (``irperf.homes``): the same values, shape,
    format and split, somewhere else on the chip. The placement inserts these; a model never
    does."""

    home: Home

    def _infer(self, inputs: Sequence[TensorType]) -> TensorType:
        if not isinstance(self.home, Home):
            raise self.fail(f"home must be an irperf.homes.Home, got {self.home!r:.40}")
        return inputs[0]

    def layout_of(self, inputs: Sequence[TensorType], out: TensorType) -> Layout:
        return inputs[0].layout

    def describe(self) -> str:
        return f"{self.kind} to {self.home.value}"


@frozen(kw_only=True)
class Spill(MemoryMove):
    """An L1 tensor written to DRAM to make room (the placement's spill rule); its later
    readers read the copy."""

    kind: ClassVar[str] = "spill"


@frozen(kw_only=True)
class Reshard(MemoryMove):
    """A tensor copied into the L1 layout one consumer must read it in (another sharding, or a
    DRAM tensor into the sharded L1 a DRAM-sharded matmul reads)."""

    kind: ClassVar[str] = "reshard"
