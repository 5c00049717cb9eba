"""Elementwise ops: unary activations and broadcasting binary arithmetic, plus RoPE."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from attrs import frozen

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
class Rope(Unary):
    """Rotary position embedding on ``[B, S, heads*head_dim]`` with precomputed cos/sin tables."""

    kind: ClassVar[str] = "rope"
    head_dim: int

    def _infer(self, inputs: Sequence[TensorType]) -> TensorType:
        x = inputs[0]
        if self.head_dim <= 0 or self.head_dim % 2 or x.shape[-1] % self.head_dim:
            raise self.fail(f"head_dim {self.head_dim} must be even and divide {x}")
        return x


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


@frozen(kw_only=True)
class Sub(Binary):
    kind: ClassVar[str] = "sub"


@frozen(kw_only=True)
class Mul(Binary):
    kind: ClassVar[str] = "mul"


@frozen(kw_only=True)
class Div(Binary):
    kind: ClassVar[str] = "div"
