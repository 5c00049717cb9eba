"""Elementwise ops: unary activations, broadcasting binary arithmetic, and RoPE with its tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from attrs import frozen

from irperf.layout import Layout
from irperf.ops import spmd
from irperf.ops.base import Op, OpFamily, broadcast_shapes
from irperf.types import TensorType


@frozen(kw_only=True)
class Unary(Op):
    """One operand in, the same type out."""

    family: ClassVar[OpFamily] = OpFamily.ELEMENTWISE
    arity: ClassVar[int | None] = 1

    def _infer(self, inputs: Sequence[TensorType]) -> TensorType:
        return inputs[0]


@frozen(kw_only=True)
class Gelu(Unary):
    """Exact (erf) GELU."""

    kind: ClassVar[str] = "gelu"


@frozen(kw_only=True)
class Silu(Unary):
    kind: ClassVar[str] = "silu"


@frozen(kw_only=True)
class Tanh(Unary):
    kind: ClassVar[str] = "tanh"


@frozen(kw_only=True)
class Exp(Unary):
    kind: ClassVar[str] = "exp"


@frozen(kw_only=True)
class Rsqrt(Unary):
    kind: ClassVar[str] = "rsqrt"


@frozen(kw_only=True)
class Rope(Op):
    """Rotary position embedding, ``x * cos + rotate_half(x) * sin`` per head.

    Operands: ``x[B, S, heads*head_dim]`` and the tables ``cos[S, head_dim]``, ``sin[S, head_dim]``
    of the ``S`` positions, shared by every sequence and head.
    """

    kind: ClassVar[str] = "rope"
    family: ClassVar[OpFamily] = OpFamily.ELEMENTWISE
    arity: ClassVar[int | None] = 3
    head_dim: int

    def _infer(self, inputs: Sequence[TensorType]) -> TensorType:
        x, cos, sin = inputs
        hd = self.head_dim
        if hd <= 0 or hd % 2:
            raise self.fail(f"head_dim {hd} must be positive and even")
        if x.rank != 3 or x.shape[-1] % hd:
            raise self.fail(f"x must be [B, S, heads*{hd}], got {x}")
        table = (x.shape[1], hd)
        for name, t in (("cos", cos), ("sin", sin)):
            if t.shape != table:
                raise self.fail(f"{name} must be [{table[0]}, {hd}] for x {x}, got {t}")
        return x

    def layout_of(self, inputs: Sequence[TensorType], out: TensorType) -> Layout:
        return spmd.same_as_first(self, inputs, out)  # per head: a split on heads is fine


@frozen(kw_only=True)
class Binary(Op):
    """Two operands, NumPy broadcasting; the result takes the first operand's dtype."""

    family: ClassVar[OpFamily] = OpFamily.ELEMENTWISE
    arity: ClassVar[int | None] = 2

    def _infer(self, inputs: Sequence[TensorType]) -> TensorType:
        a, b = inputs
        return TensorType(broadcast_shapes(self, a.shape, b.shape), a.dtype)


@frozen(kw_only=True)
class Add(Binary):
    kind: ClassVar[str] = "add"

    def layout_of(self, inputs: Sequence[TensorType], out: TensorType) -> Layout:
        return spmd.sum_of(self, inputs, out)


@frozen(kw_only=True)
class Sub(Binary):
    kind: ClassVar[str] = "sub"

    def layout_of(self, inputs: Sequence[TensorType], out: TensorType) -> Layout:
        return spmd.sum_of(self, inputs, out)


@frozen(kw_only=True)
class Mul(Binary):
    kind: ClassVar[str] = "mul"

    def layout_of(self, inputs: Sequence[TensorType], out: TensorType) -> Layout:
        return spmd.linear_in_partial(self, inputs, out)


@frozen(kw_only=True)
class Div(Binary):
    kind: ClassVar[str] = "div"

    def layout_of(self, inputs: Sequence[TensorType], out: TensorType) -> Layout:
        if inputs[1].layout.partial:
            raise self.fail(f"divides by a partial sum {inputs[1]}; reduce it first")
        return spmd.linear_in_partial(self, inputs, out)
