"""Attention: fused SDPA (FlashAttention-style, scores never materialised) and its two matmuls."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from attrs import frozen

from irperf.contraction import Contraction
from irperf.layout import Layout, sharded
from irperf.ops.base import Op, OpFamily
from irperf.types import TensorType


@frozen(kw_only=True)
class Attention(Op):
    """The attention family: ``heads`` query heads of ``head_dim`` packed in the last dimension
    (``[B, S, heads*head_dim]``), ``kv_heads`` key/value heads (grouped-query attention when
    fewer; query head ``h`` reads kv head ``h // (heads // kv_heads)``), and ``kv_len`` key
    positions attended (default: all ``Skv``, so a static cache can be larger than its filled
    part)."""

    family: ClassVar[OpFamily] = OpFamily.ATTENTION
    heads: int
    kv_heads: int
    head_dim: int
    kv_len: int | None = None

    def keys_attended(self, k: TensorType) -> int:
        """Key positions each query attends (before any causal masking)."""
        return self.kv_len if self.kv_len is not None else k.shape[1]

    def check_heads(self) -> None:
        if min(self.heads, self.kv_heads, self.head_dim) <= 0:
            raise self.fail("heads, kv_heads and head_dim must be positive")
        if self.heads % self.kv_heads:
            raise self.fail(f"{self.kv_heads} kv heads do not divide {self.heads} heads")

    def check_packed(self, name: str, t: TensorType, heads: int) -> None:
        if t.rank != 3 or t.shape[-1] != heads * self.head_dim:
            raise self.fail(f"{name} must be [B, S, {heads}*{self.head_dim}], got {t}")

    def check_keys(self, k: TensorType) -> int:
        if self.kv_len is not None and not 0 < self.kv_len <= k.shape[1]:
            raise self.fail(f"kv_len {self.kv_len} outside 1..{k.shape[1]}")
        return self.keys_attended(k)

    def split_heads(self, inputs: Sequence[TensorType], dims: Sequence[int]) -> int:
        """Operands split on their heads (``dims``, one per operand) over the same chips: the
        number of parts; each chip runs its own heads. Anything else has no SPMD rule."""
        parts = {t.layout.parts for t in inputs}
        pairs = zip(inputs, dims, strict=True)
        split = all(t.layout.sharded and t.layout.dim == d for t, d in pairs)
        if not split or len(parts) != 1:
            shown = ", ".join(str(t) for t in inputs)
            raise self.fail(
                f"runs each chip's own heads: every operand split on heads, got {shown}"
            )
        return parts.pop()

    def products(self, q_rows: int, keys: int, batch: int) -> tuple[Contraction, Contraction]:
        """``q @ k^T`` and ``p @ v`` per (batch, head)."""
        hd, bh = self.head_dim, batch * self.heads
        return Contraction(bh, q_rows, hd, keys), Contraction(bh, q_rows, keys, hd)

    def heads_label(self) -> str:
        gqa = f"/{self.kv_heads}kv" if self.kv_heads != self.heads else ""
        return f"{self.heads}h{gqa}x{self.head_dim}"


@frozen(kw_only=True)
class SDPA(Attention):
    """``softmax(q k^T * scale [+ causal mask]) v``: operands ``q[B, Sq, heads*head_dim]``,
    ``k[B, Skv, kv_heads*head_dim]``, ``v`` like ``k``; the result is shaped like ``q``."""

    kind: ClassVar[str] = "sdpa"
    arity: ClassVar[int | None] = 3
    causal: bool = False

    def _infer(self, inputs: Sequence[TensorType]) -> TensorType:
        q, k, v = inputs
        self.check_heads()
        self.check_packed("q", q, self.heads)
        self.check_packed("k", k, self.kv_heads)
        self.check_packed("v", v, self.kv_heads)
        if k.shape != v.shape:
            raise self.fail(f"k {k} and v {v} differ")
        if q.shape[0] != k.shape[0]:
            raise self.fail(f"batch of q {q} and k {k} differ")
        self.check_keys(k)
        return q

    def layout_of(self, inputs: Sequence[TensorType], out: TensorType) -> Layout:
        return sharded(2, self.split_heads(inputs, (2, 2, 2)), inputs[0].layout.axis)

    def contractions(
        self, inputs: Sequence[TensorType], out: TensorType
    ) -> tuple[Contraction, ...]:
        q, k = inputs[0], inputs[1]
        return self.products(q.shape[1], self.keys_attended(k), q.shape[0])

    def describe(self) -> str:
        return f"sdpa {self.heads_label()}{' causal' if self.causal else ''}"


@frozen(kw_only=True)
class AttentionScores(Attention):
    """``q k^T`` per head, the first matmul of a decomposed SDPA: the scores are a real tensor.

    Operands ``q[B, Sq, heads*head_dim]``, ``k[B, Skv, kv_heads*head_dim]`` -> ``[B, heads, Sq,
    keys]``. Like a strided kernel it indexes the packed heads, so no transpose or GQA expand
    copy exists.
    """

    kind: ClassVar[str] = "attention_scores"
    arity: ClassVar[int | None] = 2

    def _infer(self, inputs: Sequence[TensorType]) -> TensorType:
        q, k = inputs
        self.check_heads()
        self.check_packed("q", q, self.heads)
        self.check_packed("k", k, self.kv_heads)
        if q.shape[0] != k.shape[0]:
            raise self.fail(f"batch of q {q} and k {k} differ")
        keys = self.check_keys(k)
        return TensorType((q.shape[0], self.heads, q.shape[1], keys), q.dtype)

    def layout_of(self, inputs: Sequence[TensorType], out: TensorType) -> Layout:
        return sharded(1, self.split_heads(inputs, (2, 2)), inputs[0].layout.axis)

    def contractions(
        self, inputs: Sequence[TensorType], out: TensorType
    ) -> tuple[Contraction, ...]:
        q, k = inputs
        return self.products(q.shape[1], self.keys_attended(k), q.shape[0])[:1]

    def describe(self) -> str:
        return f"q@k^T {self.heads_label()}"


@frozen(kw_only=True)
class AttentionValues(Attention):
    """``p v`` per head, the second matmul of a decomposed SDPA, heads packed back.

    Operands ``p[B, heads, Sq, keys]`` (the softmaxed scores), ``v[B, Skv, kv_heads*head_dim]``
    -> ``[B, Sq, heads*head_dim]``, reading the first ``keys`` positions of ``v``.
    """

    kind: ClassVar[str] = "attention_values"
    arity: ClassVar[int | None] = 2

    def _infer(self, inputs: Sequence[TensorType]) -> TensorType:
        p, v = inputs
        self.check_heads()
        self.check_packed("v", v, self.kv_heads)
        keys, b = self.check_keys(v), v.shape[0]
        if p.rank != 4 or (p.shape[0], p.shape[1], p.shape[3]) != (b, self.heads, keys):
            raise self.fail(f"p must be [{b}, {self.heads}, Sq, {keys}], got {p}")
        return TensorType((b, p.shape[2], self.heads * self.head_dim), p.dtype)

    def layout_of(self, inputs: Sequence[TensorType], out: TensorType) -> Layout:
        return sharded(2, self.split_heads(inputs, (1, 2)), inputs[0].layout.axis)

    def contractions(
        self, inputs: Sequence[TensorType], out: TensorType
    ) -> tuple[Contraction, ...]:
        p, v = inputs
        return self.products(p.shape[2], self.keys_attended(v), p.shape[0])[1:]

    def describe(self) -> str:
        return f"p@v {self.heads_label()}"
