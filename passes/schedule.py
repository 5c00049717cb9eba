"""The ``schedule`` pass: a dependency-aware list schedule of one chip's program over its
resources, from each op's time (``op-time``). ``docs/time.md`` describes it; in short:

- **Resources** per chip: the host's dispatch queue, the compute grid (each core its own; an op
  takes as many cores as its tiles record says, every core for other ops), DRAM and the link.
  Every chip runs the same program on its part (SPMD), so one chip's schedule is every chip's;
  collectives keep them in step.
- **Order**: ops are dispatched in program order (the graph's topological order, as a
  command queue is filled), one dispatch gap after another on the host. An op starts when its
  operands are ready, its dispatch is done, and its resources are free; it holds them all until
  it ends. Among free cores it takes the earliest free (cores are alike: only when each comes
  free matters, so they are kept as a multiset of times): ops on disjoint cores may run
  together. Ties keep program order, so the same graph gives the same schedule.
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

from bisect import bisect_right
from collections.abc import Mapping, Sequence
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


@frozen
class Step:
    """One kernel as the schedule runs it: what ``program`` derives from the graph, so the loop
    in ``simulate`` touches numbers only. ``deps`` are indices of earlier steps."""

    name: str
    time: OpTime
    length_s: float
    """Its duration once it starts (zero for a view)."""
    cores: int
    """Cores it holds (0: none)."""
    dram: bool
    link: bool
    deps: tuple[int, ...]


@frozen
class Timeline:
    """What ``simulate`` computes, per step (seconds from the start)."""

    starts: tuple[float, ...]
    ends: tuple[float, ...]
    dispatch_starts: tuple[float, ...]
    causes: tuple[int, ...]
    """Per step, the step that set its start (-1: time zero)."""
    busy_s: Mapping[str, float]


def program(
    graph: Graph,
    times: Mapping[str, OpTime],
    cores: int,
    work: Mapping[str, TileWork] | None = None,
    overlap: float = 1.0,
    async_ccl: bool = True,
) -> list[Step]:
    """The graph's kernels (``passes/kernels.py``) in program order, as steps."""
    kg = kernel_graph(graph)  # built once per graph state
    unfused = count_bytes(graph, "full") if graph.has_records(FusedTraffic) else {}
    steps: list[Step] = []
    shaped = zip(kg.kernels, shapes(graph, cores, work, async_ccl), strict=True)
    for kernel, (need_cores, link, collective, view, deps) in shaped:
        t = kernel_time(graph, kernel, times, unfused)
        steps.append(
            Step(
                name=kernel.name,
                time=t,
                length_s=0.0 if view else duration_s(t, overlap),
                cores=need_cores,
                # a collective streams its DRAM reads at the link's rate: it holds the link only
                dram=bool(t.dram_s) and not view and not collective,
                link=link,
                deps=deps,
            )
        )
    return steps


Shape = tuple[int, bool, bool, bool, tuple[int, ...]]


def shapes(
    graph: Graph, cores: int, work: Mapping[str, TileWork] | None, async_ccl: bool
) -> list[Shape]:
    """Per kernel what its times do not change: the cores it holds, whether it holds the link,
    is only collectives, is only views, and the steps it depends on (once per graph state)."""
    return graph.memo(
        ("program", cores, async_ccl), lambda: _shapes(graph, cores, work, async_ccl), (work,)
    )


def _shapes(
    graph: Graph, cores: int, work: Mapping[str, TileWork] | None, async_ccl: bool
) -> list[Shape]:
    kg = kernel_graph(graph)
    index: dict[str, int] = {}
    out: list[Shape] = []
    for kernel in kg.kernels:
        nodes = [graph.node(m) for m in kernel.members]
        links = [isinstance(n.op, Collective) and not isinstance(n.op, MeshSplit) for n in nodes]
        collective = all(links)  # only collectives: the kernel may run beside compute
        view = all(isinstance(n.op, VIEWS) for n in nodes)
        need_cores = 0
        if not view and not (collective and async_ccl):
            found = [work[m] for m in kernel.members if work is not None and m in work]
            sized = [w.cores for w in found if w.grid is not None]
            need_cores = max(sized) if sized and len(sized) == len(nodes) else cores
            need_cores = min(max(need_cores, 1), cores)
        index[kernel.name] = len(out)
        deps = tuple(index[d] for d in kg.deps(kernel))
        out.append((need_cores, any(links), collective, view, deps))
    return out


