"""The ``flops`` pass: floating-point operations per node, transcendentals kept apart.

A multiply-add is 2 FLOPs. ``docs/conventions.md`` has the table of every op's formula.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar

from attrs import field, frozen

from irperf.graph import Graph
from irperf.ops import (
    SDPA,
    AllGather,
    AllReduce,
    AttentionScores,
    AttentionValues,
    Binary,
    Conv2d,
    Embedding,
    Exp,
    Gelu,
    LayerNorm,
    MatMul,
    MeshSplit,
    Movement,
    ReduceScatter,
    RMSNorm,
    Rope,
    Rsqrt,
    Silu,
    Softmax,
    Source,
    Tanh,
    Typecast,
)
from irperf.ops.base import Op
from irperf.pass_manager import AnalysisPass, one_of, register_pass
from irperf.rules import RuleContext, RuleTable
from irperf.types import TensorType
from passes.conventions import CONVENTIONS, Convention, counts

SOFTMAX_FLOPS_PER_ELEMENT = 4  # running max, subtract, sum, divide; exp is a transcendental
LAYERNORM_FLOPS_PER_ELEMENT = 7  # mean, centre, square, sum, normalise, scale, shift
RMSNORM_FLOPS_PER_ELEMENT = 4  # square, sum, normalise, scale
GELU_FLOPS_PER_ELEMENT = 4  # x/sqrt(2), 1 + erf, * x, * 0.5; erf is a transcendental
SILU_FLOPS_PER_ELEMENT = 3  # -x, 1 + exp, x / (...); exp is a transcendental
ROPE_FLOPS_PER_ELEMENT = 3  # x * cos + rotate(x) * sin
ATTENTION_SCALE_FLOPS = 1  # scores * 1/sqrt(head_dim)
CAUSAL_MASK_FLOPS = 1  # scores + mask


@frozen(kw_only=True)
class FlopCount:
    """FLOPs and transcendental evaluations (exp, erf, tanh, rsqrt) of a node or a sum of nodes."""

    flops: int = 0
    transcendentals: int = 0

    def __add__(self, other: FlopCount) -> FlopCount:
        return FlopCount(
            flops=self.flops + other.flops,
            transcendentals=self.transcendentals + other.transcendentals,
        )

    @classmethod
    def zero(cls) -> FlopCount:
        return cls()


Rule = Callable[[RuleContext], FlopCount]
RULES: RuleTable[Rule] = RuleTable("flops")
ZERO = FlopCount()


@RULES.rule(Source, Movement, Embedding, Typecast, AllGather, MeshSplit)
def _free(ctx: RuleContext) -> FlopCount:
    return ZERO  # no arithmetic: sources, copies, gathers and format changes


@RULES.rule(ReduceScatter)
def _reduce_scatter(ctx: RuleContext) -> FlopCount:
    op = ctx.op
    assert isinstance(op, ReduceScatter)
    return FlopCount(flops=(op.chips - 1) * ctx.output.numel)  # N-1 addends into each own chunk


@RULES.rule(AllReduce)
def _all_reduce(ctx: RuleContext) -> FlopCount:
    op = ctx.op
    assert isinstance(op, AllReduce)
    chunk = -(-ctx.output.numel // op.chips)  # the reduce-scatter half of a ring all-reduce
    return FlopCount(flops=(op.chips - 1) * chunk)


@RULES.rule(MatMul, Conv2d, AttentionScores, AttentionValues)
def _contractions(ctx: RuleContext) -> FlopCount:
    """A multiply-add per M x K x N of each product the op contracts (``Op.contractions``)."""
    return FlopCount(flops=sum(c.flops for c in ctx.op.contractions(ctx.inputs, ctx.output)))


def attention_matmul_flops(op: SDPA, ins: Sequence[TensorType]) -> tuple[int, int]:
    """FLOPs of ``q @ k^T`` and of ``scores @ v``, dense (causal masking is not subtracted)."""
    q, k = ins[0], ins[1]
    qk, sv = op.products(q.shape[1], op.keys_attended(k), q.shape[0])
    return qk.flops, sv.flops


def attention_scores(op: SDPA, ins: Sequence[TensorType]) -> int:
    """Elements of the (never materialised) score tensor ``[B, heads, Sq, keys]``."""
    q, k = ins[0], ins[1]
    return q.shape[0] * op.heads * q.shape[1] * op.keys_attended(k)


@RULES.rule(SDPA)
def _sdpa(ctx: RuleContext) -> FlopCount:
    op, ins = ctx.op, ctx.inputs
    assert isinstance(op, SDPA)
    qk, sv = attention_matmul_flops(op, ins)
    scores = attention_scores(op, ins)
    per_score = ATTENTION_SCALE_FLOPS + SOFTMAX_FLOPS_PER_ELEMENT
    per_score += CAUSAL_MASK_FLOPS if op.causal else 0
    return FlopCount(flops=qk + sv + per_score * scores, transcendentals=scores)


def matmul_part(op: Op, ins: Sequence[TensorType], full: FlopCount) -> FlopCount:
    """The part of a node's count that ``matmul-only`` keeps."""
    if isinstance(op, SDPA):
        return FlopCount(flops=sum(attention_matmul_flops(op, ins)))
    return FlopCount(flops=full.flops)


