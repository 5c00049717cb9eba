"""Fusion opportunities: every legal producer->consumer pair and sibling group of the unfused
graph, with the DRAM bytes and the roofline time that fusing it alone would save.

The baseline is strategy ``none`` (attention decomposed, nothing fused). ``rule`` names the
built-in rule that takes the opportunity (``flash-attention`` for the parts of one attention),
or is empty when only ``greedy`` can; ``fits`` says whether its working set fits on chip.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from attrs import asdict, frozen

from irperf.graph import Graph
from irperf.units import MS_PER_S
from passes.conventions import Convention
from passes.flops import FlopCount
from passes.fusion import SCORES, tensor_kinds
from passes.fusion_greedy import GroupCost, GroupCosts, capacity_bytes, compute_seconds
from passes.fusion_partition import Partition
from passes.fusion_rules import ALL, match_pairs
from passes.fusion_traffic import traffic_model
from passes.roofline import chips_pooled
from passes.summary import block_kind
from targets import Target

FLASH_ATTENTION = "flash-attention"


@frozen(kw_only=True)
class Opportunity:
    kind: str  # "pair" (producer -> consumer) or "siblings" (readers of one producer)
    producer: str
    consumers: tuple[str, ...]
    block_kind: str
    saved_bytes: int
    saved_ms: float
    working_set_bytes: int
    fits: bool
    rule: str


def _saving(singles: Sequence[GroupCost], merged: GroupCost) -> tuple[int, float]:
    before_bytes = sum(c.dram_bytes for c in singles)
    before_s = sum(c.time_s for c in singles)
    return before_bytes - merged.dram_bytes, (before_s - merged.time_s) * MS_PER_S


def opportunities(
    graph: Graph, target: Target, convention: Convention, capacity: int | None = None
) -> list[Opportunity]:
    """Opportunities on ``graph`` (unfused, FlopCount records present), largest saving first."""
    part = Partition(graph)
    model = traffic_model(graph, convention)
    compute = compute_seconds(graph, graph.records(FlopCount), target)
    costs = GroupCosts(model, compute, target, chips_pooled(graph, target))
    limit = capacity_bytes(target) if capacity is None else capacity
    single = [costs.evaluate([i]) for i in range(len(part))]
    rules = {(a, b): r for r, a, b in match_pairs(graph, ALL)}
    kinds = tensor_kinds(graph)
    nodes = list(graph)
    out: list[Opportunity] = []

    def add(kind: str, producer: int, group: list[int], rule: str) -> None:
        merged = costs.evaluate(group)
        saved, saved_ms = _saving([single[i] for i in group], merged)
        if saved <= 0:
            return
        consumers = group if kind == "siblings" else group[1:]
        out.append(
            Opportunity(
                kind=kind,
                producer=part.names[producer],
                consumers=tuple(part.names[c] for c in consumers),
                block_kind=block_kind(graph, nodes[group[-1]]),
                saved_bytes=saved,
                saved_ms=saved_ms,
                working_set_bytes=merged.working_bytes,
                fits=merged.working_bytes <= limit,
                rule=rule,
            )
        )

    for p in range(len(part)):
        readers = [s for s in part.succs[p] if not part.source[s]]
        for s in readers if not part.source[p] else ():
            if part.legal(p, s):
                names = (part.names[p], part.names[s])
                rule = FLASH_ATTENTION if kinds[p] == SCORES else rules.get(names, "")
                add("pair", p, [p, s], rule)
        by_block: dict[str | None, list[int]] = {}
        for s in readers:  # per block, readers with no path between any two of them
            siblings = by_block.setdefault(nodes[s].block, [])
            if all(part.legal(s, t) and s not in part.succs[t] for t in siblings):
                siblings.append(s)
        for siblings in by_block.values():
            if len(siblings) > 1:
                first = part.names[siblings[0]]
                named = [rules.get((first, part.names[s])) for s in siblings[1:]]
                rule = named[0] if named[0] is not None and len(set(named)) == 1 else ""
                add("siblings", p, siblings, rule)
    out.sort(key=lambda o: (-o.saved_bytes, -o.saved_ms, o.producer, o.consumers))
    return out


def local_name(graph: Graph, name: str, kind: str) -> str:
    """``name`` inside its block (``attn.wq`` for ``vision.local.3.attn.wq``) when the block is of
    ``kind``; the full name otherwise."""
    node = graph.node(name)
    block = node.block
    inside = block is not None and name.startswith(block + ".") and block_kind(graph, node) == kind
    return name[len(block) + 1 :] if inside and block else name


def by_pattern(graph: Graph, found: Sequence[Opportunity]) -> list[dict[str, Any]]:
    """Opportunities summed over repeated blocks: one row per pattern of local names."""
    rows: dict[tuple[Any, ...], dict[str, Any]] = {}
    for o in found:
        consumers = tuple(local_name(graph, c, o.block_kind) for c in o.consumers)
        producer = local_name(graph, o.producer, o.block_kind)
        key = (o.block_kind, o.kind, producer, consumers, o.rule)
        row = rows.get(key)
        if row is None:
            row = rows[key] = {
                "block_kind": o.block_kind,
                "kind": o.kind,
                "producer": key[2],
                "consumers": list(consumers),
                "rule": o.rule,
                "count": 0,
                "saved_bytes_each": o.saved_bytes,
                "saved_bytes": 0,
                "saved_ms": 0.0,
                "fits": True,
            }
        row["count"] += 1
        row["saved_bytes"] += o.saved_bytes
        row["saved_ms"] += o.saved_ms
        row["fits"] = row["fits"] and o.fits
    # Ties (same bytes, times equal but for float rounding) in a stable, readable order.
    return sorted(
        rows.values(),
        key=lambda r: (
            -r["saved_bytes"],
            -round(r["saved_ms"], 9),
            r["block_kind"] or "",
            r["producer"],
            r["consumers"],
        ),
    )


def opportunity_json(o: Opportunity) -> dict[str, Any]:
    d = asdict(o)
    d["consumers"] = list(o.consumers)
    return d
