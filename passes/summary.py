"""Summaries built from analysis records: per-op rows, per-block-type groups, totals, latencies.

Reports read annotations here; nothing is recomputed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from attrs import asdict, fields, frozen

from irperf.graph import Graph, Node
from irperf.units import MS_PER_S
from passes.bytes import dram_traffic
from passes.flops import FlopCount
from passes.memory import MemoryUse, footprint, peak_node
from passes.params import ParamCount
from passes.roofline import RooflineTime, aggregate_roofline_s, per_op_roofline_s


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
    link_bytes: int = 0
    link_ms: float = 0.0


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
    traffic = dram_traffic(graph)
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
                link_bytes=t.link_bytes,
                link_ms=r.link_s * MS_PER_S,
            )
        )
    return rows


def latency_ms(rows: Sequence[OpRow]) -> dict[str, float]:
    """The aggregate and per-op roofline latency of a set of rows, and their link time, in ms."""
    times = [
        RooflineTime(compute_s=r.compute_ms, memory_s=r.memory_ms, link_s=r.link_ms) for r in rows
    ]
    return {
        "aggregate_roofline": aggregate_roofline_s(times),
        "per_op_roofline": per_op_roofline_s(times),
        "link_ms": sum(r.link_ms for r in rows),
    }


def _ops(rows: Sequence[OpRow]) -> int:
    """Rows that compute or move something: sources (inputs, weights, constants) are not ops."""
    return sum(1 for r in rows if r.family != "source")


def totals(rows: Sequence[OpRow]) -> dict[str, int]:
    return {
        "ops": _ops(rows),
        "flops": sum(r.flops for r in rows),
        "bytes": sum(r.bytes_read + r.bytes_written for r in rows),
        "params": sum(r.params for r in rows),
        "transcendentals": sum(r.transcendentals for r in rows),
        "bytes_read": sum(r.bytes_read for r in rows),
        "bytes_written": sum(r.bytes_written for r in rows),
        "link_bytes": sum(r.link_bytes for r in rows),
    }


def group_rows(label: str, rows: Sequence[OpRow]) -> GroupRow:
    lat = latency_ms(rows)
    return GroupRow(
        label=label,
        blocks=len({r.block for r in rows if r.block is not None}),
        ops=_ops(rows),
        flops=sum(r.flops for r in rows),
        transcendentals=sum(r.transcendentals for r in rows),
        bytes=sum(r.bytes_read + r.bytes_written for r in rows),
        params=sum(r.params for r in rows),
        aggregate_roofline_ms=lat["aggregate_roofline"],
        per_op_roofline_ms=lat["per_op_roofline"],
    )


def _kind_prefixes(graph: Graph) -> frozenset[str]:
    """Every proper dotted prefix of a block kind (``vision`` for ``vision.local``)."""
    out: set[str] = set()
    for kind in set(graph.blocks.values()):
        parts = kind.split(".")
        out.update(".".join(parts[:i]) for i in range(1, len(parts)))
    return frozenset(out)


def block_kind(graph: Graph, node: Node | OpRow, prefixes: frozenset[str] | None = None) -> str:
    """A node's group: its block's kind, else ``<stage or top scope> (other)`` when blocks of
    that stage exist, else the stage. ``prefixes``: ``_kind_prefixes(graph)``, if computed."""
    if node.block is not None:
        return graph.blocks.get(node.block, node.block)
    top = node.stage or node.name.split(".", 1)[0]
    if prefixes is None:
        prefixes = _kind_prefixes(graph)
    return f"{top} (other)" if top in prefixes else top


def by_block_type(graph: Graph, rows: Iterable[OpRow]) -> list[GroupRow]:
    prefixes = _kind_prefixes(graph)
    groups: dict[str, list[OpRow]] = {}
    for r in rows:
        groups.setdefault(block_kind(graph, r, prefixes), []).append(r)
    return [group_rows(label, members) for label, members in groups.items()]


STAGE_LABELS: dict[str, str] = {
    "vision": "vision encoder",
    "projector": "projector",
    "cross_kv": "cross-attention K/V",
    "text": "text layers",
    "lm_head": "lm_head",
}
"""The model's stages in execution order, with their labels in tables."""


@frozen(kw_only=True)
class StageRow(GroupRow):
    """A sum over the nodes of one stage (what they do: ``cross_kv`` sums every cross layer's
    K/V projection, wherever its nodes are scoped); ``label`` is the stage's name in tables."""

    stage: str


def by_stage(rows: Iterable[OpRow]) -> list[StageRow]:
    """One row per stage present, known stages in execution order, then any others."""
    groups: dict[str, list[OpRow]] = {}
    for r in rows:
        groups.setdefault(r.stage or "other", []).append(r)
    order = [s for s in STAGE_LABELS if s in groups] + [s for s in groups if s not in STAGE_LABELS]
    return [
        StageRow(stage=stage, **asdict(group_rows(STAGE_LABELS.get(stage, stage), groups[stage])))
        for stage in order
    ]


def memory_json(graph: Graph) -> dict[str, Any]:
    """Weights, KV cache and peak activation bytes from the memory pass's records, with the
    cache tensors and the node where activations peak."""
    records = graph.records(MemoryUse)
    fp = footprint(records)
    caches = [
        {"name": name, "bytes": use.kv_cache_bytes}
        for name, use in records.items()
        if use.kv_cache_bytes
    ]
    return {
        "weights_bytes": fp.weights_bytes,
        "kv_cache_bytes": fp.kv_cache_bytes,
        "activation_peak_bytes": fp.activation_peak_bytes,
        "total_bytes": fp.total_bytes,
        "activation_peak_node": peak_node(records),
        "kv_cache": caches,
    }


def rows_json(rows: Iterable[Any]) -> list[dict[str, Any]]:
    """Each row's fields, as ``attrs.asdict`` gives them (the rows hold plain numbers and
    text: a field-by-field copy, three times faster on a whole graph's ops)."""
    out = []
    names: tuple[str, ...] = ()
    kind: type | None = None
    for r in rows:
        if type(r) is not kind:
            kind = type(r)
            names = tuple(f.name for f in fields(kind))
        out.append({n: getattr(r, n) for n in names})
    return out


RUN_KEYS = (
    "batch",
    "images",
    "tiles",
    "seq_len",
    "context",
    "image",
    "logits",
    "dtype",
    "weight_dtype",
    "layout",
)
"""Graph metadata a report repeats under ``run``: what the graph computes."""


def report(graph: Graph, **header: Any) -> dict[str, Any]:
    """The ``irperf analyze --json`` object for an analysed graph (flops, bytes, params, roofline
    records present; ``memory`` when the memory pass ran). ``header`` entries (target,
    convention...) come after model, part and phase."""
    rows = op_rows(graph)
    out: dict[str, Any] = {
        "model": graph.meta.get("model"),
        "part": graph.meta.get("part"),
        "phase": graph.meta.get("phase"),
        **header,
        "run": {k: graph.meta[k] for k in RUN_KEYS if k in graph.meta},
        "totals": totals(rows),
        "latency_ms": latency_ms(rows),
        "groups": rows_json(by_block_type(graph, rows)),
        "stages": rows_json(by_stage(rows)),
    }
    if graph.has_records(MemoryUse):
        out["memory"] = memory_json(graph)
    out["ops"] = rows_json(rows)
    return out
