"""The kernel graph: what the device launches, once a fusion strategy has grouped the ops.

Each fusion group (``FusionGroup`` records, the ``fuse`` pass) is outlined into one kernel with
its external inputs (operands from outside the group, weights included) and outputs (members
read outside the group, or by nobody: the graph's results), as torch.fx's partitioner outlines
partitions; every other op (collectives, the placement's copies and unfused ops) is a kernel of
its own; sources are data, not kernels. Without fusion records every op is its own kernel. The
schedule, the trace and the fusion report read this one structure.

A kernel's time (``kernel_time``) sums its members' compute, NoC and link time; its DRAM time is
its members' scaled by what fusion leaves in DRAM (fused over unfused bytes, both under
``full``: intermediates that stay on chip cost no DRAM time), and it dispatches once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from attrs import frozen

from irperf.graph import Graph
from irperf.ops import Source
from passes.bytes import FusedTraffic, Traffic


@frozen(kw_only=True)
class FusionGroup:
    """The fusion group of one node: ``fusion_group`` names the group (its first member in
    topological order); ``size`` counts its members (1: not fused); ``rules`` made its merges."""

    fusion_group: str
    strategy: str
    size: int = 1
    rules: tuple[str, ...] = ()


@frozen
class Kernel:
    name: str
    """Its first member in program order."""
    members: tuple[str, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


@frozen
class KernelGraph:
    kernels: tuple[Kernel, ...]
    """In program order: a kernel comes after every kernel its inputs come from."""
    of: Mapping[str, str]
    """Each op's kernel."""

    def deps(self, kernel: Kernel) -> tuple[str, ...]:
        """The kernels that produce ``kernel``'s inputs (sources produce none)."""
        return tuple(dict.fromkeys(self.of[i] for i in kernel.inputs if i in self.of))


def kernel_graph(graph: Graph) -> KernelGraph:
    """The kernel graph (built once per graph state)."""
    groups = graph.records(FusionGroup) if graph.has_records(FusionGroup) else None
    return graph.memo("kernels", lambda: _kernel_graph(graph), (groups,))


def _kernel_graph(graph: Graph) -> KernelGraph:
    groups = graph.records(FusionGroup) if graph.has_records(FusionGroup) else None
    if groups is None:  # every op its own kernel, already in program order
        ops = {n.name: n.name for n in graph if not isinstance(n.op, Source)}
        alone = tuple(
            Kernel(name, (name,), tuple(dict.fromkeys(graph.node(name).operands)), (name,))
            for name in ops
        )
        return KernelGraph(alone, ops)
    members: dict[str, list[str]] = {}
    of: dict[str, str] = {}
    for n in graph:
        if isinstance(n.op, Source):
            continue
        g = groups[n.name].fusion_group if groups is not None else n.name
        members.setdefault(g, []).append(n.name)
        of[n.name] = g
    readers: dict[str, set[str]] = {}
    for n in graph:
        for o in n.operands:
            readers.setdefault(o, set()).add(of.get(n.name, n.name))
    kernels = []
    for g, names in members.items():
        inside = set(names)
        inputs = dict.fromkeys(
            o for name in names for o in graph.node(name).operands if o not in inside
        )
        outputs = [m for m in names if not readers.get(m) or readers[m] - {g}]
        kernels.append(Kernel(g, tuple(names), tuple(inputs), tuple(outputs)))
    return KernelGraph(_in_order(kernels, of), of)


def _in_order(kernels: Sequence[Kernel], of: Mapping[str, str]) -> tuple[Kernel, ...]:
    """Kernels topologically sorted, ties by their first member's place (the fusion partition
    keeps groups acyclic, so this always completes)."""
    import heapq

    position = {k.name: i for i, k in enumerate(kernels)}
    by_name = {k.name: k for k in kernels}
    waiting = {k.name: {of[i] for i in k.inputs if i in of} - {k.name} for k in kernels}
    users: dict[str, list[str]] = {}
    for k, deps in waiting.items():
        for d in deps:
            users.setdefault(d, []).append(k)
    ready = [(position[k], k) for k, deps in waiting.items() if not deps]
    heapq.heapify(ready)
    out = []
    while ready:
        _, k = heapq.heappop(ready)
        out.append(by_name[k])
        for u in users.get(k, ()):
            waiting[u].discard(k)
            if not waiting[u]:
                heapq.heappush(ready, (position[u], u))
    assert len(out) == len(kernels), "fusion groups form a cycle"
    return tuple(out)


def dram_fraction(graph: Graph, name: str, unfused: Mapping[str, Traffic]) -> float:
    """What share of an op's DRAM bytes fusion leaves in DRAM (1 without fused traffic)."""
    if not graph.has_records(FusedTraffic):
        return 1.0
    before = unfused[name].bytes
    return graph.records(FusedTraffic)[name].bytes / before if before else 1.0
