"""The capacity walk every L1 strategy shares: homes within L1, spills and reshards.

Walk the ops in topological order. Each result asks its strategy for a home (``HomeRule``); an
L1 home is kept while it fits. L1 per core at each step (``l1_usable_bytes_per_core`` bounds
it, at every step and for every strategy):

- a tensor in L1 holds ``ceil(tiles / cores)`` of its 32x32 tiles on each core (the busiest
  core's share; tiles in the tensor's own format, scalar formats padded to whole tiles);
- an op's circular buffers hold, double-buffered, one tile of each operand and one of its
  result: ``2 x (sum of operand tile bytes + result tile bytes)`` per core;
- the op's L1 use at its step is the live L1 tensors' shares (its operands and result
  included), the reshard copies it reads, and its circular buffers.

On overflow a live tensor goes to DRAM through a **spill** op (``irperf.ops.Spill``): under
``l1-greedy`` and ``tt-metal`` the one whose next use is farthest (tt-mlir's rule), this op's
operands last; under ``time`` the one whose L1 home saves the least time per byte and per step
it stays (its later savings and the spill's own time, over its bytes times the steps to its last
use: a tensor held across the whole model costs every tensor after it its room), and only when
the result that needs the room saves more per byte-step (else the result goes to DRAM).
A result that cannot fit even with every live tensor spilled goes to DRAM.

A **reshard** op (``irperf.ops.Reshard``) copies an operand into the L1 layout its consumer
must read: a DRAM-sharded matmul reads its activation width-sharded in L1, and an op computing
into an L1 sharding reads operands sharded otherwise in its own sharding. Interleaved operands
(DRAM or L1) are read where they are; views, collectives and cache appends read any home. A
reshard copy lives for its consumer's step only; when L1 cannot hold it even after every spill,
the consumer reads the operand where it is.

Weights, inputs, KV caches and the graph's results (read after it) live in DRAM; a view or an
in-place append lives where its storage does. Linear in graph size but for the victim search,
which scans the live L1 tensors (a handful at any step).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Literal

from attrs import frozen

from irperf.dtypes import TILE, tile_count
from irperf.errors import PassError
from irperf.graph import Graph, Node
from irperf.homes import Home
from irperf.ops import Collective, MatMul, MemoryMove, Source
from irperf.ops.taxonomy import ALIASES
from irperf.types import TensorType
from targets import Target

if TYPE_CHECKING:
    from passes.placement_time import Gains

DRAM, L1 = Home.DRAM_INTERLEAVED, Home.L1_INTERLEAVED


@frozen(kw_only=True)
class Placement:
    """Where a node's result lives, where it reads each operand from, and its L1 use per core at
    its step (live L1 tensors, the reshard copies it reads, its circular buffers)."""

    output_home: Home
    input_homes: tuple[Home, ...]
    l1_bytes_per_core: int = 0
    resident_bytes_per_core: int = 0
    """L1 per core held at this step by live tensors that are neither its operands nor its
    result: what a fused kernel here cannot use."""
    spilled: tuple[str, ...] = ()
    """The L1 tensors (by node) spilled to DRAM just before this step to make room."""


@frozen
class Spilled:
    """Before node ``at``, the L1 tensor of node ``tensor`` (``nbytes`` per chip) goes to DRAM."""

    at: str
    tensor: str
    nbytes: int


@frozen
class Move:
    """A copy the walk needs before node ``before``: a spill of storage ``tensor`` to DRAM, or a
    reshard of operand ``operand`` (node ``tensor``) into ``home``."""

    kind: Literal["spill", "reshard"]
    tensor: str
    home: Home
    before: str
    input_home: Home
    l1_bytes_per_core: int
    operand: int = -1


@frozen
class Walk:
    placements: Mapping[str, Placement]
    moves: tuple[Move, ...]
    capacities: tuple[int, int | None] = (0, None)
    """L1 capacities per core from the first to before the second (None: any larger) under
    which the walk, with the same rule and gains, decides exactly the same: every comparison
    with the capacity it made comes out the same way (a sweep over L1 sizes reuses it,
    ``irperf/cli/sweep_fast.py``)."""


HomeRule = Callable[[Graph, Node], "Home | None"]
"""A strategy's choice per node: for a source, its home; for a result, the home it would like
(an L1 home, kept while it fits; a DRAM home; None: DRAM, interleaved)."""


def tiled_bytes(t: TensorType) -> int:
    """``t`` in TILE layout: whole 32x32 tiles of its format."""
    return tile_count(t.shape) * t.dtype.tile_bytes


def l1_share(t: TensorType, cores: int) -> int:
    """Bytes of ``t`` the busiest of ``cores`` holds: its tiles divided over the cores."""
    return -(-tile_count(t.shape) // cores) * t.dtype.tile_bytes


@frozen
class Shard:
    """How a sharded tensor lies: ``grid`` [rows, cols] of cores (DRAM-sharded: [1, banks]) and
    each shard's ``shape`` [height, width] in elements, whole 32x32 tiles."""

    grid: tuple[int, int]
    shape: tuple[int, int]


