"""Data movement: reshape, transpose, slice, pad, concat, expand. No arithmetic."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from attrs import field, frozen

from irperf.ops.base import Op, OpFamily, normalize_axis
from irperf.types import TensorType


def _ints(value: Sequence[int]) -> tuple[int, ...]:
    return tuple(value)


@frozen(kw_only=True)
class Movement(Op):
    family: ClassVar[OpFamily] = OpFamily.MOVEMENT


@frozen(kw_only=True)
class Reshape(Movement):
    """A view with a new shape and the same number of elements."""

    kind: ClassVar[str] = "reshape"
    shape: tuple[int, ...] = field(converter=_ints)

    def _infer(self, inputs: Sequence[TensorType]) -> TensorType:
        x = inputs[0]
        out = x.with_shape(self.shape)
        if out.numel != x.numel:
            raise self.fail(f"cannot reshape {x} to {self.shape}")
        return out


@frozen(kw_only=True)
class Transpose(Movement):
    kind: ClassVar[str] = "transpose"
    perm: tuple[int, ...] = field(converter=_ints)

    def _infer(self, inputs: Sequence[TensorType]) -> TensorType:
        x = inputs[0]
        if sorted(self.perm) != list(range(x.rank)):
            raise self.fail(f"perm {self.perm} is not a permutation of {x.rank} axes")
        return x.with_shape(tuple(x.shape[i] for i in self.perm))


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
