"""The op base class: an op holds its attributes, never its operands, and infers its result type."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import ClassVar

from attrs import frozen

from irperf.contraction import Contraction
from irperf.errors import TypeInferenceError
from irperf.layout import REPLICATED, Layout
from irperf.ops import spmd
from irperf.types import TensorType


class OpFamily(enum.Enum):
    """Families group ops for colouring, reports and rules that apply to a whole family."""

    SOURCE = "source"
    LINALG = "linalg"
    ATTENTION = "attention"
    ELEMENTWISE = "elementwise"
    NORMALIZATION = "normalization"
    MOVEMENT = "movement"
    EMBEDDING = "embedding"
    COLLECTIVE = "collective"
    FUSED = "fused"


@frozen(kw_only=True)
class Op:
    """Base of every op. Subclasses set ``kind``, ``family`` and ``arity`` and implement ``_infer``.

    ``arity`` is the exact operand count, or ``None`` for a variadic op (at least one operand).
    """

    kind: ClassVar[str] = "op"
    family: ClassVar[OpFamily]
    arity: ClassVar[int | None] = 1
    changes_layout: ClassVar[bool] = False
    """Collectives: the result's layout differs from the operands' even when they are whole."""

    def infer(self, inputs: Sequence[TensorType]) -> TensorType:
        """The result type for ``inputs``, or a TypeInferenceError saying what does not fit.

        ``_infer`` gives the per-chip shape and format; ``layout_of`` then says how the result
        lies over the chips (only asked when some operand is not replicated, or for collectives).
        """
        if self.arity is None:
            if not inputs:
                raise TypeInferenceError(f"{self.kind}: needs at least one operand")
        elif len(inputs) != self.arity:
            raise TypeInferenceError(
                f"{self.kind}: takes {self.arity} operand(s), got {len(inputs)}"
            )
        out = self._infer(inputs)
        split = self.changes_layout
        if not split:
            for t in inputs:  # the common case, every operand whole: no layout rule to run
                if t.layout is not REPLICATED and not t.layout.replicated:
                    split = True
                    break
        if split:
            layout = self.layout_of(inputs, out)
            if layout != out.layout:
                out = out.with_layout(layout)
        elif inputs and out.layout is not REPLICATED and not out.layout.replicated:
            out = out.with_layout(REPLICATED)
        return out

    def _infer(self, inputs: Sequence[TensorType]) -> TensorType:
        raise NotImplementedError(f"{type(self).__name__} does not implement _infer")

    def contractions(
        self, inputs: Sequence[TensorType], out: TensorType
    ) -> tuple[Contraction, ...]:
        """The matrix products the op runs (``irperf.contraction``); none for most ops."""
        return ()

    def layout_of(self, inputs: Sequence[TensorType], out: TensorType) -> Layout:
        """The result's layout when some operand is split or partial (``irperf.ops.spmd``).
        The default broadcasts like an elementwise op."""
        return spmd.aligned(self, inputs, out)

    def describe(self) -> str:
        """A short label with the attributes that matter, for pictures and tables."""
        return self.kind

    def fail(self, message: str) -> TypeInferenceError:
        return TypeInferenceError(f"{self.kind}: {message}")


def broadcast_shapes(op: Op, a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    """NumPy broadcasting of two shapes, or an error naming the op."""
    out: list[int] = []
    for i in range(1, max(len(a), len(b)) + 1):
        da = a[-i] if i <= len(a) else 1
        db = b[-i] if i <= len(b) else 1
        if da != db and 1 not in (da, db):
            raise op.fail(f"shapes {a} and {b} do not broadcast")
        out.append(max(da, db))
    return tuple(reversed(out))


def normalize_axis(op: Op, axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        raise op.fail(f"axis {axis} out of range for rank {rank}")
    return axis % rank
