"""Collectives over one mesh axis, the local split that starts a split stream, and typecasts.

Each collective runs over ``chips`` chips along mesh ``axis`` and infers its per-chip result:

- ``AllGather(dim)``: a tensor split on ``dim`` -> the whole tensor on every chip;
- ``ReduceScatter(dim)``: a partial sum -> the sum, split on ``dim`` (each chip its part);
- ``AllReduce``: a partial sum -> the sum, whole on every chip;
- ``MeshSplit(dim)``: a whole tensor -> each chip keeps its part of ``dim`` (local: no link);
- ``Typecast(dtype)``: the same tensor in another format.

What each moves over the links is a rule of the bytes pass (``passes/bytes.py``), from the
algorithm: on a ring or line of N chips each step sends (N-1)/N of the payload per chip.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from attrs import field, frozen

from irperf.dtypes import DType
from irperf.errors import TypeInferenceError
from irperf.layout import MAX_CHIPS, MESH_AXES, REPLICATED, TP_AXIS, Layout, partial, sharded
from irperf.ops.base import Op, OpFamily, normalize_axis
from irperf.types import TensorType


def _chips(inst: object, attribute: object, value: int) -> None:
    if type(value) is not int or not 2 <= value <= MAX_CHIPS:
        raise TypeInferenceError(
            f"a collective runs over 2 to {MAX_CHIPS:,} chips, got {value!r:.40}"
        )


def _axis(inst: object, attribute: object, value: int) -> None:
    if value not in MESH_AXES or type(value) is not int:
        raise TypeInferenceError(f"a mesh axis is 0 (rows) or 1 (columns), got {value!r:.40}")


@frozen(kw_only=True)
class Collective(Op):
    """Base of the ops that exchange data between the chips of one mesh axis."""

    family: ClassVar[OpFamily] = OpFamily.COLLECTIVE
    changes_layout: ClassVar[bool] = True
    chips: int = field(validator=_chips)
    axis: int = field(default=TP_AXIS, validator=_axis)

    def describe(self) -> str:
        return f"{self.kind} x{self.chips}"

    def divided(self, x: TensorType, dim: int) -> TensorType:
        """``x`` with dimension ``dim`` cut in one part per chip."""
        d = normalize_axis(self, dim, x.rank)
        if x.shape[d] % self.chips:
            raise self.fail(f"{self.chips} chips do not divide dimension {d} of {x}")
        shape = list(x.shape)
        shape[d] //= self.chips
        return x.with_shape(tuple(shape))

    def expect(self, x: TensorType, layout: Layout) -> None:
        if x.layout != layout:
            raise self.fail(f"needs a {layout} operand, got {x}")


@frozen(kw_only=True)
class AllGather(Collective):
    kind: ClassVar[str] = "all_gather"
    dim: int

    def _infer(self, inputs: Sequence[TensorType]) -> TensorType:
        x = inputs[0]
        dim = normalize_axis(self, self.dim, x.rank)
        self.expect(x, sharded(dim, self.chips, self.axis))
        shape = list(x.shape)
        shape[dim] *= self.chips
        return x.with_shape(tuple(shape))

    def layout_of(self, inputs: Sequence[TensorType], out: TensorType) -> Layout:
        return REPLICATED


@frozen(kw_only=True)
class ReduceScatter(Collective):
    kind: ClassVar[str] = "reduce_scatter"
    dim: int

    def _infer(self, inputs: Sequence[TensorType]) -> TensorType:
        x = inputs[0]
        self.expect(x, partial(self.chips, self.axis))
        return self.divided(x, self.dim)

    def layout_of(self, inputs: Sequence[TensorType], out: TensorType) -> Layout:
        return sharded(normalize_axis(self, self.dim, out.rank), self.chips, self.axis)


@frozen(kw_only=True)
class AllReduce(Collective):
    kind: ClassVar[str] = "all_reduce"

    def _infer(self, inputs: Sequence[TensorType]) -> TensorType:
        x = inputs[0]
        self.expect(x, partial(self.chips, self.axis))
        return x.with_shape(x.shape)

    def layout_of(self, inputs: Sequence[TensorType], out: TensorType) -> Layout:
        return REPLICATED


@frozen(kw_only=True)
class MeshSplit(Collective):
    """Each chip keeps its part of a whole tensor: no data crosses a link."""

    kind: ClassVar[str] = "mesh_split"
    dim: int

    def _infer(self, inputs: Sequence[TensorType]) -> TensorType:
        x = inputs[0]
        self.expect(x, REPLICATED)
        return self.divided(x, self.dim)

    def layout_of(self, inputs: Sequence[TensorType], out: TensorType) -> Layout:
        return sharded(normalize_axis(self, self.dim, out.rank), self.chips, self.axis)


@frozen(kw_only=True)
class Typecast(Op):
    """The same tensor in format ``dtype`` (block formats re-tiled): a format change, no math."""

    kind: ClassVar[str] = "typecast"
    family: ClassVar[OpFamily] = OpFamily.MOVEMENT
    dtype: DType

    def _infer(self, inputs: Sequence[TensorType]) -> TensorType:
        x = inputs[0]
        if not isinstance(self.dtype, DType):
            raise self.fail(f"dtype must be a DType, got {self.dtype!r}")
        return TensorType(x.shape, self.dtype, x.layout)

    def layout_of(self, inputs: Sequence[TensorType], out: TensorType) -> Layout:
        return inputs[0].layout

    def describe(self) -> str:
        return f"typecast {self.dtype}"
