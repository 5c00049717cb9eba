"""The ``schedule`` pass: a dependency-aware list schedule of one chip's program over its
resources, from each op's time (``op-time``). ``docs/time.md`` describes it; in short:

- **Resources** per chip: the host's dispatch queue, the compute grid (each core its own; an op
  takes as many cores as its tiles record says, every core for other ops), DRAM and the link.
  Every chip runs the same program on its part (SPMD), so one chip's schedule is every chip's;
  collectives keep them in step.
- **Order**: ops are dispatched in program order (the graph's topological order, as a
  command queue is filled), one dispatch gap after another on the host. An op starts when its
  operands are ready, its dispatch is done, and its resources are free; it holds them all until
  it ends. Among free cores it takes the earliest free, lowest numbered first: ops on disjoint
  cores may run together. Ties keep program order, so the same graph gives the same schedule.
- **Duration**: the op's compute, DRAM and NoC times overlapped by ``overlap`` (1: the largest;
  0: their sum), plus its link time.
- **Collectives**: with ``async_ccl`` (default) a collective holds the link only (its DRAM reads
  stream at the link's far lower rate), so it can run beside compute that does not need its
  result; without, it also holds every core.
- **Dispatch**: the host's gap per op precedes the op; with trace (decode) it is about 1 us and
  the device rarely waits; eager (29 us per op) the host falls behind short ops.

Per node: start, end, and the resources held. Graph-level: the makespan, the critical path (each
op's start traced back to what set it: an operand, a resource's previous holder, or its
dispatch), and busy time per resource.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from typing import ClassVar

from attrs import field, frozen
from attrs.converters import optional

from irperf.checks import range_validator
from irperf.errors import PassError
from irperf.graph import Graph
from irperf.ops import Collective, MeshSplit
from irperf.ops.taxonomy import VIEWS
from irperf.pass_manager import AnalysisPass, PassResult, register_pass
from passes.bytes import FusedTraffic, Traffic, count_bytes
from passes.kernels import Kernel, dram_fraction, kernel_graph
from passes.op_time import OpTime, OpTimeSummary
from passes.tiles import TileWork
from targets import Target
from targets.loader import load_target

HOST, GRID, DRAM, LINK = "host", "grid", "dram", "link"


@frozen(kw_only=True)
class Slot:
    """One op in the schedule: when it runs and what it holds (seconds from the start)."""

    start_s: float = 0.0
    end_s: float = 0.0
    dispatch_start_s: float = 0.0
    resources: tuple[str, ...] = ()
    cores: int = 0
    kernel: str = ""
    """The kernel the op runs in (its own name unless fused; empty for a source)."""
    time: OpTime | None = None
    """The kernel's time per resource (``kernel_time``), which reports read, never recompute."""


@frozen(kw_only=True)
class Schedule:
    """The graph-level record: makespan, critical path, busy time per resource."""

    makespan_s: float
    critical_path: tuple[str, ...]
    busy_s: Mapping[str, float]
    """Per resource, the time it is held (the grid's: core-seconds over its cores)."""
    overlap: float
    async_ccl: bool
    kernels: int = 0
    """Kernels scheduled: fusion groups and unfused ops."""


_overlap = range_validator(
    0.0,
    1.0,
    integer=False,
    error=PassError,
    where=lambda inst, attribute: f"pass 'schedule': option {attribute.name}",
)


def duration_s(t: OpTime, overlap: float) -> float:
    """Compute, DRAM and NoC overlapped by ``overlap``, then the link."""
    parts = (t.compute_s, t.dram_s, t.noc_s)
    return overlap * max(parts) + (1 - overlap) * sum(parts) + t.link_s


def kernel_time(
    graph: Graph, kernel: Kernel, times: Mapping[str, OpTime], unfused: Mapping[str, Traffic]
) -> OpTime:
    """A kernel's time: its members' compute, NoC and link summed, their DRAM time scaled by
    what fusion leaves in DRAM, one dispatch (``passes/kernels.py``)."""
    if len(kernel.members) == 1:
        t = times[kernel.members[0]]
        if not unfused:
            return t
    parts = [times[m] for m in kernel.members]
    dram = sum(
        times[m].dram_s * (dram_fraction(graph, m, unfused) if unfused else 1.0)
        for m in kernel.members
    )
    return OpTime(
        compute_s=sum(p.compute_s for p in parts),
        dram_s=dram,
        noc_s=sum(p.noc_s for p in parts),
        link_s=sum(p.link_s for p in parts),
        dispatch_s=max(p.dispatch_s for p in parts),
    )


