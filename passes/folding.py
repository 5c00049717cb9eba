"""The whole graph's figures from a folded one (``irperf/folding.py``), after the passes ran.

Local records (FLOPs, bytes, homes, tiles, op times) are per node, the same for every instance
of a kept period; sums run over the whole node sequence in the whole graph's order (the kept
period ``times`` times in place), so they equal the whole walk's to the bit. The schedule is
not local: ``expand`` rebuilds the whole program from the folded steps, each kept step
``times`` times, its dependencies renamed instance by instance (the carry read from the
previous instance), and ``passes/schedule.py``'s own ``simulate`` runs it. Memory: each node's
allocation times its count; the live peak from the folded graph with every tensor the run reads
from outside kept live to the period's end, as it is in every instance but the last, which
holds no more.

``check`` refuses (None) what a pass did that would break this: a kept period's nodes no
longer contiguous, a new node outside the run reading it, or the run reading a node that the
folded lowering did not have (a copy of the carry, say).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

from attrs import frozen

from irperf.folding import Folded
from irperf.graph import Graph
from passes.kernels import KernelGraph
from passes.memory import MemoryFootprint, MemoryUse, memory_uses
from passes.schedule import Step

T = TypeVar("T")


@frozen
class Layout:
    """Where each run sits in a placed folded graph's node order and program."""

    node_spans: tuple[tuple[int, int, int], ...]
    """Per run: first node index, end index, times (node order of the folded graph)."""
    step_spans: tuple[tuple[int, int, int], ...]
    """Per run: first step, end step, times (its program)."""
    carries: tuple[Mapping[str, str], ...]
    """Per run, its carry in the placed graph: ``FoldedRun.carry``, or where a pass put a node
    on the carry's way in (tensor parallelism splits the residual stream once, before the
    first layer), that node in ``P``'s place."""


def _spans(regions: Sequence[int], times: Sequence[int]) -> tuple[tuple[int, int, int], ...] | None:
    found: dict[int, list[int]] = {}
    for i, r in enumerate(regions):
        if r >= 0:
            found.setdefault(r, []).append(i)
    out = []
    for r, at in sorted(found.items(), key=lambda kv: kv[1][0]):
        if at[-1] - at[0] + 1 != len(at):
            return None
        out.append((at[0], at[-1] + 1, times[r]))
    return tuple(out)


def check(folded: Folded, before: Graph, graph: Graph, kg: KernelGraph) -> Layout | None:
    """The layout of ``graph`` (``folded.graph`` after passes) if it still folds, else None."""
    run_of: dict[str | None, int] = dict(folded.run_of())
    known = set(before._nodes)
    carries = [dict(r.carry) for r in folded.runs]
    users: dict[str, list[str]] = {}
    for n in graph:
        for o in n.operands:
            users.setdefault(o, []).append(n.name)
    for n in graph:
        if n.block not in run_of:
            continue  # before or after the run (a node inside it breaks its span, below)
        r = run_of[n.block]
        for o in n.operands:
            if o in known or o in carries[r] or graph.node(o).block in run_of:
                continue
            # A new node outside the run that the run reads: on the carry's way in (it reads
            # P, and only the first instance reads it), or one every instance reads (the
            # projector's output gathered once for all the cross-attention layers).
            x = graph.node(o)
            old = [p for p in carries[r] if p in x.operands]
            if not old:
                continue
            if len(old) != 1 or any(graph.node(u).block != n.block for u in users[o]):
                return None
            carries[r][o] = carries[r].pop(old[0])
    for carry in carries:
        for p, e in carry.items():
            if p not in graph or e not in graph or graph.node(p).type != graph.node(e).type:
                return None
    times = [r.times for r in folded.runs]
    nodes = _spans([run_of.get(n.block, -1) for n in graph], times)
    steps = _spans([run_of.get(graph.node(k.name).block, -1) for k in kg.kernels], times)
    if nodes is None or steps is None or len(nodes) != len(folded.runs):
        return None
    return Layout(nodes, steps, tuple(carries))


def expanded(values: Sequence[T], spans: Sequence[tuple[int, int, int]]) -> list[T]:
    """``values`` (one per folded item) as the whole sequence: each span repeated in place."""
    out: list[T] = []
    at = 0
    for a, b, times in spans:
        out += values[at:a]
        out += list(values[a:b]) * times
        at = b
    out += values[at:]
    return out


