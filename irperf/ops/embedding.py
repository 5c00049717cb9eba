"""Embedding lookup: gather rows of a table by integer ids."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from attrs import frozen

from irperf.layout import Layout, sharded
from irperf.ops import spmd
from irperf.ops.base import Op, OpFamily
from irperf.types import TensorType


@frozen(kw_only=True)
class Embedding(Op):
    """Operands: ``ids[...]`` (integers), ``table[rows, D]`` -> ``[..., D]``."""

    kind: ClassVar[str] = "embedding"
    family: ClassVar[OpFamily] = OpFamily.EMBEDDING
    arity: ClassVar[int | None] = 2

    def _infer(self, inputs: Sequence[TensorType]) -> TensorType:
        ids, table = inputs
        if ids.dtype.is_float:
            raise self.fail(f"ids must be integers, got {ids}")
        if table.rank != 2:
            raise self.fail(f"table must be [rows, D], got {table}")
        return TensorType((*ids.shape, table.shape[1]), table.dtype)

    def layout_of(self, inputs: Sequence[TensorType], out: TensorType) -> Layout:
        ids, table = inputs
        if ids.layout.replicated and table.layout.sharded and table.layout.dim == 1:
            return sharded(out.rank - 1, table.layout.parts, table.layout.axis)
        return spmd.whole_operands(self, inputs, out)
