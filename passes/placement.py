"""The ``place`` pass: where every tensor lives on the chip (its memory home), per strategy.

Homes (``irperf.homes``): ``dram_interleaved``, ``dram_sharded``, ``l1_interleaved``,
``l1_height_sharded``, ``l1_width_sharded``, ``l1_block_sharded``. Per node the record holds its
result's home and, one per operand, the home it reads that operand from. Strategies:

- ``dram``: every tensor in DRAM, interleaved: the simplest baseline, and what the ``bytes``
  pass already assumes (every operand read from DRAM, every result written there).
- ``l1-greedy``: keep every result in L1 while it fits, sharded as it is computed (one tile row
  width-sharded, taller tensors height-sharded) where every consumer computes in that sharding,
  interleaved otherwise; on overflow spill the live L1 tensor whose next use is farthest
  (tt-mlir's rule).
- ``tt-metal``: what tt-metal does for Llama 3.2 Vision: the vision encoder and prefill in DRAM,
  interleaved; in decode, matmul weights DRAM-sharded over the banks and activations
  width-sharded in L1 (within the same capacity walk; what does not fit goes to DRAM).
- ``time``: like ``l1-greedy``, but a result goes to L1 only when that saves time
  (``passes/placement_time.py``: op-time's per-op times, reshards costed), and on overflow the
  live tensor that saves the least time per byte goes, only if the result saves more.

The capacity walk, the L1 estimate every strategy is checked against, spills and reshards:
``passes/placement_walk.py``. Spills and reshards are real ops in the placed graph
(``irperf.ops.Spill``, ``Reshard``; ``passes/placement_moves.py``) with their own bytes, so the
pass is a transform when the walk needs any: count after placing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import ClassVar, Literal

import attrs
from attrs import field, frozen
from attrs.converters import optional

from irperf.dtypes import TILE
from irperf.errors import PassError
from irperf.graph import Graph, Node
from irperf.homes import Home
from irperf.ops import Source, Weight
from irperf.ops.taxonomy import ALIASES
from irperf.pass_manager import AnalysisPass, PassResult, one_of, register_pass
from irperf.roles import LINEAR_ROLES
from irperf.rules import RuleContext
from irperf.types import TensorType
from passes.bytes import LINK, WRITES, PlacedTraffic, literal_names, operand_reads
from passes.conventions import CONVENTIONS, Convention, counts
from passes.overrides import Overrides, load_overrides
from passes.placement_moves import materialize
from passes.placement_time import l1_gains
from passes.placement_walk import (
    DRAM,
    L1,
    READS_ANY_HOME,
    HomeRule,
    Placement,
    Spilled,
    Walk,
    buffers_of,
    tiled_bytes,
    walk,
)
from passes.precision import node_phase
from targets import Target
from targets.loader import load_target

__all__ = [
    "STRATEGIES",
    "Home",
    "PlacePass",
    "PlacedBytesPass",
    "Placement",
    "PlacementSummary",
    "Spilled",
    "buffers_of",
    "place_dram",
    "place_l1_greedy",
    "placed_traffic",
    "tiled",
    "tiled_bytes",
]

Strategy = Literal["dram", "tt-metal", "l1-greedy", "time"]
STRATEGIES: tuple[str, ...] = ("dram", "tt-metal", "l1-greedy", "time")
TILED = frozenset({"tt-metal", "l1-greedy", "time"})
"""Strategies that lay tensors out in 32x32 tiles, whose DRAM and NoC bytes count whole tiles."""


@frozen
class PlacementSummary:
    """The graph-level record of a placement."""

    strategy: str
    tiled: bool
    """Whether tensors are in TILE layout (``tt-metal``, ``l1-greedy``, ``time``: as the device
    computes; ``dram``: the bytes pass's exact counts, the baseline)."""
    capacity_bytes_per_core: int
    peak_l1_bytes_per_core: int
    peak_l1_op: str | None
    spills: tuple[Spilled, ...]
    reshards: int = 0
    capacities: tuple[int, int | None] = (0, None)
    """The L1 capacities per core under which the walk decides the same (``Walk``)."""


def place_dram(graph: Graph, target: Target) -> dict[str, Placement]:
    """Every tensor in DRAM, interleaved over the banks; L1 holds the circular buffers only."""
    out: dict[str, Placement] = {}
    for n in graph:
        cb = buffers_of(graph, n, target)
        out[n.name] = Placement(
            output_home=DRAM, input_homes=tuple(DRAM for _ in n.operands), l1_bytes_per_core=cb
        )
    return out


def natural_sharding(t: TensorType) -> Home:
    """The L1 sharding an op computes a result of type ``t`` in: one tile row (a decode step's
    activations) width-sharded over the cores, a taller tensor height-sharded (rows over the
    cores)."""
    rows = 1
    for d in t.shape[:-1]:
        rows *= d
    return Home.L1_WIDTH_SHARDED if rows <= TILE else Home.L1_HEIGHT_SHARDED


def greedy_rule(graph: Graph) -> HomeRule:
    """``l1-greedy``'s homes for ``graph``: sources in DRAM; every result in L1 while it fits,
    sharded as it is computed where every consumer computes in the same sharding (so reads it
    with no copy), interleaved otherwise. A view's consumers are its storage's. One pass over
    the graph, then a lookup per node."""
    natural: dict[str, Home] = {}
    root: dict[str, str] = {}
    mixed: set[str] = set()
    for n in graph:
        natural[n.name] = natural_sharding(n.type)
        alias = isinstance(n.op, ALIASES)
        root[n.name] = root[n.operands[0]] if alias else n.name
        if alias or isinstance(n.op, READS_ANY_HOME):
            continue
        for o in n.operands:
            if natural[root[o]] is not natural[n.name]:
                mixed.add(root[o])

    def choose(graph: Graph, node: Node) -> Home | None:
        if isinstance(node.op, Source):
            return DRAM
        return L1 if node.name in mixed else natural[node.name]

    return choose


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
        asked = overrides.for_node(node, node_phase(graph, node)).home
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
    graph: Graph, target: Target, rule: HomeRule | None = None
) -> dict[str, Placement]:
    """The walk's placements under ``rule`` (default ``l1-greedy``'s; the moves it needs:
    ``walk``)."""
    return dict(walk(graph, target, rule or greedy_rule(graph)).placements)


