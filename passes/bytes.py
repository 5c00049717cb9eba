"""The ``bytes`` pass: DRAM traffic per node when every op reads its operands and writes its result.

The fused attention op reads q, k and v once and writes its output once (FlashAttention with
perfect reuse, the seed's ``S * D * 4 * dtype_bytes``). A reshape is a view and moves nothing;
a cache append writes its new rows into the cache in place (the old rows are never touched; the
attention reading the cache reads them); an embedding lookup reads only the rows it gathers and
a slice only the part it keeps; a constant is a literal the kernel takes as an argument, never
read from DRAM.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar

from attrs import field, frozen

from irperf.graph import Graph
from irperf.ops import (
    SDPA,
    AttentionScores,
    AttentionValues,
    CacheAppend,
    Constant,
    Embedding,
    Op,
    Reshape,
    Slice,
    Source,
)
from irperf.pass_manager import AnalysisPass, one_of, register_pass
from irperf.rules import RuleTable
from irperf.types import TensorType
from passes.conventions import CONVENTIONS, Convention, counts


@frozen(kw_only=True)
class Traffic:
    """Bytes a node reads from and writes to DRAM."""

    bytes_read: int = 0
    bytes_written: int = 0

    @property
    def bytes(self) -> int:
        return self.bytes_read + self.bytes_written

    def __add__(self, other: Traffic) -> Traffic:
        return Traffic(
            bytes_read=self.bytes_read + other.bytes_read,
            bytes_written=self.bytes_written + other.bytes_written,
        )

    @classmethod
    def zero(cls) -> Traffic:
        return cls()


Rule = Callable[[Op, Sequence[TensorType], TensorType], Traffic]
RULES: RuleTable[Rule] = RuleTable("bytes")
NONE = Traffic()


@RULES.rule(Op)
def _round_trip(op: Op, ins: Sequence[TensorType], out: TensorType) -> Traffic:
    """The default for every op with operands: read each operand, write the result."""
    return Traffic(bytes_read=sum(t.nbytes for t in ins), bytes_written=out.nbytes)


@RULES.rule(Source, Reshape)
def _none(op: Op, ins: Sequence[TensorType], out: TensorType) -> Traffic:
    return NONE  # sources are read by their users; a reshape is a view


@RULES.rule(CacheAppend)
def _cache_append(op: Op, ins: Sequence[TensorType], out: TensorType) -> Traffic:
    new = ins[1]
    return Traffic(bytes_read=new.nbytes, bytes_written=new.nbytes)  # in place: T rows, not C + T


@RULES.rule(SDPA)
def _sdpa(op: Op, ins: Sequence[TensorType], out: TensorType) -> Traffic:
    assert isinstance(op, SDPA)
    q, k, v = ins
    keys = op.keys_attended(k)
    read_k = k.with_shape((k.shape[0], keys, k.shape[2]))
    read_v = v.with_shape((v.shape[0], keys, v.shape[2]))
    return Traffic(bytes_read=q.nbytes + read_k.nbytes + read_v.nbytes, bytes_written=out.nbytes)


@RULES.rule(AttentionScores, AttentionValues)
def _attention_part(op: Op, ins: Sequence[TensorType], out: TensorType) -> Traffic:
    """Reads its first operand and the attended ``keys`` rows of k (or v), writes its result."""
    assert isinstance(op, AttentionScores | AttentionValues)
    first, kv = ins
    read_kv = kv.with_shape((kv.shape[0], op.keys_attended(kv), kv.shape[2]))
    return Traffic(bytes_read=first.nbytes + read_kv.nbytes, bytes_written=out.nbytes)


@RULES.rule(Slice)
def _slice(op: Op, ins: Sequence[TensorType], out: TensorType) -> Traffic:
    """A slice reads only the part it keeps (the last token's row, not the whole sequence)."""
    return Traffic(bytes_read=out.nbytes, bytes_written=out.nbytes)


@RULES.rule(Embedding)
def _embedding(op: Op, ins: Sequence[TensorType], out: TensorType) -> Traffic:
    ids = ins[0]
    return Traffic(bytes_read=ids.nbytes + out.nbytes, bytes_written=out.nbytes)


def literal_names(graph: Graph) -> set[str]:
    """Constant nodes: literals a kernel takes as arguments, never read from DRAM."""
    return {n.name for n in graph if isinstance(n.op, Constant)}


def count_bytes(graph: Graph, convention: Convention = "matmul-only") -> dict[str, Traffic]:
    out: dict[str, Traffic] = {}
    literals = literal_names(graph)
    for node in graph:
        rule = RULES.lookup(node)
        if not counts(convention, node.op):
            out[node.name] = NONE
            continue
        t = rule(node.op, graph.operand_types(node), node.type)
        lits = [o for o in node.operands if o in literals]
        if lits:
            read = t.bytes_read - sum(graph.node(o).type.nbytes for o in lits)
            t = Traffic(bytes_read=read, bytes_written=t.bytes_written)
        out[node.name] = t
    return out


@register_pass
@frozen(kw_only=True)
class BytesPass(AnalysisPass):
    """DRAM bytes read and written per node under a counting convention."""

    name: ClassVar[str] = "bytes"
    summary: ClassVar[str] = "DRAM bytes read and written per node"
    record_type: ClassVar[type] = Traffic
    convention: Convention = field(default="matmul-only", validator=one_of(*CONVENTIONS))

    def analyze(self, graph: Graph) -> dict[str, Traffic]:
        return count_bytes(graph, self.convention)
