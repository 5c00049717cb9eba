"""Normalisations: softmax, LayerNorm (weight and bias operands), RMSNorm (weight operand)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from attrs import frozen

from irperf.layout import Layout
from irperf.ops import spmd
from irperf.ops.base import Op, OpFamily, normalize_axis
from irperf.types import TensorType


@frozen(kw_only=True)
class Softmax(Op):
    kind: ClassVar[str] = "softmax"
    family: ClassVar[OpFamily] = OpFamily.NORMALIZATION
    arity: ClassVar[int | None] = 1
    axis: int = -1

    def _infer(self, inputs: Sequence[TensorType]) -> TensorType:
        normalize_axis(self, self.axis, inputs[0].rank)
        return inputs[0]

    def layout_of(self, inputs: Sequence[TensorType], out: TensorType) -> Layout:
        return spmd.along_whole_axis(self, inputs, self.axis)


@frozen(kw_only=True)
class Norm(Op):
    """Normalises over the last dimension; the parameter operands have that dimension's size."""

    family: ClassVar[OpFamily] = OpFamily.NORMALIZATION
    eps: float = 1e-5

    def _infer(self, inputs: Sequence[TensorType]) -> TensorType:
        x, *params = inputs
        for p in params:
            if p.shape != (x.shape[-1],):
                raise self.fail(f"parameter {p} does not match the last dimension of {x}")
        return x

    def layout_of(self, inputs: Sequence[TensorType], out: TensorType) -> Layout:
        return spmd.last_dim_whole(self, inputs, out)


@frozen(kw_only=True)
class LayerNorm(Norm):
    """Operands: x, weight, bias."""

    kind: ClassVar[str] = "layernorm"
    arity: ClassVar[int | None] = 3


@frozen(kw_only=True)
class RMSNorm(Norm):
    """Operands: x, weight."""

    kind: ClassVar[str] = "rmsnorm"
    arity: ClassVar[int | None] = 2