RULES: Mapping[str, Callable[[Graph], HomeRule]] = {
    "l1-greedy": greedy_rule,
    "tt-metal": lambda graph: tt_metal_homes,
    "dram": lambda graph: dram_homes,
    "time": greedy_rule,  # l1-greedy's homes, kept where the time they save says so
}
"""Per strategy, its home rule for a graph."""


@register_pass
@frozen(kw_only=True)
class PlacePass(AnalysisPass):
    """Memory homes of every tensor by a strategy (see the module docstring); a transform when
    the walk spills or reshards (the copies become ops), an analysis otherwise."""

    name: ClassVar[str] = "place"
    may_transform: ClassVar[bool] = True
    summary: ClassVar[str] = "memory home of every tensor (DRAM, L1, sharding) by a strategy"
    record_type: ClassVar[type] = Placement
    strategy: Strategy = field(default="dram", validator=one_of(*STRATEGIES))
    target: Target = field(factory=lambda: load_target("n300"), converter=load_target)
    overrides: Overrides | None = field(default=None, converter=optional(load_overrides))
    """A user's homes per role or node (``passes/overrides.py``), over the strategy's."""

    def walk(self, graph: Graph) -> Walk:
        rule = RULES[self.strategy](graph)
        if self.overrides is not None:
            rule = overridden(rule, self.overrides)
        elif self.strategy == "dram":
            return Walk(place_dram(graph, self.target), ())
        gains = None
        if self.strategy == "time":
            forced: frozenset[str] = frozenset()
            if self.overrides is not None:  # a user's L1 home is tried whatever it saves
                forced = frozenset(
                    n.name
                    for n in graph
                    if (h := self.overrides.for_node(n, node_phase(graph, n)).home) is not None
                    and not Home(h).in_dram
                )
            gains = attrs.evolve(l1_gains(graph, self.target, rule), forced=forced)
        return walk(graph, self.target, rule, gains)

    def analyze(self, graph: Graph) -> dict[str, Placement]:
        return dict(self.walk(graph).placements)

    def run(self, graph: Graph) -> PassResult:
        done = self.walk(graph)
        placed, records = graph, dict(done.placements)
        if done.moves:
            placed, records = materialize(graph, done)
        placed.set_records(Placement, records)
        placed.set_graph_record(self.summarize_walk(graph, records, done))
        return PassResult(placed, modified=bool(done.moves))

    def summarize_walk(
        self, graph: Graph, records: Mapping[str, Placement], done: Walk
    ) -> PlacementSummary:
        peak, where = 0, None
        for name, p in records.items():
            if p.l1_bytes_per_core > peak:
                peak, where = p.l1_bytes_per_core, name
        spills = tuple(
            Spilled(m.before, m.tensor, tiled_bytes(graph.node(m.tensor).type))
            for m in done.moves
            if m.kind == "spill"
        )
        return PlacementSummary(
            strategy=self.strategy,
            tiled=self.strategy in TILED,
            capacity_bytes_per_core=self.target.l1_usable_bytes_per_core,
            peak_l1_bytes_per_core=peak,
            peak_l1_op=where,
            spills=spills,
            reshards=sum(m.kind == "reshard" for m in done.moves),
            capacities=done.capacities,
        )


def placed_traffic(
    graph: Graph, placement: Mapping[str, Placement], convention: Convention, tiled: bool = False
) -> dict[str, PlacedTraffic]:
    """Each node's reads and writes (the ``bytes`` pass's tables) charged to DRAM where the
    tensor's home is DRAM and to the NoC where it is L1 (a spill op reads its tensor from L1 and
    writes it to DRAM).
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
            bytes_written=written,
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
        return graph_traffic(graph, self.convention)


def graph_traffic(graph: Graph, convention: Convention) -> dict[str, PlacedTraffic]:
    """``placed_traffic`` under the graph's own placement, computed once per graph state: the
    ``full`` table, and another convention's from it (an op it does not count moves no DRAM or
    NoC bytes, only its link bytes)."""
    homes = graph.records(Placement)
    summary = graph.graph_record(PlacementSummary) if tiled(graph) else None
    full = graph.memo(
        ("placed-bytes", "full"),
        lambda: placed_traffic(graph, homes, "full", tiled(graph)),
        (homes, summary),
    )
    if convention == "full":
        return full

    def part() -> dict[str, PlacedTraffic]:
        out = {}
        for node in graph:
            t = full[node.name]
            counted = counts(convention, node.op)
            out[node.name] = t if counted else PlacedTraffic(link_bytes=t.link_bytes)
        return out

    return graph.memo(("placed-bytes", convention), part, (full,))


def tiled(graph: Graph) -> bool:
    """Whether the graph's placement lays tensors out in 32x32 tiles (its bytes count tiles)."""
    return graph.has_graph_record(PlacementSummary) and graph.graph_record(PlacementSummary).tiled
