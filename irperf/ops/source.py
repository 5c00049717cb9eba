"""Source ops: graph inputs, weights (parameters) and constants. They have no operands."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from attrs import frozen

from irperf.ops.base import Op, OpFamily
from irperf.types import TensorType


@frozen(kw_only=True)
class Source(Op):
    """A value that enters the graph; its type is an attribute."""

    family: ClassVar[OpFamily] = OpFamily.SOURCE
    arity: ClassVar[int | None] = 0
    type: TensorType

    def _infer(self, inputs: Sequence[TensorType]) -> TensorType:
        return self.type


@frozen(kw_only=True)
class Input(Source):
    """A runtime input: pixels, token ids, a KV cache carried in from an earlier step."""

    kind: ClassVar[str] = "input"


@frozen(kw_only=True)
class Weight(Source):
    """A parameter of the model; parameter counts are sums over these.

    ``tied_to``: the weight whose parameters this one shares (a tied lm_head, the embedding
    table's): its parameters are counted there, once; its bytes are its own (the device stores
    the head in its own layout and format)."""

    kind: ClassVar[str] = "weight"
    tied_to: str | None = None


@frozen(kw_only=True)
class Constant(Source):
    """A literal (a scalar 1.0, say): neither a parameter nor an input."""

    kind: ClassVar[str] = "constant"
    value: float
