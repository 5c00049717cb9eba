"""Fusion on the machine: groups never span chips, and greedy's capacity is what one chip's L1
has left beside a placement's live tensors."""

from __future__ import annotations

import attrs

import irperf
from irperf.builder import Builder
from irperf.dtypes import BF16
from irperf.ops import Collective, Silu
from passes.fusion import plan_fusion
from passes.placement import Placement
from targets import load_target

N300 = load_target("n300")
KIB64 = 32 * 1024 * 2  # a [32, 1024] BF16 tensor: 32 tiles of 2 KiB


def test_no_group_holds_a_collective() -> None:
    g = irperf.run(
        irperf.lower("llama-3.2-11b-vision", phase="decode"),
        "tensor-parallel{chips=2},flops{convention=full}",
    )
    collectives = {n.name for n in g if isinstance(n.op, Collective)}
    assert len(collectives) > 80
    for strategy in ("greedy", "all"):
        plan = plan_fusion(g, strategy, target="n300", convention="full")
        assert all(plan.groups[c].size == 1 for c in collectives), strategy
        assert any(r.size > 1 for r in plan.groups.values()), strategy


def _chain() -> irperf.Graph:
    """r is made first and read last (live in L1 throughout); a -> b is a fusable chain whose
    tensors (128 KiB) never fit the one core's L1, so placing them spills nothing."""
    b = Builder()
    r = b.add(Silu(), b.input("x", (32, 1024), BF16), name="r")
    a = b.add(Silu(), b.input("y", (32, 2048), BF16), name="a")
    bb = b.add(Silu(), a, name="b")
    b.add(Silu(), bb, name="c")
    b.add(Silu(), r, name="use_r")
    return b.graph


def test_greedy_capacity_is_what_the_live_set_leaves() -> None:
    # One core with room for r and an op's buffers (2 x 2 tiles of 2 KiB), not for a.
    one = attrs.evolve(
        N300, grid=(1, 1), mesh=(1, 2), l1_usable_bytes_per_core=KIB64 + 2 * 2 * 2048
    )
    fused_room = 150 * 1024  # greedy's limit: a's 128 KiB intermediate fits, unplaced
    g = _chain()
    unplaced = irperf.run(g, "flops{convention=full}")
    free = plan_fusion(unplaced, "greedy", target=one, convention="full", capacity=fused_room)
    assert free.groups["a"].fusion_group == free.groups["b"].fusion_group
    place = irperf.get_pass("place")(strategy="l1-greedy", target=one)
    placed = irperf.run(g, [place, "flops{convention=full}"])
    homes = placed.records(Placement)
    assert not homes["a"].spilled and homes["a"].resident_bytes_per_core == KIB64  # r, beside a
    # Beside r's 64 KiB, 86 KiB is left: a's 128 KiB intermediate no longer fits, a and b
    # never fuse.
    plan = plan_fusion(placed, "greedy", target=one, convention="full", capacity=fused_room)
    assert plan.groups["a"].fusion_group != plan.groups["b"].fusion_group
