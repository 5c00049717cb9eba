"""Summaries built from analysis records: per-op rows, per-block-type groups, totals, latencies.

Reports read annotations here; nothing is recomputed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from attrs import asdict, frozen

from irperf.graph import Graph, Node
from passes.bytes import Traffic
from passes.flops import FlopCount
from passes.params import ParamCount
from passes.roofline import RooflineTime, aggregate_roofline_s, per_op_roofline_s

MS_PER_S = 1000.0


@frozen(kw_only=True)
class OpRow:
    name: str
    kind: str
    family: str
    stage: str | None
    block: str | None
    flops: int
    transcendentals: int
    bytes_read: int
    bytes_written: int
    params: int
    compute_ms: float
    memory_ms: float


@frozen(kw_only=True)
class GroupRow:
    """A sum over nodes: one block type (``vision.local`` x 32) or everything outside blocks."""

    label: str
    blocks: int
    ops: int
    flops: int
    transcendentals: int
    bytes: int
    params: int
    aggregate_roofline_ms: float
    per_op_roofline_ms: float


def op_rows(graph: Graph) -> list[OpRow]:
    flops = graph.records(FlopCount)
    traffic = graph.records(Traffic)
    params = graph.records(ParamCount)
    times = graph.records(RooflineTime)
    rows = []
    for n in graph:
        f, t, p, r = flops[n.name], traffic[n.name], params[n.name], times[n.name]
        rows.append(
            OpRow(
                name=n.name,
                kind=n.op.kind,
                family=n.op.family.value,
                stage=n.stage,
                block=n.block,
                flops=f.flops,
                transcendentals=f.transcendentals,
                bytes_read=t.bytes_read,
                bytes_written=t.bytes_written,
                params=p.params,
                compute_ms=r.compute_s * MS_PER_S,
                memory_ms=r.memory_s * MS_PER_S,
            )
        )
    return rows


def latency_ms(rows: Sequence[OpRow]) -> dict[str, float]:
    """The aggregate and per-op roofline latency of a set of rows, in ms."""
    times = [RooflineTime(compute_s=r.compute_ms, memory_s=r.memory_ms) for r in rows]
    return {
        "aggregate_roofline": aggregate_roofline_s(times),
        "per_op_roofline": per_op_roofline_s(times),
    }


def totals(rows: Sequence[OpRow]) -> dict[str, int]:
    return {
        "flops": sum(r.flops for r in rows),
        "bytes": sum(r.bytes_read + r.bytes_written for r in rows),
        "params": sum(r.params for r in rows),
        "transcendentals": sum(r.transcendentals for r in rows),
        "bytes_read": sum(r.bytes_read for r in rows),
        "bytes_written": sum(r.bytes_written for r in rows),
    }


def group_rows(label: str, rows: Sequence[OpRow]) -> GroupRow:
    lat = latency_ms(rows)
    return GroupRow(
        label=label,
        blocks=len({r.block for r in rows if r.block is not None}),
        ops=len(rows),
        flops=sum(r.flops for r in rows),
        transcendentals=sum(r.transcendentals for r in rows),
        bytes=sum(r.bytes_read + r.bytes_written for r in rows),
        params=sum(r.params for r in rows),
        aggregate_roofline_ms=lat["aggregate_roofline"],
        per_op_roofline_ms=lat["per_op_roofline"],
    )


def block_kind(graph: Graph, node: Node | OpRow) -> str:
    """A node's group: its block's kind, else ``<stage or top scope> (other)``."""
    if node.block is not None:
        return graph.blocks.get(node.block, node.block)
    top = node.stage or node.name.split(".", 1)[0]
    has_blocks = any(k.startswith(top + ".") for k in graph.blocks.values())
    return f"{top} (other)" if has_blocks else top


def by_block_type(graph: Graph, rows: Iterable[OpRow]) -> list[GroupRow]:
    groups: dict[str, list[OpRow]] = {}
    for r in rows:
        groups.setdefault(block_kind(graph, r), []).append(r)
    return [group_rows(label, members) for label, members in groups.items()]


def by_stage(rows: Iterable[OpRow]) -> list[GroupRow]:
    groups: dict[str, list[OpRow]] = {}
    for r in rows:
        groups.setdefault(r.stage or "other", []).append(r)
    return [group_rows(label, members) for label, members in groups.items()]


def rows_json(rows: Iterable[Any]) -> list[dict[str, Any]]:
    return [asdict(r) for r in rows]


def report(graph: Graph, **header: Any) -> dict[str, Any]:
    """The ``irperf analyze --json`` object for an analysed graph (flops, bytes, params, roofline
    records present). ``header`` entries (target, convention...) come first."""
    rows = op_rows(graph)
    return {
        "model": graph.meta.get("model"),
        "part": graph.meta.get("part"),
        **header,
        "totals": totals(rows),
        "latency_ms": latency_ms(rows),
        "groups": rows_json(by_block_type(graph, rows)),
        "ops": rows_json(rows),
    }
