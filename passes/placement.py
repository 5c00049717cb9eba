"""The ``place`` pass: where every tensor lives on the chip (its memory home), per strategy.

Homes, as TT-NN names them (``wormhole.md``, placement vocabulary): ``dram_interleaved`` (pages
round-robin over the 12 DRAM banks), ``dram_sharded`` (split over the banks), ``l1_interleaved``
(over every core's L1), ``l1_height_sharded``, ``l1_width_sharded`` and ``l1_block_sharded``
(split over a core grid by rows, columns or both).

Per node the record holds its result's home and, one per operand, the home it reads that operand
from. Strategies:

- ``dram``: every tensor in DRAM, interleaved: the simplest baseline, and what the ``bytes``
  pass already assumes (every operand read from DRAM, every result written there).
- ``l1-greedy``: walk the ops in topological order; keep an op's result in L1 (interleaved over
  the chip's cores) when it fits; on overflow spill the live L1 tensor whose next use is farthest
  (tt-mlir's rule) to DRAM, and if the result still does not fit, write it to DRAM. Weights,
  inputs, KV caches and the graph's results (read after it) live in DRAM; a view or an in-place
  append lives where its storage does.
- ``tt-metal``: what tt-metal does for Llama 3.2 Vision: the vision encoder and prefill in DRAM,
  interleaved; in decode, matmul weights DRAM-sharded over the banks and activations
  width-sharded in L1 (within the same capacity walk; what does not fit goes to DRAM).

L1 per core, the estimate every strategy is checked against (``l1_usable_bytes_per_core``):

- a tensor in L1 holds ``ceil(tiles / cores)`` of its 32x32 tiles on each core (the busiest
  core's share; tiles in the tensor's own format, scalar formats padded to whole tiles);
- an op's circular buffers hold, double-buffered, one tile of each operand and one of its
  result: ``2 x (sum of operand tile bytes + result tile bytes)`` per core;
- the op's L1 use at its step is the live L1 tensors' shares (its operands and result included)
  plus its circular buffers. No op ever exceeds the capacity: when even its circular buffers and
  the tensors it must hold do not fit, every live tensor is spilled first.

Spills are recorded where they happen (``PlacementSummary.spills``) and their DRAM write is
charged to the op at which they happen. The ``time`` strategy (homes chosen by the time they
save) comes with the time model; a strategy this pass does not have is refused by name.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from typing import ClassVar, Literal

from attrs import field, frozen
from attrs.converters import optional

from irperf.dtypes import tile_count
from irperf.errors import PassError
from irperf.graph import Graph, Node
from irperf.ops import Source, Weight
from irperf.ops.taxonomy import ALIASES
from irperf.pass_manager import AnalysisPass, one_of, register_pass
from irperf.roles import LINEAR_ROLES
from irperf.rules import RuleContext
from irperf.types import TensorType
from passes.bytes import LINK, WRITES, PlacedTraffic, literal_names, operand_reads
from passes.conventions import CONVENTIONS, Convention, counts
from passes.overrides import Overrides, load_overrides
from passes.precision import node_phase
from targets import Target
from targets.loader import load_target


class Home(enum.Enum):
    DRAM_INTERLEAVED = "dram_interleaved"
    DRAM_SHARDED = "dram_sharded"
    L1_INTERLEAVED = "l1_interleaved"
    L1_HEIGHT_SHARDED = "l1_height_sharded"
    L1_WIDTH_SHARDED = "l1_width_sharded"
    L1_BLOCK_SHARDED = "l1_block_sharded"

    @property
    def in_dram(self) -> bool:
        return self.value.startswith("dram")


@frozen(kw_only=True)
class Placement:
    """Where a node's result lives, where it reads each operand from, its L1 use per core at its
    step (live L1 tensors and its circular buffers), and the bytes per chip it spills."""

    output_home: Home
    input_homes: tuple[Home, ...]
    l1_bytes_per_core: int = 0
    spilled: tuple[str, ...] = ()
    """The L1 tensors (by node) this step spills to DRAM to make room."""
    spilled_bytes: int = 0


@frozen
class Spill:
    """At node ``at``, the L1 tensor of node ``tensor`` (``nbytes`` per chip) goes to DRAM."""

    at: str
    tensor: str
    nbytes: int


@frozen
class PlacementSummary:
    """The graph-level record of a placement."""

    strategy: str
    tiled: bool
    """Whether tensors are in TILE layout (``tt-metal``, ``l1-greedy``: as the device computes;
    ``dram``: the bytes pass's exact counts, the baseline)."""
    capacity_bytes_per_core: int
    peak_l1_bytes_per_core: int
    peak_l1_op: str | None
    spills: tuple[Spill, ...]


Strategy = Literal["dram", "tt-metal", "l1-greedy"]
STRATEGIES: tuple[str, ...] = ("dram", "tt-metal", "l1-greedy")
TILED = frozenset({"tt-metal", "l1-greedy"})
"""Strategies that lay tensors out in 32x32 tiles, whose DRAM and NoC bytes count whole tiles."""
DRAM, L1 = Home.DRAM_INTERLEAVED, Home.L1_INTERLEAVED


def tiled_bytes(t: TensorType) -> int:
    """``t`` in TILE layout: whole 32x32 tiles of its format."""
    return tile_count(t.shape) * t.dtype.tile_bytes


def l1_share(t: TensorType, cores: int) -> int:
    """Bytes of ``t`` the busiest of ``cores`` holds: its tiles divided over the cores."""
    return -(-tile_count(t.shape) // cores) * t.dtype.tile_bytes


def circular_buffers(ins: Sequence[TensorType], out: TensorType) -> int:
    """Per core: one tile of each operand and of the result, double-buffered."""
    return 2 * (sum(t.dtype.tile_bytes for t in ins) + out.dtype.tile_bytes)


def buffers_of(graph: Graph, node: Node, target: Target) -> int:
    """The node's circular buffers per core, or a PassError when L1 cannot hold even those."""
    if isinstance(node.op, Source):
        return 0
    cb = circular_buffers(graph.operand_types(node), node.type)
    if cb > target.l1_usable_bytes_per_core:
        raise PassError(
            f"pass 'place': {target.label} has {target.l1_usable_bytes_per_core:,} B of L1 per "
            f"core, less than the {cb:,} B of circular buffers of '{node.name}'"
        )
    return cb


def place_dram(graph: Graph, target: Target) -> dict[str, Placement]:
    """Every tensor in DRAM, interleaved over the banks; L1 holds the circular buffers only."""
    out: dict[str, Placement] = {}
    for n in graph:
        cb = buffers_of(graph, n, target)
        out[n.name] = Placement(
            output_home=DRAM, input_homes=tuple(DRAM for _ in n.operands), l1_bytes_per_core=cb
        )
    return out


HomeRule = Callable[[Graph, Node], "Home | None"]
"""A strategy's choice per node: for a source, its home; for a result, the L1 home it would
like (None: DRAM, interleaved)."""


def greedy_homes(graph: Graph, node: Node) -> Home | None:
    """``l1-greedy``: sources in DRAM, every result in L1 (interleaved) while it fits."""
    return DRAM if isinstance(node.op, Source) else L1


def tt_metal_homes(graph: Graph, node: Node) -> Home | None:
    """``tt-metal``, as it runs Llama 3.2 Vision (tt-metal-llama-vision.md): the vision encoder
    and prefill in DRAM, interleaved (prefill's 2D matmuls read activations from DRAM); in
    decode, matmul weights DRAM-sharded over the banks and activations width-sharded in L1."""
    decode = node_phase(graph, node) == "decode"
    if isinstance(node.op, Source):
        sharded = decode and isinstance(node.op, Weight) and node.role in LINEAR_ROLES
        return Home.DRAM_SHARDED if sharded else DRAM
    return Home.L1_WIDTH_SHARDED if decode else None


def dram_homes(graph: Graph, node: Node) -> Home | None:
    """``dram``'s rule, for the walk when overrides are given: everything in DRAM."""
    return DRAM


def overridden(rule: HomeRule, overrides: Overrides) -> HomeRule:
    """``rule`` with a user's homes where the overrides name one for the node (or its role)."""

    def choose(graph: Graph, node: Node) -> Home | None:
        asked = overrides.for_node(node).home
        if asked is None:
            return rule(graph, node)
        home = Home(asked)
        if isinstance(node.op, Source) and not home.in_dram:
            raise PassError(
                f"pass 'place': {overrides.origin} gives '{node.name}' home {home.value}; "
                f"weights and inputs live in DRAM (dram_interleaved or dram_sharded)"
            )
        return home

    return choose


def place_l1_greedy(
    graph: Graph, target: Target, rule: HomeRule = greedy_homes
) -> dict[str, Placement]:
    """Homes by ``rule`` within L1 capacity (the module docstring's walk and spill rule).
    Linear in graph size but for the farthest-next-use search, which scans the live L1 tensors
    (a handful at any step)."""
    nodes = list(graph)
    index = {n.name: i for i, n in enumerate(nodes)}
    cores, capacity = target.cores, target.l1_usable_bytes_per_core
    root: dict[str, str] = {}
    uses: dict[str, list[int]] = {}  # storage -> the steps that read it, in order
    for i, n in enumerate(nodes):
        root[n.name] = root[n.operands[0]] if isinstance(n.op, ALIASES) else n.name
        for o in n.operands:
            uses.setdefault(root[o], []).append(i)
    read = {o for n in nodes for o in n.operands}
    pinned = {root[t] for t in graph.kv_cache.names}  # outlive the step: DRAM
    pinned |= {root[n.name] for n in nodes if n.name not in read}  # read after the graph
    live: dict[str, int] = {}  # storage in L1 -> bytes per core
    held = 0  # sum of live
    cursor: dict[str, int] = {}  # storage -> how many of its uses have passed
    home: dict[str, Home] = {}
    out: dict[str, Placement] = {}

    def next_use(s: str, step: int) -> int:
        steps = uses.get(s, [])
        k = cursor.get(s, 0)
        while k < len(steps) and steps[k] < step:
            k += 1
        cursor[s] = k
        return steps[k] if k < len(steps) else len(nodes)

    for i, n in enumerate(nodes):
        if isinstance(n.op, Source):
            home[n.name] = rule(graph, n) or DRAM
            out[n.name] = Placement(output_home=home[n.name], input_homes=())
            continue
        storage = root[n.name]
        cb = buffers_of(graph, n, target)
        own = storage == n.name
        wanted = rule(graph, n) if own and storage not in pinned else None
        fallback = DRAM
        if wanted is not None and wanted.in_dram:  # a DRAM home asked for: no L1 to try
            fallback, wanted = wanted, None
        want = l1_share(n.type, cores) if wanted is not None else 0
        if cb + want > capacity:  # could never fit: to DRAM, without spilling anything for it
            wanted, want = None, 0
        reading = {root[o] for o in n.operands}
        spilled: list[str] = []
        while held + cb + want > capacity and live:
            # tt-mlir's rule: the tensor used farthest away goes; this op's operands last
            candidates = [s for s in live if s not in reading] or list(live)
            victim = max(candidates, key=lambda s: (next_use(s, i), s))
            spilled.append(victim)
            home[victim] = DRAM
            held -= live.pop(victim)
        if own:
            keep = wanted is not None and held + cb + want <= capacity
            home[n.name] = wanted if keep and wanted is not None else fallback
            if keep:
                live[n.name] = want
                held += want
        else:
            home[n.name] = home[storage]
        out[n.name] = Placement(
            output_home=home[n.name],
            input_homes=tuple(home[root[o]] for o in n.operands),
            l1_bytes_per_core=held + cb,
            spilled=tuple(spilled),
            spilled_bytes=sum(tiled_bytes(nodes[index[v]].type) for v in spilled),
        )
        for s in reading | {storage}:  # free what no later step reads
            if s in live and next_use(s, i + 1) == len(nodes):
                held -= live.pop(s)
    return out


@register_pass
@frozen(kw_only=True)
class PlacePass(AnalysisPass):
    """Memory homes of every tensor by a strategy (``dram`` today; see the module docstring)."""

    name: ClassVar[str] = "place"
    summary: ClassVar[str] = "memory home of every tensor (DRAM, L1, sharding) by a strategy"
    record_type: ClassVar[type] = Placement
    strategy: Strategy = field(default="dram", validator=one_of(*STRATEGIES))
    target: Target = field(factory=lambda: load_target("n300"), converter=load_target)
    overrides: Overrides | None = field(default=None, converter=optional(load_overrides))
    """A user's homes per role or node (``passes/overrides.py``), over the strategy's."""

    def analyze(self, graph: Graph) -> dict[str, Placement]:
        rules = {"l1-greedy": greedy_homes, "tt-metal": tt_metal_homes, "dram": dram_homes}
        rule = rules[self.strategy]
        if self.overrides is not None:
            return place_l1_greedy(graph, self.target, overridden(rule, self.overrides))
        if self.strategy == "dram":
            return place_dram(graph, self.target)
        return place_l1_greedy(graph, self.target, rule)

    def summarize(self, graph: Graph, records: Mapping[str, Placement]) -> PlacementSummary:
        peak, where = 0, None
        for name, p in records.items():
            if p.l1_bytes_per_core > peak:
                peak, where = p.l1_bytes_per_core, name
        spills = tuple(
            Spill(name, victim, tiled_bytes(graph.node(victim).type))
            for name, p in records.items()
            for victim in p.spilled
        )
        return PlacementSummary(
            strategy=self.strategy,
            tiled=self.strategy in TILED,
            capacity_bytes_per_core=self.target.l1_usable_bytes_per_core,
            peak_l1_bytes_per_core=peak,
            peak_l1_op=where,
            spills=spills,
        )


def placed_traffic(
    graph: Graph, placement: Mapping[str, Placement], convention: Convention, tiled: bool = False
) -> dict[str, PlacedTraffic]:
    """Each node's reads and writes (the ``bytes`` pass's tables) charged to DRAM where the
    tensor's home is DRAM and to the NoC where it is L1; a spill writes its tensor to DRAM.
    ``tiled``: tensors in TILE layout count whole 32x32 tiles (``RuleContext.nbytes``)."""
    literals = literal_names(graph)
    options = {"tiled": tiled}
    out: dict[str, PlacedTraffic] = {}
    for node in graph:
        p = placement[node.name]
        ctx = RuleContext.of(graph, node, options=options)
        link = LINK.lookup(node)(ctx)
        dram = noc = written = 0
        if counts(convention, node.op):
            for home, b in zip(p.input_homes, operand_reads(graph, ctx, literals), strict=True):
                if home.in_dram:
                    dram += b
                else:
                    noc += b
            w = WRITES.lookup(node)(ctx)
            if p.output_home.in_dram:
                written = w
            else:
                noc += w
        out[node.name] = PlacedTraffic(
            bytes_read=dram,
            bytes_written=written + p.spilled_bytes,
            link_bytes=link,
            noc_bytes=noc,
        )
    return out


@register_pass
@frozen(kw_only=True)
class PlacedBytesPass(AnalysisPass):
    """``PlacedTraffic`` per node: DRAM bytes for DRAM homes, NoC bytes for L1 ones."""

    name: ClassVar[str] = "placed-bytes"
    summary: ClassVar[str] = "DRAM and NoC bytes per node under the placement's memory homes"
    record_type: ClassVar[type] = PlacedTraffic
    requires: ClassVar[tuple[type, ...]] = (Placement,)
    convention: Convention = field(default="matmul-only", validator=one_of(*CONVENTIONS))

    def analyze(self, graph: Graph) -> dict[str, PlacedTraffic]:
        tiled = (
            graph.has_graph_record(PlacementSummary) and graph.graph_record(PlacementSummary).tiled
        )
        return placed_traffic(graph, graph.records(Placement), self.convention, tiled)
