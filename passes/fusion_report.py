"""Fusion reports: run a strategy on a graph, compare strategies, split bytes by layer and kind.

Per-op roofline under fusion treats a group as one op: ``sum over groups of max(F_g / peak,
B_g / bandwidth)``. The aggregate roofline is unchanged: ``max(sum F / peak, sum B / bandwidth)``.
"""

from __future__ import annotations

from typing import Any

from attrs import asdict, frozen

from irperf.checks import show
from irperf.errors import PassError
from irperf.graph import Graph
from irperf.pass_manager import Pass, run_pipeline
from irperf.units import MS_PER_S
from passes.bytes import dram_traffic
from passes.conventions import Convention
from passes.decompose import DecomposeAttentionPass
from passes.flops import FlopCount, FlopsPass
from passes.fusion import (
    BytesByKind,
    BytesByKindPass,
    FusedBytesPass,
    FusionGroup,
    FusionPlan,
    plan_fusion,
)
from passes.fusion_greedy import FusionStep
from passes.fusion_opportunities import local_name
from passes.fusion_rules import get_strategy
from passes.kernels import kernel_graph
from passes.params import ParamsPass
from passes.roofline import RooflinePass, RooflineTime, aggregate_roofline_s
from passes.summary import block_kind
from targets import Target

BASELINE = "none"


@frozen(kw_only=True)
class StrategyRun:
    """A strategy applied: the annotated graph (flops, params, fusion groups, fused traffic,
    bytes by kind, roofline records) and its plan (with greedy's log)."""

    strategy: str
    graph: Graph
    plan: FusionPlan


def strategy_graph(graph: Graph, strategy: str) -> Graph:
    """The graph a strategy runs on: decomposed attention for ``none``, else as lowered."""
    if get_strategy(strategy).decompose_attention:
        return run_pipeline(graph.copy(), [DecomposeAttentionPass()])
    return graph.copy()


def run_strategy(
    graph: Graph,
    strategy: str,
    *,
    target: str | Target,
    convention: Convention = "full",
    capacity: int | None = None,
) -> StrategyRun:
    """Decompose if the strategy says so, count FLOPs, fuse, count fused traffic, roofline."""
    g = strategy_graph(graph, strategy)
    g = run_pipeline(g, [FlopsPass(convention=convention), ParamsPass()])
    plan = plan_fusion(g, strategy, target=target, convention=convention, capacity=capacity)
    g.set_records(FusionGroup, plan.groups)  # what FusePass stores; kept here for the log
    after: list[Pass] = [
        FusedBytesPass(convention=convention),
        BytesByKindPass(convention=convention),
        RooflinePass(target=target),
    ]
    return StrategyRun(strategy=strategy, graph=run_pipeline(g, after), plan=plan)


def grouped_times(graph: Graph) -> dict[str, RooflineTime]:
    """Roofline time per kernel of the kernel graph (``passes/kernels.py``: a fusion group, or
    an unfused op): its members' compute and memory times summed."""
    times = graph.records(RooflineTime)
    return {
        k.name: RooflineTime(
            compute_s=sum(times[m].compute_s for m in k.members),
            memory_s=sum(times[m].memory_s for m in k.members),
        )
        for k in kernel_graph(graph).kernels
    }


def summarize(run: StrategyRun) -> dict[str, Any]:
    """Totals of one strategy: FLOPs, DRAM bytes, intensity, the two latency views, groups."""
    g = run.graph
    flops = sum(f.flops for f in g.records(FlopCount).values())
    kinds = sum(g.records(BytesByKind).values(), BytesByKind.zero())
    dram = sum(t.bytes for t in dram_traffic(g).values())
    groups = grouped_times(g)
    fused = [r for r in g.records(FusionGroup).values() if r.size > 1]
    return {
        "strategy": run.strategy,
        "description": get_strategy(run.strategy).description,
        "flops": flops,
        "transcendentals": sum(f.transcendentals for f in g.records(FlopCount).values()),
        "dram_bytes": dram,
        "weights_bytes": kinds.weights_bytes,
        "activations_bytes": kinds.activations_bytes,
        "scores_bytes": kinds.scores_bytes,
        "arithmetic_intensity": flops / dram if dram else 0.0,
        "latency_ms": {
            "aggregate_roofline": aggregate_roofline_s(g.records(RooflineTime).values()) * MS_PER_S,
            "per_op_roofline": sum(t.latency_s for t in groups.values()) * MS_PER_S,
        },
        "fused_groups": len({r.fusion_group for r in fused}),
        "fused_ops": len(fused),
        "layers": layer_bytes(g),
    }