def schedule(
    graph: Graph,
    times: Mapping[str, OpTime],
    cores: int,
    work: Mapping[str, TileWork] | None = None,
    overlap: float = 1.0,
    async_ccl: bool = True,
) -> tuple[dict[str, Slot], Schedule]:
    """The module docstring's list schedule, over the kernel graph (``passes/kernels.py``):
    one kernel per fusion group, or per op without fusion records. Each op's slot is its
    kernel's."""
    kg = kernel_graph(graph)
    unfused = count_bytes(graph, "full") if graph.has_records(FusedTraffic) else {}
    free = [(0.0, c) for c in range(cores)]  # (free at, core): a heap, earliest first
    heapq.heapify(free)
    owner = [""] * cores  # the last kernel on each core
    ready_at: dict[str, float] = {}
    last: dict[str, tuple[float, str]] = {}  # resource -> (free at, last holder)
    host_free, host_last = 0.0, ""
    cause: dict[str, str] = {}  # kernel -> what set its start ("" for time zero)
    slots: dict[str, Slot] = {}
    busy = {HOST: 0.0, GRID: 0.0, DRAM: 0.0, LINK: 0.0}
    for kernel in kg.kernels:
        name = kernel.name
        nodes = [graph.node(m) for m in kernel.members]
        t = kernel_time(graph, kernel, times, unfused)
        # Dispatch: in program order on the host, once per kernel.
        d_start = host_free
        host_free = d_start + t.dispatch_s
        busy[HOST] += t.dispatch_s
        start, why = host_free, host_last if t.dispatch_s else ""
        if t.dispatch_s:
            host_last = name
        for d in kg.deps(kernel):
            if ready_at[d] > start:
                start, why = ready_at[d], d
        links = [isinstance(n.op, Collective) and not isinstance(n.op, MeshSplit) for n in nodes]
        collective = all(links)  # only collectives: the kernel may run beside compute
        held: list[str] = [LINK] if any(links) else []
        view = all(isinstance(n.op, VIEWS) for n in nodes)
        need_cores = 0
        if not view and not (collective and async_ccl):
            found = [work[m] for m in kernel.members if work is not None and m in work]
            sized = [w.cores for w in found if w.grid is not None]
            need_cores = max(sized) if sized and len(sized) == len(nodes) else cores
            need_cores = min(max(need_cores, 1), cores)
        if t.dram_s and not view and not collective:  # a collective streams at the link's rate
            held.append(DRAM)
        for r in held:
            at, who = last.get(r, (0.0, ""))
            if at > start:
                start, why = at, who
        taken: list[tuple[float, int]] = []
        if need_cores:
            taken = [heapq.heappop(free) for _ in range(need_cores)]
            at = taken[-1][0]  # the k-th earliest free core
            if at > start:
                start, why = at, owner[taken[-1][1]]
            held.insert(0, GRID)
        length = 0.0 if view else duration_s(t, overlap)
        end = start + length
        for _, c in taken:
            heapq.heappush(free, (end, c))
            owner[c] = name
        for r in held:
            if r != GRID:
                last[r] = (end, name)
                busy[r] += length
        if need_cores:
            busy[GRID] += length * need_cores / cores
        ready_at[name] = end
        cause[name] = why
        slot = Slot(
            start_s=start,
            end_s=end,
            dispatch_start_s=d_start,
            resources=(HOST, *held) if t.dispatch_s else tuple(held),
            cores=need_cores,
            kernel=name,
            time=t,
        )
        for m in kernel.members:
            slots[m] = slot
    for n in graph:
        if n.name not in slots:
            slots[n.name] = Slot()  # a source: data, ready at 0
    kernel_slots = {k.name: slots[k.name] for k in kg.kernels}
    makespan = max((s.end_s for s in kernel_slots.values()), default=0.0)
    path: list[str] = []
    if kernel_slots:
        step = max(kernel_slots, key=lambda n: kernel_slots[n].end_s)  # ties: program order
        seen: set[str] = set()
        while step and step not in seen:
            seen.add(step)
            path.append(step)
            step = cause.get(step, "")
    path.reverse()
    return slots, Schedule(
        makespan_s=makespan,
        critical_path=tuple(path),
        kernels=len(kg.kernels),
        busy_s=busy,
        overlap=overlap,
        async_ccl=async_ccl,
    )


@register_pass
@frozen(kw_only=True)
class SchedulePass(AnalysisPass):
    """A list schedule of one chip's program from the ``op-time`` records."""

    name: ClassVar[str] = "schedule"
    summary: ClassVar[str] = "list schedule over host, cores, DRAM and link: start and end per op"
    record_type: ClassVar[type] = Slot
    requires: ClassVar[tuple[type, ...]] = (OpTime,)
    target: Target | None = field(default=None, converter=optional(load_target))
    """Whose compute grid the ops share (its cores per chip); default, and it must be, the
    target ``op-time`` timed the ops on."""
    overlap: float = field(default=1.0, validator=_overlap)
    async_ccl: bool = True

    def reads(self, graph: Graph) -> tuple[type, ...]:
        return (OpTime, TileWork) if graph.has_records(TileWork) else (OpTime,)

    def _schedule(self, graph: Graph) -> tuple[dict[str, Slot], Schedule]:
        work = graph.records(TileWork) if graph.has_records(TileWork) else None
        times = graph.records(OpTime)
        timed = graph.graph_record(OpTimeSummary) if graph.has_graph_record(OpTimeSummary) else None
        cores = self.target.cores if self.target is not None else 64
        if timed is not None:
            if self.target is not None and self.target.name != timed.target:
                raise PassError(
                    f"pass 'schedule': target {self.target.name!r}, but op-time timed the ops "
                    f"on {timed.target!r}; give both the same target (or schedule none)"
                )
            cores = timed.cores
        return schedule(graph, times, cores, work, self.overlap, self.async_ccl)

    def analyze(self, graph: Graph) -> dict[str, Slot]:
        return self._schedule(graph)[0]

    def run(self, graph: Graph) -> PassResult:
        if not graph.has_records(OpTime):
            raise PassError("needs OpTime records; run op-time first")
        slots, whole = self._schedule(graph)
        reads = self.reads(graph)
        graph.set_records(Slot, slots, depends_on=reads)
        graph.set_graph_record(whole, depends_on=(Slot, *reads))
        return PassResult(graph, modified=False)