@RULES.rule(Softmax)
def _softmax(ctx: RuleContext) -> FlopCount:
    out = ctx.output
    return FlopCount(flops=SOFTMAX_FLOPS_PER_ELEMENT * out.numel, transcendentals=out.numel)


def _rows(t: TensorType) -> int:
    return t.numel // t.shape[-1]


@RULES.rule(LayerNorm)
def _layernorm(ctx: RuleContext) -> FlopCount:
    out = ctx.output
    return FlopCount(flops=LAYERNORM_FLOPS_PER_ELEMENT * out.numel, transcendentals=_rows(out))


@RULES.rule(RMSNorm)
def _rmsnorm(ctx: RuleContext) -> FlopCount:
    out = ctx.output
    return FlopCount(flops=RMSNORM_FLOPS_PER_ELEMENT * out.numel, transcendentals=_rows(out))


@RULES.rule(Gelu)
def _gelu(ctx: RuleContext) -> FlopCount:
    out = ctx.output
    return FlopCount(flops=GELU_FLOPS_PER_ELEMENT * out.numel, transcendentals=out.numel)


@RULES.rule(Silu)
def _silu(ctx: RuleContext) -> FlopCount:
    out = ctx.output
    return FlopCount(flops=SILU_FLOPS_PER_ELEMENT * out.numel, transcendentals=out.numel)


@RULES.rule(Tanh, Exp, Rsqrt)
def _transcendental(ctx: RuleContext) -> FlopCount:
    out = ctx.output
    return FlopCount(transcendentals=out.numel)


@RULES.rule(Rope)
def _rope(ctx: RuleContext) -> FlopCount:
    ins = ctx.inputs
    return FlopCount(flops=ROPE_FLOPS_PER_ELEMENT * ins[0].numel)  # per element of x, not tables


@RULES.rule(Binary)
def _binary(ctx: RuleContext) -> FlopCount:
    out = ctx.output
    return FlopCount(flops=out.numel)


def count_flops(graph: Graph, convention: Convention = "matmul-only") -> dict[str, FlopCount]:
    """FLOPs per node (computed once per graph state and convention)."""
    return graph.memo(("flops", convention), lambda: _count_flops(graph, convention))


def _count_flops(graph: Graph, convention: Convention) -> dict[str, FlopCount]:
    out: dict[str, FlopCount] = {}
    for node in graph:
        rule = RULES.lookup(node)
        if not counts(convention, node.op):
            out[node.name] = ZERO
            continue
        ctx = RuleContext.of(graph, node)
        full = rule(ctx)
        out[node.name] = full if convention == "full" else matmul_part(node.op, ctx.inputs, full)
    return out


@register_pass
@frozen(kw_only=True)
class FlopsPass(AnalysisPass):
    """FLOPs per node under a counting convention (``matmul-only`` or ``full``)."""

    name: ClassVar[str] = "flops"
    summary: ClassVar[str] = "FLOPs and transcendentals per node"
    record_type: ClassVar[type] = FlopCount
    convention: Convention = field(default="matmul-only", validator=one_of(*CONVENTIONS))

    def analyze(self, graph: Graph) -> dict[str, FlopCount]:
        return count_flops(graph, self.convention)