def shard_of(t: TensorType, home: Home, grid: tuple[int, int], banks: int) -> Shard | None:
    """``t``'s shards in ``home`` on a core ``grid`` (rows are every dimension but the last,
    each matrix padded to whole tiles): height-sharded, row tiles over the cores; width-sharded,
    column tiles over the cores; block-sharded, rows over the grid's rows and columns over its
    columns; DRAM-sharded, columns over the ``banks``. None for interleaved homes."""
    shape = t.shape or (1,)
    cols = -(-shape[-1] // TILE)
    rows = tile_count(shape) // cols
    cores = grid[0] * grid[1]
    if home is Home.L1_HEIGHT_SHARDED:
        used = min(cores, rows)
        return Shard(
            (-(-used // grid[1]), min(grid[1], used)), (-(-rows // used) * TILE, cols * TILE)
        )
    if home is Home.L1_WIDTH_SHARDED:
        used = min(cores, cols)
        return Shard(
            (-(-used // grid[1]), min(grid[1], used)), (rows * TILE, -(-cols // used) * TILE)
        )
    if home is Home.L1_BLOCK_SHARDED:
        gy, gx = min(grid[0], rows), min(grid[1], cols)
        return Shard((gy, gx), (-(-rows // gy) * TILE, -(-cols // gx) * TILE))
    if home is Home.DRAM_SHARDED:
        used = min(banks, cols)
        return Shard((1, used), (rows * TILE, -(-cols // used) * TILE))
    return None


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


READS_ANY_HOME = (Collective, MemoryMove, *ALIASES)
"""Ops that read an operand in whatever home it has: views and appends move nothing, a
collective's and a copy's data movers read any layout."""


def dram_sharded_matmul(node: Node, homes: Sequence[Home]) -> bool:
    """A matmul whose weight is DRAM-sharded: TT-NN's DRAM-sharded program (decode)."""
    return isinstance(node.op, MatMul) and len(homes) > 1 and homes[1] is Home.DRAM_SHARDED


def reshards_needed(node: Node, homes: Sequence[Home], out: Home) -> dict[int, Home]:
    """Operand index -> the home it must be copied into for ``node`` to read it (the module
    docstring's rule); one copy per distinct operand."""
    if isinstance(node.op, READS_ANY_HOME):
        return {}
    need: dict[int, Home] = {}
    seen: set[str] = set()
    for k, (name, home) in enumerate(zip(node.operands, homes, strict=True)):
        if name in seen:
            continue
        seen.add(name)
        if k == 0 and dram_sharded_matmul(node, homes):
            if home is not Home.L1_WIDTH_SHARDED:
                need[k] = Home.L1_WIDTH_SHARDED
        elif home.sharded_in_l1 and out.sharded_in_l1 and home is not out:
            need[k] = out
    return need


def walk(
    graph: Graph,
    target: Target,
    rule: HomeRule,
    gains: Gains | None = None,
) -> Walk:
    """Homes by ``rule`` within L1 capacity (the module docstring's walk, spills, reshards).
    ``gains``: the time each result saves in L1 (the ``time`` strategy's victims and
    admission); None: tt-mlir's farthest-next-use rule, every result admitted."""
    return _Walker(graph, target, rule, gains).run()


class _Walker:
    def __init__(self, graph: Graph, target: Target, rule: HomeRule, value: Gains | None) -> None:
        self.graph, self.rule, self.value = graph, rule, value
        self.nodes = nodes = list(graph)
        self.cores, self.capacity = target.cores, target.l1_usable_bytes_per_core
        self.target = target
        self.root: dict[str, str] = {}
        self.uses: dict[str, list[int]] = {}  # storage -> the steps that read it, in order
        for i, n in enumerate(nodes):
            self.root[n.name] = self.root[n.operands[0]] if isinstance(n.op, ALIASES) else n.name
            for o in n.operands:
                self.uses.setdefault(self.root[o], []).append(i)
        read = {o for n in nodes for o in n.operands}
        pinned = {self.root[t] for t in graph.kv_cache.names}  # outlive the step: DRAM
        pinned |= {self.root[n.name] for n in nodes if n.name not in read}  # read after it
        self.pinned = pinned
        self.live: dict[str, int] = {}  # storage in L1 -> bytes per core
        self.held = 0  # sum of live
        self.cursor: dict[str, int] = {}  # storage -> how many of its uses have passed
        self.home: dict[str, Home] = {}
        self.out: dict[str, Placement] = {}
        self.moves: list[Move] = []
        self.lo: int = 0  # the capacities deciding as this one does: [lo, hi)
        self.hi: int | None = None

    def fits(self, need: int) -> bool:
        """``need <= capacity``, remembering what that says of the capacity."""
        if need <= self.capacity:
            self.lo = max(self.lo, need)
            return True
        self.hi = need if self.hi is None else min(self.hi, need)
        return False

    def next_use(self, s: str, step: int) -> int:
        steps = self.uses.get(s, [])
        k = self.cursor.get(s, 0)
        while k < len(steps) and steps[k] < step:
            k += 1
        self.cursor[s] = k
        return steps[k] if k < len(steps) else len(self.nodes)

    def lost(self, s: str, step: int) -> float:
        """``time``: what spilling live ``s`` before ``step`` costs: the savings of its later
        steps, and the spill itself."""
        assert self.value is not None
        return self.value.after(s, step) + self.value.spill_s.get(s, 0.0)

    def last_use(self, s: str) -> int:
        steps = self.uses.get(s)
        return steps[-1] if steps else len(self.nodes)

    def density(self, s: str, step: int, saving: float, nbytes: int) -> float:
        """``time``: seconds saved per byte and per step held, from ``step`` on."""
        return saving / (max(nbytes, 1) * (self.last_use(s) - step + 1))

    def ranked(self, step: int, reading: set[str]) -> list[str]:
        """Live tensors in eviction order: under tt-mlir's rule the farthest next use first,
        under ``time`` the least time saved per byte first; this op's operands last."""
        if self.value is None:
            key = {s: (float(self.next_use(s, step)), s) for s in self.live}
        else:
            key = {
                s: (-self.density(s, step, self.lost(s, step), b), s) for s, b in self.live.items()
            }
        order = sorted(self.live, key=key.__getitem__, reverse=True)
        return [s for s in order if s not in reading] + [s for s in order if s in reading]

    def victims(self, room: int, step: int, reading: set[str]) -> list[str]:
        """The tensors to spill, in order, for ``room`` more bytes beside the live set."""
        if self.fits(self.held + room):
            return []
        chosen: list[str] = []
        freed = 0
        for s in self.ranked(step, reading):
            if self.fits(self.held - freed + room):
                break
            chosen.append(s)
            freed += self.live[s]
        return chosen

    def copies(
        self, n: Node, out_home: Home, types: Sequence[TensorType]
    ) -> tuple[dict[int, Home], int]:
        """The reshards ``n`` needs with its result in ``out_home``, and their L1 per core."""
        if isinstance(n.op, READS_ANY_HOME):
            return {}, 0
        homes = [self.home[self.root[o]] for o in n.operands]
        need = reshards_needed(n, homes, out_home)
        return need, sum(l1_share(types[k], self.cores) for k in need) if need else 0

    def run(self) -> Walk:
        for i, n in enumerate(self.nodes):
            if isinstance(n.op, Source):
                self.home[n.name] = self.rule(self.graph, n) or DRAM
                self.out[n.name] = Placement(output_home=self.home[n.name], input_homes=())
            else:
                self.step(i, n)
        return Walk(self.out, tuple(self.moves), (self.lo, self.hi))

    def step(self, i: int, n: Node) -> None:
        root, home, live = self.root, self.home, self.live
        storage = root[n.name]
        types = self.graph.operand_types(n)
        cb = circular_buffers(types, n.type)
        if not self.fits(cb):
            buffers_of(self.graph, n, self.target)  # the error naming the node
        own = storage == n.name
        wanted = self.rule(self.graph, n) if own and storage not in self.pinned else None
        fallback = DRAM
        if wanted is not None and wanted.in_dram:  # a DRAM home asked for: no L1 to try
            fallback, wanted = wanted, None
        worth = self.value.total(n.name) if self.value is not None else 0.0
        forced = self.value is not None and n.name in self.value.forced
        if wanted is not None and self.value is not None and worth <= 0 and not forced:
            wanted = None  # time: an L1 home that saves nothing is not worth its room
        want = l1_share(n.type, self.cores) if wanted is not None else 0
        if not self.fits(cb + want):  # could never fit: to DRAM, without spilling anything for it
            wanted, want = None, 0
        reading = {root[o] for o in n.operands}
        need, extra = self.copies(n, wanted or fallback, types)
        victims = self.victims(cb + want + extra, i, reading)
        costly = self.value is not None and want > 0 and not forced
        mine = self.density(n.name, i, worth, want) if costly else 0.0
        if costly and any(self.density(v, i, self.lost(v, i), live[v]) >= mine for v in victims):
            # time: the room costs more than the result saves; it goes to DRAM instead
            wanted, want = None, 0
            need, extra = self.copies(n, fallback, types)
            victims = self.victims(cb + extra, i, reading)
        for victim in victims:
            self.moves.append(Move("spill", victim, DRAM, n.name, home[victim], self.held))
            home[victim] = DRAM
            self.held -= live.pop(victim)
        keep = wanted is not None and self.fits(self.held + cb + want + extra)
        if not keep:
            wanted, want = None, 0
        out_home = (wanted or fallback) if own else home[storage]
        need, extra = self.copies(n, out_home, types)  # spilled operands, a DRAM result: fewer
        if not self.fits(self.held + want + cb + extra):
            need, extra = {}, 0  # no room for the copies: read the operands where they are
        home[n.name] = out_home
        if keep:
            live[n.name] = want
            self.held += want
        resident = sum(b for s, b in live.items() if s not in reading and s != storage)
        copied = 0
        for k, to in need.items():
            o = n.operands[k]
            held = self.held + copied
            self.moves.append(Move("reshard", o, to, n.name, home[root[o]], held, k))
            copied += l1_share(types[k], self.cores)
        copy_of = {n.operands[k]: to for k, to in need.items()}  # a repeated operand: one copy
        self.out[n.name] = Placement(
            output_home=out_home,
            input_homes=tuple(copy_of.get(o, home[root[o]]) for o in n.operands),
            l1_bytes_per_core=self.held + extra + cb,
            resident_bytes_per_core=resident,
            spilled=tuple(victims),
        )
        for s in reading | {storage}:  # free what no later step reads
            if s in live and self.next_use(s, i + 1) == len(self.nodes):
                self.held -= live.pop(s)