def expand(
    folded: Folded, graph: Graph, kg: KernelGraph, steps: Sequence[Step], layout: Layout
) -> tuple[list[Step], list[tuple[int, ...]]]:
    """The whole program: its steps (folded ones, repeated) and each one's dependencies."""
    run_of: dict[str | None, int] = dict(folded.run_of())
    kernel_at = {k.name: i for i, k in enumerate(kg.kernels)}
    base: list[int] = []  # folded step -> its first whole index
    spans = {a: (b, times) for a, b, times in layout.step_spans}
    width: dict[int, int] = {}  # folded step in a run -> its run's period (in steps)
    first: dict[int, int] = {}  # folded step in a run -> its run's first folded step
    count = 0
    i = 0
    n = len(steps)
    while i < n:
        if i in spans:
            b, times = spans[i]
            for s in range(i, b):
                base.append(count + s - i)
                width[s] = b - i
                first[s] = i
            count += (b - i) * times
            i = b
        else:
            base.append(count)
            count += 1
            i += 1
    times_at = {s: spans[first[s]][1] for s in first}

    def last(d: int) -> int:
        """Where a step outside a run's copies reads folded step ``d``."""
        return base[d] + width[d] * (times_at[d] - 1) if d in width else base[d]

    whole_steps: list[Step] = []
    whole_deps: list[tuple[int, ...]] = []
    i = 0
    while i < n:
        if i not in spans:
            whole_steps.append(steps[i])
            whole_deps.append(tuple(last(d) for d in steps[i].deps))
            i += 1
            continue
        b, times = spans[i]
        carry = layout.carries[run_of[graph.node(kg.kernels[i].name).block]]
        for j in range(times):
            for s in range(i, b):
                kernel = kg.kernels[s]
                deps: dict[int, None] = {}
                for name in kernel.inputs:
                    if j and name in carry:
                        e = kernel_at[kg.of[carry[name]]]
                        deps[base[e] + (j - 1) * width[e]] = None
                        continue
                    k = kg.of.get(name)
                    if k is None or k == kernel.name:
                        continue
                    d = kernel_at[k]
                    if first.get(d) == i:
                        deps[base[d] + j * width[d]] = None  # this instance
                    else:
                        deps[last(d)] = None
                whole_steps.append(steps[s])
                whole_deps.append(tuple(deps))
        i = b
    return whole_steps, whole_deps


def footprint(folded: Folded, graph: Graph, layout: Layout) -> MemoryFootprint:
    """The whole graph's memory footprint (``passes/memory.py``) from the placed folded one."""
    run_of: dict[str | None, int] = dict(folded.run_of())
    nodes = list(graph)
    keep: dict[str, int] = {}
    for a, b, _ in layout.node_spans:
        for n in nodes[a:b]:
            for o in n.operands:
                if graph.node(o).block not in run_of:
                    keep[o] = max(keep.get(o, 0), b - 1)
    carried = {p for c in layout.carries for p in c}
    uses = memory_uses(graph, keep_live={o: i for o, i in keep.items() if o not in carried})
    # A carried P that is also read after the run (a tapped layer) stays live through every
    # instance, while instance j >= 1 also holds its own carry until its last reader: that many
    # more bytes than the kept instance shows, up to that reader.
    extra = [0] * len(nodes)
    at = {n.name: i for i, n in enumerate(nodes)}
    for (a, b, _), carry in zip(layout.node_spans, layout.carries, strict=True):
        for p in carry:
            inside = [at[u] for u in graph.users(p) if a <= at[u] < b]
            if inside and any(not a <= at[u] < b for u in graph.users(p)):
                for i in range(a, max(inside) + 1):
                    extra[i] += graph.node(p).type.nbytes
    weights = caches = 0
    peak = 0
    for i, n in enumerate(nodes):
        use: MemoryUse = uses[n.name]
        times = folded.times_of(n)
        weights += use.weight_bytes * times
        caches += use.kv_cache_bytes * times
        peak = max(peak, use.live_activation_bytes + extra[i])
    return MemoryFootprint(weights_bytes=weights, kv_cache_bytes=caches, activation_peak_bytes=peak)
