"""Greedy priority fusion: the first step by formula, the capacity limit, the log."""

from __future__ import annotations

from collections import defaultdict

import pytest

import irperf
from irperf import Graph
from irperf.ops import Reshape, Source
from passes.fusion import FusionGroup, plan_fusion
from passes.fusion_report import grouped_times, run_strategy
from targets import load_target

S, D, F = 4128, 1280, 5120  # 11B vision: tokens, width, MLP width
E = 2
PEAK = 128 * 1.024e12  # n300: 2 chips x 64 Tensix at 1.024 TFLOP/s (BF16, HiFi4)
BANDWIDTH = 2 * 288e9  # n300: 2 x 288 GB/s


@pytest.fixture(scope="module")
def counted() -> Graph:
    g = irperf.lower("llama-3.2-11b-vision", part="vision")
    return irperf.run(g, "flops{convention=full}")


def working_sets(graph: Graph, groups: dict[str, FusionGroup]) -> dict[str, int]:
    """Per group: the results read by another member (through views), kept on chip whole."""
    readers: dict[str, set[str]] = defaultdict(set)
    for n in graph:
        for o in n.operands:
            readers[o].add(n.name)

    def real_readers(name: str) -> set[str]:
        out: set[str] = set()
        for r in readers[name]:
            view = isinstance(graph.node(r).op, Reshape)
            out |= real_readers(r) if view else {r}
        return out

    sets: dict[str, int] = defaultdict(int)
    for n in graph:
        if isinstance(n.op, Reshape | Source):
            continue
        g = groups[n.name].fusion_group
        if any(groups[r].fusion_group == g for r in real_readers(n.name)):
            sets[g] += n.type.nbytes
    return sets


def test_first_step_by_formula(counted: Graph) -> None:
    plan = plan_fusion(counted, "greedy", target="n300", convention="full")
    first = plan.log[0]
    # bias_add reads S x F and the bias, writes S x F; gelu reads and writes S x F. Fused: the
    # bias_add result stays on chip. All memory-bound; the FLOPs (1 + 4 per element) are tiny.
    bias = max(S * F / PEAK, (2 * S * F * E + F * E) / BANDWIDTH)
    gelu = max(4 * S * F / PEAK, 2 * S * F * E / BANDWIDTH)
    fused = max(5 * S * F / PEAK, (2 * S * F * E + F * E) / BANDWIDTH)
    assert (first.producer, first.consumer) == (
        "vision.local.0.mlp.fc1.bias_add",
        "vision.local.0.mlp.gelu",
    )
    assert first.time_before_ms == pytest.approx((bias + gelu) * 1e3)
    assert first.time_after_ms == pytest.approx(fused * 1e3)
    assert first.saved_bytes == 2 * S * F * E
    assert "fuse vision.local.0.mlp.fc1.bias_add -> vision.local.0.mlp.gelu" in str(first)


def test_log_matches_the_groups(counted: Graph) -> None:
    plan = plan_fusion(counted, "greedy", target="n300", convention="full")
    groups = {r.fusion_group: r.size for r in plan.groups.values()}
    assert len(plan.log) == sum(size - 1 for size in groups.values())
    for step in plan.log:
        assert step.time_after_ms < step.time_before_ms
        assert plan.groups[step.producer].fusion_group == plan.groups[step.consumer].fusion_group
    assert all(r.rules == ("greedy",) for r in plan.groups.values() if r.size > 1)


@pytest.mark.parametrize("capacity", [0, 10_567_680, 50_000_000, None])
def test_capacity_limit(counted: Graph, capacity: int | None) -> None:
    plan = plan_fusion(counted, "greedy", target="n300", convention="full", capacity=capacity)
    limit = 128 * 1_396_736 if capacity is None else capacity  # n300: usable L1 x 128 cores
    sets = working_sets(counted, dict(plan.groups))
    assert all(size <= limit for size in sets.values())
    if capacity == 0:  # every producer -> consumer fusion keeps a result on chip
        assert not plan.log
        assert all(r.size == 1 for r in plan.groups.values())
    else:
        assert plan.log


def test_greedy_never_slower_than_unfused() -> None:
    g = irperf.lower("llama-3.2-11b-vision", part="vision")
    for target in ("n300", "h200", "n150"):
        base = run_strategy(g, "flash-attention", target=target)
        greedy = run_strategy(g, "greedy", target=target)
        per_op = [sum(t.latency_s for t in grouped_times(r.graph).values()) for r in (base, greedy)]
        assert per_op[1] < per_op[0]
        steps = greedy.plan.log
        assert per_op[0] - per_op[1] == pytest.approx(
            sum(s.time_before_ms - s.time_after_ms for s in steps) / 1e3
        )
    assert load_target("h200").l1_usable_bytes_per_core == 233_472
