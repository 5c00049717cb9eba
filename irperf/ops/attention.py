"""Fused scaled-dot-product attention (FlashAttention-style: one op, scores never materialised)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from attrs import frozen

from irperf.ops.base import Op, OpFamily
from irperf.types import TensorType


@frozen(kw_only=True)
class SDPA(Op):
    """``softmax(q k^T * scale [+ causal mask]) v`` over ``heads`` query heads.

    Operands, all ``[B, S, heads*head_dim]`` style (heads packed in the last dimension):
    ``q[B, Sq, heads*head_dim]``, ``k[B, Skv, kv_heads*head_dim]``, ``v`` like ``k``.
    Grouped-query attention when ``kv_heads < heads``. ``kv_len`` is the number of key positions
    attended (default: all ``Skv`` of ``k``), so a static cache can be larger than its filled part.
    """

    kind: ClassVar[str] = "sdpa"
    family: ClassVar[OpFamily] = OpFamily.ATTENTION
    arity: ClassVar[int | None] = 3
    heads: int
    kv_heads: int
    head_dim: int
    causal: bool = False
    kv_len: int | None = None

    def _infer(self, inputs: Sequence[TensorType]) -> TensorType:
        q, k, v = inputs
        if min(self.heads, self.kv_heads, self.head_dim) <= 0:
            raise self.fail("heads, kv_heads and head_dim must be positive")
        if self.heads % self.kv_heads:
            raise self.fail(f"{self.kv_heads} kv heads do not divide {self.heads} heads")
        for name, t, h in (("q", q, self.heads), ("k", k, self.kv_heads), ("v", v, self.kv_heads)):
            if t.rank != 3 or t.shape[-1] != h * self.head_dim:
                raise self.fail(f"{name} must be [B, S, {h}*{self.head_dim}], got {t}")
        if k.shape != v.shape:
            raise self.fail(f"k {k} and v {v} differ")
        if q.shape[0] != k.shape[0]:
            raise self.fail(f"batch of q {q} and k {k} differ")
        if self.kv_len is not None and not 0 < self.kv_len <= k.shape[1]:
            raise self.fail(f"kv_len {self.kv_len} outside 1..{k.shape[1]}")
        return q

    def keys_attended(self, k: TensorType) -> int:
        """Key positions each query attends (before any causal masking)."""
        return self.kv_len if self.kv_len is not None else k.shape[1]

    def describe(self) -> str:
        gqa = f"/{self.kv_heads}kv" if self.kv_heads != self.heads else ""
        return f"sdpa {self.heads}h{gqa}x{self.head_dim}{' causal' if self.causal else ''}"
