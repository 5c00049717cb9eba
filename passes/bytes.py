"""The ``bytes`` pass: DRAM traffic per node when every op reads its operands and writes its result,
and the bytes each chip sends over the links in a collective.

One table states what an op reads, operand by operand (``READS``); the bytes pass sums it and
fused traffic (``passes/fusion_traffic.py``) reads it per operand, so the two never disagree.
``WRITES`` states what an op writes, ``LINK`` what a collective sends.

The fused attention op reads q, k and v once and writes its output once (FlashAttention with
perfect reuse, the seed's ``S * D * 4 * dtype_bytes``). A reshape is a view and moves nothing;
a cache append writes its new rows into the cache in place (the old rows are never touched; the
attention reading the cache reads them); an embedding lookup reads only the rows it gathers and
a slice only the part it keeps; a constant is a literal the kernel takes as an argument, never
read from DRAM.

Link bytes per chip, from the algorithm on a ring or line of N chips (each step moves one of N
chunks; the payload T is the whole logical tensor): an all-gather sends (N-1)/N of T (each chip
passes on the N-1 chunks it lacks), a reduce-scatter (N-1)/N of T, an all-reduce both,
2 (N-1)/N of T. A mesh split sends nothing. Link bytes count under both conventions: the link is
its own resource, which no FLOP convention narrows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import ClassVar

from attrs import field, frozen

from irperf.errors import PassError
from irperf.graph import Graph
from irperf.ops import (
    AllGather,
    AllReduce,
    Attention,
    CacheAppend,
    Collective,
    Constant,
    Embedding,
    MeshSplit,
    Op,
    ReduceScatter,
    Reshape,
    Slice,
    Source,
)
from irperf.pass_manager import AnalysisPass, one_of, register_pass
from irperf.rules import RuleContext, RuleTable
from passes.conventions import CONVENTIONS, Convention, counts


@frozen(kw_only=True, eq=False)
class Traffic:
    """Bytes a node reads from and writes to DRAM, and sends over the links, on one chip.

    Two records are equal when they count the same bytes, whichever pass counted them."""

    bytes_read: int = 0
    bytes_written: int = 0
    link_bytes: int = 0
    noc_bytes: int = 0
    """Bytes moved between a core and another core's L1 (an L1-resident operand or result, once
    a placement put it there): on-chip traffic, never DRAM."""

    def _key(self) -> tuple[int, int, int, int]:
        return (self.bytes_read, self.bytes_written, self.link_bytes, self.noc_bytes)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Traffic) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    @property
    def bytes(self) -> int:
        """DRAM bytes (read + written); link bytes are apart."""
        return self.bytes_read + self.bytes_written

    def __add__(self, other: Traffic) -> Traffic:
        return Traffic(
            bytes_read=self.bytes_read + other.bytes_read,
            bytes_written=self.bytes_written + other.bytes_written,
            link_bytes=self.link_bytes + other.link_bytes,
            noc_bytes=self.noc_bytes + other.noc_bytes,
        )

    @classmethod
    def zero(cls) -> Traffic:
        return cls()


@frozen(kw_only=True, eq=False)
class FusedTraffic(Traffic):
    """``Traffic`` when fusion groups keep their intermediates on chip (the ``fused-bytes``
    pass): a record type of its own, so it never replaces the unfused counts."""


@frozen(kw_only=True, eq=False)
class PlacedTraffic(Traffic):
    """``Traffic`` under a placement (the ``placed-bytes`` pass, ``passes/placement.py``): DRAM
    bytes only for operands and results whose home is DRAM, NoC bytes for the L1 ones."""


def dram_traffic(graph: Graph) -> Mapping[str, Traffic]:
    """The traffic a latency is computed from: placed where ``placed-bytes`` ran, else fused
    where ``fused-bytes`` ran, else unfused."""
    for kind in (PlacedTraffic, FusedTraffic):
        if graph.has_records(kind):
            return graph.records(kind)
    return graph.records(Traffic)


ReadRule = Callable[[RuleContext], tuple[int, ...]]
WriteRule = Callable[[RuleContext], int]
READS: RuleTable[ReadRule] = RuleTable("bytes")
"""Bytes read from each operand, in operand order."""
WRITES: RuleTable[WriteRule] = RuleTable("bytes")
"""Bytes the result writes."""
LINK: RuleTable[WriteRule] = RuleTable("bytes")
"""Bytes one chip sends over the links."""
NONE = Traffic()


@READS.rule(Op)
def _each(ctx: RuleContext) -> tuple[int, ...]:
    """The default for every op with operands: read each operand whole."""
    return tuple(ctx.nbytes(t) for t in ctx.inputs)


@READS.rule(Source, Reshape)
def _nothing(ctx: RuleContext) -> tuple[int, ...]:
    return tuple(0 for _ in ctx.inputs)  # sources are read by their users; a view moves nothing


@READS.rule(CacheAppend)
def _cache_append(ctx: RuleContext) -> tuple[int, ...]:
    return (0, ctx.nbytes(ctx.inputs[1]))  # in place: the cache's old rows stay where they are


@READS.rule(Attention)
def _attention(ctx: RuleContext) -> tuple[int, ...]:
    """Its first operand, and the attended ``keys`` rows of k and v."""
    op = ctx.op
    assert isinstance(op, Attention)
    first, *kv = ctx.inputs
    keys = [t.with_shape((t.shape[0], op.keys_attended(t), t.shape[2])) for t in kv]
    return (ctx.nbytes(first), *(ctx.nbytes(t) for t in keys))


@READS.rule(Slice)
def _part(ctx: RuleContext) -> tuple[int, ...]:
    return (ctx.nbytes(ctx.output),)  # only the part kept (the last token's row)


@READS.rule(Embedding)
def _gather(ctx: RuleContext) -> tuple[int, ...]:
    ids, rows = ctx.inputs[0], ctx.output
    return (ctx.nbytes(ids), ctx.nbytes(rows))  # the ids, and the table rows gathered


@READS.rule(MeshSplit)
def _own_part(ctx: RuleContext) -> tuple[int, ...]:
    return (ctx.nbytes(ctx.output),)  # each chip reads its part


@WRITES.rule(Op)
def _result(ctx: RuleContext) -> int:
    return ctx.nbytes(ctx.output)


@WRITES.rule(Source, Reshape)
def _no_write(ctx: RuleContext) -> int:
    return 0


@WRITES.rule(CacheAppend)
def _new_rows(ctx: RuleContext) -> int:
    return ctx.nbytes(ctx.inputs[1])  # T rows written in place, not C + T


@LINK.rule(Op)
def _local(ctx: RuleContext) -> int:
    return 0


@LINK.rule(AllGather)
def _all_gather(ctx: RuleContext) -> int:
    op = ctx.op
    assert isinstance(op, Collective)
    return (op.chips - 1) * ctx.inputs[0].nbytes  # (N-1)/N of the gathered tensor


@LINK.rule(ReduceScatter)
def _reduce_scatter(ctx: RuleContext) -> int:
    op = ctx.op
    assert isinstance(op, Collective)
    return (op.chips - 1) * ctx.output.nbytes  # (N-1)/N of the reduced tensor


@LINK.rule(AllReduce)
def _all_reduce(ctx: RuleContext) -> int:
    op = ctx.op
    assert isinstance(op, Collective)
    n = op.chips
    chunk = -(-ctx.output.nbytes // n)  # a reduce-scatter, then an all-gather, of N chunks
    return 2 * (n - 1) * chunk


def literal_names(graph: Graph) -> set[str]:
    """Constant nodes: literals a kernel takes as arguments, never read from DRAM."""
    return {n.name for n in graph if isinstance(n.op, Constant)}


def operand_reads(graph: Graph, ctx: RuleContext, literals: set[str]) -> tuple[int, ...]:
    """Bytes read from each operand of ``ctx.node``, literals free; checked against the operand
    count (a user rule returning the wrong number of entries is an error naming it)."""
    node = ctx.node
    reads = READS.lookup(node)(ctx)
    if len(reads) != len(node.operands):
        raise_reads_mismatch(node.name, node.op.kind, len(reads), len(node.operands))
    if not literals:
        return reads
    return tuple(0 if o in literals else b for o, b in zip(node.operands, reads, strict=True))


def raise_reads_mismatch(name: str, kind: str, got: int, want: int) -> None:
    raise PassError(
        f"pass 'bytes': the read rule of op '{kind}' at node '{name}' gives {got} entries "
        f"for {want} operands"
    )


def count_bytes(graph: Graph, convention: Convention = "matmul-only") -> dict[str, Traffic]:
    """Traffic per node, computed once per graph state and convention; another convention's
    from the ``full`` table where that is already there (an op it does not count moves only
    its link bytes), else by its own walk (which skips the ops it does not count)."""
    if convention == "full" or not graph.memoized(("bytes", "full")):
        return graph.memo(("bytes", convention), lambda: _count_bytes(graph, convention))
    full = count_bytes(graph, "full")

    def part() -> dict[str, Traffic]:
        out = {}
        for node in graph:
            t = full[node.name]
            if not counts(convention, node.op):
                t = Traffic(link_bytes=t.link_bytes) if t.link_bytes else NONE
            out[node.name] = t
        return out

    return graph.memo(("bytes", convention), part, (full,))


def _count_bytes(graph: Graph, convention: Convention) -> dict[str, Traffic]:
    out: dict[str, Traffic] = {}
    literals = literal_names(graph)
    for node in graph:
        link_rule = LINK.lookup(node)
        counted = counts(convention, node.op)
        if not counted and link_rule is _local:
            out[node.name] = NONE  # the common case under matmul-only: nothing to ask a rule
            continue
        ctx = RuleContext.of(graph, node)
        link = 0 if link_rule is _local else link_rule(ctx)
        if not counted:
            out[node.name] = Traffic(link_bytes=link) if link else NONE
            continue
        read = sum(operand_reads(graph, ctx, literals))
        out[node.name] = Traffic(
            bytes_read=read, bytes_written=WRITES.lookup(node)(ctx), link_bytes=link
        )
    return out


@register_pass
@frozen(kw_only=True)
class BytesPass(AnalysisPass):
    """DRAM bytes read and written per node under a counting convention, and link bytes."""

    name: ClassVar[str] = "bytes"
    summary: ClassVar[str] = "DRAM bytes read and written per node, and link bytes"
    record_type: ClassVar[type] = Traffic
    convention: Convention = field(default="matmul-only", validator=one_of(*CONVENTIONS))

    def analyze(self, graph: Graph) -> dict[str, Traffic]:
        return count_bytes(graph, self.convention)