def with_delta(row: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    lat, base_lat = row["latency_ms"], base["latency_ms"]
    return {
        **row,
        "delta_vs_none": {
            "dram_bytes": row["dram_bytes"] - base["dram_bytes"],
            "aggregate_roofline_ms": lat["aggregate_roofline"] - base_lat["aggregate_roofline"],
            "per_op_roofline_ms": lat["per_op_roofline"] - base_lat["per_op_roofline"],
        },
    }


def layer_bytes(graph: Graph) -> list[dict[str, Any]]:
    """DRAM bytes by block kind (``vision.local`` x 32...) split into weights, activations and
    scores: totals, and per layer for repeated blocks."""
    kinds = graph.records(BytesByKind)
    acc: dict[str, BytesByKind] = {}
    blocks: dict[str, set[str]] = {}
    for n in graph:
        label = block_kind(graph, n)
        acc[label] = acc.get(label, BytesByKind.zero()) + kinds[n.name]
        if n.block is not None:
            blocks.setdefault(label, set()).add(n.block)
    rows = []
    for label, k in acc.items():
        layers = len(blocks.get(label, ()))
        row: dict[str, Any] = {
            "group": label,
            "layers": layers,
            "weights_bytes": k.weights_bytes,
            "activations_bytes": k.activations_bytes,
            "scores_bytes": k.scores_bytes,
            "dram_bytes": k.weights_bytes + k.activations_bytes + k.scores_bytes,
        }
        if layers:
            keys = ("weights_bytes", "activations_bytes", "scores_bytes", "dram_bytes")
            row["per_layer"] = {key: row[key] // layers for key in keys}
        rows.append(row)
    return rows


def fused_groups(run: StrategyRun) -> list[dict[str, Any]]:
    """Every group of more than one node: its members, the rules that made it, its cost."""
    g = run.graph
    records = g.records(FusionGroup)
    traffic = g.records(BytesByKind)
    times = grouped_times(g)
    members: dict[str, list[str]] = {}
    for n in g:
        r = records[n.name]
        if r.size > 1:
            members.setdefault(r.fusion_group, []).append(n.name)
    out = []
    for name, names in members.items():
        k = sum((traffic[m] for m in names), BytesByKind.zero())
        out.append(
            {
                "fusion_group": name,
                "members": names,
                "rules": list(records[name].rules),
                "dram_bytes": k.weights_bytes + k.activations_bytes + k.scores_bytes,
                "latency_ms": times[name].latency_s * MS_PER_S,
            }
        )
    return out


def groups_by_pattern(graph: Graph, groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fused groups summed over repeated blocks: one row per (block kind, local members)."""
    rows: dict[tuple[str, tuple[str, ...], tuple[str, ...]], dict[str, Any]] = {}
    for grp in groups:
        kind = block_kind(graph, graph.node(grp["fusion_group"]))
        members = tuple(local_name(graph, m, kind) for m in grp["members"])
        key = (kind, members, tuple(grp["rules"]))
        row = rows.setdefault(
            key,
            {"block_kind": kind, "members": list(members), "rules": grp["rules"], "count": 0},
        )
        row["count"] += 1
        row["dram_bytes"] = row.get("dram_bytes", 0) + grp["dram_bytes"]
    return list(rows.values())


def run_all(
    graph: Graph,
    strategies: list[str],
    *,
    target: str | Target,
    convention: Convention = "full",
    capacity: int | None = None,
) -> dict[str, StrategyRun]:
    """Every strategy run, the baseline ``none`` first."""
    if (
        isinstance(strategies, str)
        or not isinstance(strategies, list | tuple)
        or not strategies
        or not all(isinstance(s, str) for s in strategies)
    ):
        raise PassError(f"strategies must be a list of strategy names, got {show(strategies)}")
    return {
        s: run_strategy(graph, s, target=target, convention=convention, capacity=capacity)
        for s in dict.fromkeys([BASELINE, *strategies])
    }


def compare_runs(runs: dict[str, StrategyRun], strategies: list[str]) -> list[dict[str, Any]]:
    """One summary per strategy with its delta against ``none``, and greedy's log."""
    base = summarize(runs[BASELINE])
    out = []
    for s in strategies:
        row = with_delta(summarize(runs[s]), base)
        if runs[s].plan.log:
            row["log"] = [step_json(step) for step in runs[s].plan.log]
        out.append(row)
    return out


def compare(
    graph: Graph,
    strategies: list[str],
    *,
    target: str | Target,
    convention: Convention = "full",
    capacity: int | None = None,
) -> list[dict[str, Any]]:
    """The ``irperf fusion --compare`` rows (``--json``'s ``strategies``)."""
    runs = run_all(graph, strategies, target=target, convention=convention, capacity=capacity)
    return compare_runs(runs, strategies)


def step_json(step: FusionStep) -> dict[str, Any]:
    return asdict(step)