def simulate(
    steps: Sequence[Step], cores: int, deps: Sequence[tuple[int, ...]] | None = None
) -> Timeline:
    """The module docstring's list schedule of ``steps`` on ``cores`` cores. ``deps`` (one per
    step) stands for the steps' own where given, so a caller can run one step's numbers in
    several places (``passes/folding.py``)."""
    n = len(steps)
    starts = [0.0] * n
    ends = [0.0] * n
    d_starts = [0.0] * n
    causes = [-1] * n
    # Free cores as a multiset of times, earliest first: ``free_at[i]`` holds ``counts[i]``
    # cores, last released by step ``owners[i]``. A step takes the earliest free; its start
    # waits for the last core it takes. Only the times matter to the schedule.
    free_at: list[float] = [0.0]
    counts: list[int] = [cores]
    owners: list[int] = [-1]
    dram_free, dram_last = 0.0, -1
    link_free, link_last = 0.0, -1
    host_free, host_last = 0.0, -1
    busy_host = busy_grid = busy_dram = busy_link = 0.0
    for i in range(n):
        s = steps[i]
        dispatch = s.time.dispatch_s
        # Dispatch: in program order on the host, once per kernel.
        d_starts[i] = host_free
        host_free += dispatch
        busy_host += dispatch
        start, why = host_free, (host_last if dispatch else -1)
        if dispatch:
            host_last = i
        for d in s.deps if deps is None else deps[i]:
            if ends[d] > start:
                start, why = ends[d], d
        if s.link and link_free > start:
            start, why = link_free, link_last
        if s.dram and dram_free > start:
            start, why = dram_free, dram_last
        need = s.cores
        if need == cores:  # every core (most ops): the last to come free
            if free_at[-1] > start:
                start, why = free_at[-1], owners[-1]
        elif need:
            j = 0  # the group holding the need-th earliest free core
            got = counts[0]
            while got < need:
                j += 1
                got += counts[j]
            if free_at[j] > start:
                start, why = free_at[j], owners[j]
            rest = got - need
            if rest:
                del free_at[:j], counts[:j], owners[:j]
                counts[0] = rest
            else:
                del free_at[: j + 1], counts[: j + 1], owners[: j + 1]
        length = s.length_s
        end = start + length
        if need == cores:
            free_at, counts, owners = [end], [cores], [i]
            busy_grid += length
        elif need:
            k = bisect_right(free_at, end)
            if k and free_at[k - 1] == end:
                counts[k - 1] += need
                owners[k - 1] = i
            else:
                free_at.insert(k, end)
                counts.insert(k, need)
                owners.insert(k, i)
            busy_grid += length * need / cores
        if s.link:
            link_free, link_last = end, i
            busy_link += length
        if s.dram:
            dram_free, dram_last = end, i
            busy_dram += length
        starts[i] = start
        ends[i] = end
        causes[i] = why
    return Timeline(
        starts=tuple(starts),
        ends=tuple(ends),
        dispatch_starts=tuple(d_starts),
        causes=tuple(causes),
        busy_s={HOST: busy_host, GRID: busy_grid, DRAM: busy_dram, LINK: busy_link},
    )


def makespan_s(timeline: Timeline) -> float:
    return max(timeline.ends, default=0.0)


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
    steps = program(graph, times, cores, work, overlap, async_ccl)
    line = simulate(steps, cores)
    slots: dict[str, Slot] = {}
    for i, (kernel, k) in enumerate(zip(kg.kernels, steps, strict=True)):
        held = (GRID,) * bool(k.cores) + (LINK,) * k.link + (DRAM,) * k.dram
        slot = Slot(
            start_s=line.starts[i],
            end_s=line.ends[i],
            dispatch_start_s=line.dispatch_starts[i],
            resources=(HOST, *held) if k.time.dispatch_s else held,
            cores=k.cores,
            kernel=k.name,
            time=k.time,
        )
        for m in kernel.members:
            slots[m] = slot
    for n in graph:
        if n.name not in slots:
            slots[n.name] = Slot()  # a source: data, ready at 0
    path: list[str] = []
    if steps:
        at = max(range(len(steps)), key=line.ends.__getitem__)  # ties: program order
        seen: set[int] = set()
        while at >= 0 and at not in seen:
            seen.add(at)
            path.append(steps[at].name)
            at = line.causes[at]
    path.reverse()
    return slots, Schedule(
        makespan_s=makespan_s(line),
        critical_path=tuple(path),
        kernels=len(steps),
        busy_s=line.busy_s,
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
