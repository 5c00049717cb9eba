"""Greedy fusion, XLA priority-fusion style: fuse the producer->consumer pair that saves the most.

Cost model: a group takes ``max(compute, memory)`` (its roofline time on the target): compute is
the sum of its nodes' FLOPs at the peak of each node's format, memory its DRAM bytes under fusion
(``fusion_traffic``) over the DRAM bandwidth. A candidate is a producer->consumer edge between
two groups; its gain is ``time(P) + time(C) - time(P u C)``. The best gain is fused first, the
merged group's candidates are recomputed, and it stops when no candidate gains. Two limits:
legality (no cycle between groups) and capacity: the merged group's working set (every result a
member reads from another member, kept on chip whole) must fit the target's on-chip memory,
``l1_usable_bytes_per_core * cores`` (shared memory per SM x SMs on a GPU).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from attrs import Attribute, frozen

from irperf.checks import check_range
from irperf.errors import PassError
from irperf.graph import Graph
from irperf.units import MS_PER_S
from passes.flops import FlopCount
from passes.fusion_partition import Partition
from passes.fusion_traffic import GroupTraffic, TrafficModel
from passes.roofline import chips_pooled, compute_dtype, peak_for
from targets import Target

MIN_RELATIVE_GAIN = 1e-9
"""Gains below this fraction of the unfused time are float noise, not a saving."""


@frozen(kw_only=True)
class FusionStep:
    """One greedy step, as XLA's fusion dump logs it: the edge fused and the times around it."""

    producer: str
    consumer: str
    time_before_ms: float
    time_after_ms: float
    saved_bytes: int
    group_size: int

    def __str__(self) -> str:
        return (
            f"fuse {self.producer} -> {self.consumer}: {self.time_before_ms:.6f} ms -> "
            f"{self.time_after_ms:.6f} ms, saves {self.saved_bytes:,} B ({self.group_size} ops)"
        )


MAX_CAPACITY_BYTES = 2**50
"""An on-chip limit override: 0 (fuse nothing) to 1 PiB."""


def check_capacity(value: object, what: str = "capacity") -> None:
    """A PassError unless ``value`` is None (the target's own limit) or in range."""
    if value is not None:
        check_range(value, 0, MAX_CAPACITY_BYTES, integer=True, what=what, error=PassError)


def capacity_option(inst: object, attribute: Attribute[Any], value: object) -> None:
    """``check_capacity`` as the attrs validator of a pass option."""
    check_capacity(value, f"pass 'fuse': option {attribute.name}")


def capacity_bytes(target: Target) -> int:
    """On-chip memory a group's working set must fit: one chip's usable L1 (shared memory on a
    GPU), its cores' total: a fused kernel runs on one chip, so its intermediates stay there."""
    return target.l1_usable_bytes_per_core * target.cores


def compute_seconds(graph: Graph, flops: Mapping[str, FlopCount], target: Target) -> list[float]:
    """Each node's compute time at the peak of its format (roofline's rule)."""
    peaks: dict[tuple[str, str | None], float] = {}
    out = []
    for n in graph:
        f = flops[n.name].flops
        chips = chips_pooled(graph, target)
        peak = peak_for(target, compute_dtype(graph, n), n.fidelity, peaks, n, chips) if f else 1.0
        out.append(f / peak)
    return out


@frozen
class GroupCost:
    compute_s: float
    dram_bytes: int
    working_bytes: int
    time_s: float


class GroupCosts:
    """Roofline time of groups of node indices on a target."""

    def __init__(
        self, model: TrafficModel, compute_s: list[float], target: Target, chips: int
    ) -> None:
        self.model = model
        self.compute_s = compute_s
        self.bandwidth = target.dram_bandwidth_bytes_per_s_per_chip * chips  # chips_pooled

    def time(self, compute: float, dram_bytes: int) -> float:
        return max(compute, dram_bytes / self.bandwidth)

    def evaluate(self, members: list[int]) -> GroupCost:
        dram, working = self.model.group_bytes(members)
        compute = sum(self.compute_s[i] for i in members)
        return GroupCost(compute, dram, working, self.time(compute, dram))

    def of(self, members: list[int], traffic: GroupTraffic) -> GroupCost:
        """``evaluate(members)`` from the group's traffic, kept as groups merge."""
        compute = sum(self.compute_s[i] for i in members)
        dram = traffic.dram_bytes
        return GroupCost(compute, dram, traffic.working, self.time(compute, dram))


def greedy_fusion(
    graph: Graph,
    model: TrafficModel,
    compute_s: list[float],
    target: Target,
    capacity: int,
    resident: Sequence[int] = (),
) -> tuple[Partition, list[FusionStep]]:
    """Priority fusion over ``graph``; the partition and the log of the steps taken.
    ``resident``: per node, the bytes of one chip's L1 that a placement's live tensors hold at
    its step (none: the whole capacity is the group's)."""
    part = Partition(graph)
    costs = GroupCosts(model, compute_s, target, chips_pooled(graph, target))
    n = len(part)
    traffic = [model.alone(i) for i in range(n)]  # each group's, merged as groups merge
    state = [costs.of([i], traffic[i]) for i in range(n)]
    version = [0] * n
    heap: list[tuple[float, int, int, int, int, int, int, int]] = []
    log: list[FusionStep] = []
    tie = itertools.count()  # equal gains: first come, first fused

    def consider(a: int, b: int, producer: int, consumer: int) -> None:
        if part.source[a] or part.source[b]:
            return
        members = part.members[a] + part.members[b]
        merged = costs.of(members, model.merged(traffic[a], traffic[b]))
        before, after = state[a].time_s + state[b].time_s, merged.time_s
        room = capacity - max((resident[i] for i in members), default=0) if resident else capacity
        if merged.working_bytes > room or before - after <= MIN_RELATIVE_GAIN * before:
            return
        entry = (after - before, next(tie), a, b, version[a], version[b], producer, consumer)
        heapq.heappush(heap, entry)

    for i in range(n):
        for s in part.succs[i]:
            consider(i, s, i, s)
    while heap:
        _, _, a, b, va, vb, producer, consumer = heapq.heappop(heap)
        if part.find(a) != a or part.find(b) != b or (version[a], version[b]) != (va, vb):
            continue  # stale: one side changed since this gain was computed
        before = state[a].time_s + state[b].time_s
        saved = state[a].dram_bytes + state[b].dram_bytes
        if not part.merge(a, b, "greedy"):
            continue
        m = part.find(a)
        version[m] += 1
        traffic[m] = both = model.merged(traffic[a], traffic[b])
        state[m] = costs.of(part.members[m], both)
        log.append(
            FusionStep(
                producer=part.names[producer],
                consumer=part.names[consumer],
                time_before_ms=before * MS_PER_S,
                time_after_ms=state[m].time_s * MS_PER_S,
                saved_bytes=saved - state[m].dram_bytes,
                group_size=len(part.members[m]),
            )
        )
        into: set[int] = {m}
        out_of: set[int] = {m}
        for i in part.members[m]:
            for p in part.preds[i]:
                g = part.find(p)
                if g not in into:
                    into.add(g)
                    consider(g, m, p, i)
            for s in part.succs[i]:
                g = part.find(s)
                if g not in out_of:
                    out_of.add(g)
                    consider(m, g, i, s)
    return part, log
