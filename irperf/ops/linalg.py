"""Linear algebra: (batched) matmul and 2-D convolution."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from attrs import field, frozen

from irperf.contraction import Contraction
from irperf.dtypes import DType
from irperf.errors import TypeInferenceError
from irperf.layout import Layout
from irperf.ops import spmd
from irperf.ops.base import Op, OpFamily, broadcast_shapes
from irperf.types import TensorType


@frozen(kw_only=True)
class MatMul(Op):
    """``a[..., M, K] @ b[..., K, N] -> [..., M, N]``, batch dimensions broadcast.

    A weight is stored ``[K, N]`` (in, out) so a linear layer is a plain matmul. The result takes
    ``out_dtype`` or, by default, the dtype of ``a``.
    """

    kind: ClassVar[str] = "matmul"
    family: ClassVar[OpFamily] = OpFamily.LINALG
    arity: ClassVar[int | None] = 2
    out_dtype: DType | None = None

    def _infer(self, inputs: Sequence[TensorType]) -> TensorType:
        a, b = inputs
        if a.rank < 2 or b.rank < 2:
            raise self.fail(f"operands must have rank >= 2, got {a} and {b}")
        if a.shape[-1] != b.shape[-2]:
            raise self.fail(f"contraction mismatch: {a} @ {b}")
        batch = broadcast_shapes(self, a.shape[:-2], b.shape[:-2])
        shape = (*batch, a.shape[-2], b.shape[-1])
        return TensorType(shape, self.out_dtype or a.dtype)

    def layout_of(self, inputs: Sequence[TensorType], out: TensorType) -> Layout:
        return spmd.matmul(self, inputs[0], inputs[1], out)

    def contractions(
        self, inputs: Sequence[TensorType], out: TensorType
    ) -> tuple[Contraction, ...]:
        a, b = inputs
        if b.rank == 2:  # a linear layer: every activation row against one weight
            return (Contraction(1, a.numel // a.shape[-1], a.shape[-1], b.shape[-1]),)
        batch = out.numel // (out.shape[-2] * out.shape[-1])
        return (Contraction(batch, a.shape[-2], a.shape[-1], b.shape[-1]),)


def _positive(_: object, attribute: object, value: int) -> None:
    if value <= 0:
        raise TypeInferenceError(f"conv2d: stride must be positive, got {value}")


@frozen(kw_only=True)
class Conv2d(Op):
    """``x[N, C, H, W] * w[O, C, kh, kw] -> [N, O, H', W']`` with stride and zero padding."""

    kind: ClassVar[str] = "conv2d"
    family: ClassVar[OpFamily] = OpFamily.LINALG
    arity: ClassVar[int | None] = 2
    stride: int = field(default=1, validator=_positive)
    padding: int = 0

    def _infer(self, inputs: Sequence[TensorType]) -> TensorType:
        x, w = inputs
        if x.rank != 4 or w.rank != 4:
            raise self.fail(f"expects NCHW input and OIHW weight, got {x} and {w}")
        n, c, h, wd = x.shape
        o, wc, kh, kw = w.shape
        if c != wc:
            raise self.fail(f"input has {c} channels, weight expects {wc}")
        oh = (h + 2 * self.padding - kh) // self.stride + 1
        ow = (wd + 2 * self.padding - kw) // self.stride + 1
        if oh <= 0 or ow <= 0:
            raise self.fail(f"kernel {kh}x{kw} larger than padded input {h}x{wd}")
        return TensorType((n, o, oh, ow), x.dtype)

    def layout_of(self, inputs: Sequence[TensorType], out: TensorType) -> Layout:
        return spmd.whole_operands(self, inputs, out)

    def contractions(
        self, inputs: Sequence[TensorType], out: TensorType
    ) -> tuple[Contraction, ...]:
        n, o, oh, ow = out.shape
        _, c, kh, kw = inputs[1].shape
        return (Contraction(1, n * oh * ow, c * kh * kw, o),)  # im2col

    def describe(self) -> str:
        return f"conv2d/s{self.stride}"
