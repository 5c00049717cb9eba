"""Attention: fused SDPA (FlashAttention-style, scores never materialised) and its two matmuls."""

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


def _check_heads(op: Op, heads: int, kv_heads: int, head_dim: int) -> None:
    if min(heads, kv_heads, head_dim) <= 0:
        raise op.fail("heads, kv_heads and head_dim must be positive")
    if heads % kv_heads:
        raise op.fail(f"{kv_heads} kv heads do not divide {heads} heads")


def _check_packed(op: Op, name: str, t: TensorType, heads: int, head_dim: int) -> None:
    if t.rank != 3 or t.shape[-1] != heads * head_dim:
        raise op.fail(f"{name} must be [B, S, {heads}*{head_dim}], got {t}")


def _keys(op: Op, kv_len: int | None, k: TensorType) -> int:
    if kv_len is not None and not 0 < kv_len <= k.shape[1]:
        raise op.fail(f"kv_len {kv_len} outside 1..{k.shape[1]}")
    return kv_len if kv_len is not None else k.shape[1]


@frozen(kw_only=True)
class AttentionScores(Op):
    """``q k^T`` per head, the first matmul of a decomposed SDPA: the scores are a real tensor.

    Operands ``q[B, Sq, heads*head_dim]``, ``k[B, Skv, kv_heads*head_dim]`` (heads packed as SDPA
    takes them) -> ``[B, heads, Sq, keys]``. Query head ``h`` reads key head ``h // (heads //
    kv_heads)``: like a strided kernel it indexes the packed heads, so no transpose or GQA expand
    copy exists. ``keys`` is ``kv_len`` (default all ``Skv``).
    """

    kind: ClassVar[str] = "attention_scores"
    family: ClassVar[OpFamily] = OpFamily.ATTENTION
    arity: ClassVar[int | None] = 2
    heads: int
    kv_heads: int
    head_dim: int
    kv_len: int | None = None

    def _infer(self, inputs: Sequence[TensorType]) -> TensorType:
        q, k = inputs
        _check_heads(self, self.heads, self.kv_heads, self.head_dim)
        _check_packed(self, "q", q, self.heads, self.head_dim)
        _check_packed(self, "k", k, self.kv_heads, self.head_dim)
        if q.shape[0] != k.shape[0]:
            raise self.fail(f"batch of q {q} and k {k} differ")
        keys = _keys(self, self.kv_len, k)
        return TensorType((q.shape[0], self.heads, q.shape[1], keys), q.dtype)

    def keys_attended(self, k: TensorType) -> int:
        return self.kv_len if self.kv_len is not None else k.shape[1]

    def describe(self) -> str:
        gqa = f"/{self.kv_heads}kv" if self.kv_heads != self.heads else ""
        return f"q@k^T {self.heads}h{gqa}x{self.head_dim}"


@frozen(kw_only=True)
class AttentionValues(Op):
    """``p v`` per head, the second matmul of a decomposed SDPA, heads packed back.

    Operands ``p[B, heads, Sq, keys]`` (the softmaxed scores), ``v[B, Skv, kv_heads*head_dim]``
    -> ``[B, Sq, heads*head_dim]``, reading value head ``h // (heads // kv_heads)`` for query
    head ``h`` and the first ``keys`` positions of ``v``.
    """

    kind: ClassVar[str] = "attention_values"
    family: ClassVar[OpFamily] = OpFamily.ATTENTION
    arity: ClassVar[int | None] = 2
    heads: int
    kv_heads: int
    head_dim: int
    kv_len: int | None = None

    def _infer(self, inputs: Sequence[TensorType]) -> TensorType:
        p, v = inputs
        _check_heads(self, self.heads, self.kv_heads, self.head_dim)
        _check_packed(self, "v", v, self.kv_heads, self.head_dim)
        keys, b = _keys(self, self.kv_len, v), v.shape[0]
        if p.rank != 4 or (p.shape[0], p.shape[1], p.shape[3]) != (b, self.heads, keys):
            raise self.fail(f"p must be [{b}, {self.heads}, Sq, {keys}], got {p}")
        return TensorType((b, p.shape[2], self.heads * self.head_dim), p.dtype)

    def keys_attended(self, v: TensorType) -> int:
        return self.kv_len if self.kv_len is not None else v.shape[1]

    def describe(self) -> str:
        gqa = f"/{self.kv_heads}kv" if self.kv_heads != self.heads else ""
        return f"p@v {self.heads}h{gqa}x{self.head_dim}"
