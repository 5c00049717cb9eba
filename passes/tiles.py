"""The ``tiles`` pass: each matmul-like op's work in 32x32 tiles on a chip's core grid.

Per node with contractions (``irperf.contraction``): the padded M, K and N of its largest
product, its padded FLOPs (every product padded; the ``flops`` record keeps the logical count,
so the seed's and HF's numbers never move), the core grid it runs on, the output tiles of the
slowest core and the imbalance (the slowest core's tiles over the mean). Grids:

- a single product (a linear layer, a convolution): 2D multicast, M over the grid's rows and N
  over its columns, each no larger than the work (``min(rows, Mt) x min(cols, Nt)``); the slowest
  core holds ``ceil(Mt / grid_y) x ceil(Nt / grid_x)`` output tiles;
- batched products (attention's, per batch and head): the ``batch x Mt`` row blocks spread over
  the grid's cores, each block its whole N; the slowest core holds ``ceil(batch x Mt / cores)``
  blocks of ``Nt`` tiles.

- a DRAM-sharded matmul (its weight's home ``dram_sharded``, tt-metal's decode program, once
  ``place`` ran): the output is width-sharded over ``c`` cores, the most of the grid's that
  divide Nt (a shard is whole tiles, as TT-NN requires), each core computing ``Mt x Nt / c``
  output tiles: balanced by construction; the grid is those cores in rows of the grid's width.

The grid is the target's compute grid (Wormhole: 8x8) unless the work is smaller, or what a
placement policy gives the op's node, role or kind, in its phase (``passes/overrides.py``).

``rate_divisor`` is how many times slower than its peak the op's matrix engine runs because of
its live rows (Wormhole: fewer than 8 rows of input, a decode matmul at batch 1, run at 1/8 of
the rate; ``Target.matmul_rate_divisor``): the rows of its largest product's M, per batch. It is
recorded here for the time model; the roofline keeps the peak, as the seed does.
"""

from __future__ import annotations

from typing import ClassVar

from attrs import field, frozen
from attrs.converters import optional

from irperf.contraction import Contraction
from irperf.errors import PassError
from irperf.graph import Graph
from irperf.pass_manager import AnalysisPass, register_pass
from passes.overrides import Overrides, load_overrides
from passes.placement_walk import Placement, dram_sharded_matmul
from passes.precision import node_phase
from targets import Target
from targets.loader import load_target


@frozen(kw_only=True)
class TileWork:
    """A node's tiled work on one chip (zeros and None for nodes with no contraction)."""

    padded_flops: int = 0
    padded_mkn: tuple[int, int, int] | None = None
    grid: tuple[int, int] | None = None
    per_core_tiles: int = 0
    imbalance: float = 1.0
    program: str | None = None
    """``2d_multicast``, ``batched`` or ``dram_sharded`` (the module docstring's forms)."""
    rate_divisor: int = 1
    live_rows: int = 0
    cores: int = 1
    """The cores the op runs on (the grid's, or fewer: a DRAM-sharded matmul's divisor of Nt)."""
    """The logical M of the largest product (per batch): the rows the matrix engine sees."""

    def __add__(self, other: TileWork) -> TileWork:
        """Sums the padded FLOPs (the only quantity that adds over nodes)."""
        return TileWork(padded_flops=self.padded_flops + other.padded_flops)

    @classmethod
    def zero(cls) -> TileWork:
        return cls()


NO_WORK = TileWork()


def on_grid(c: Contraction, grid: tuple[int, int]) -> tuple[tuple[int, int], int, float]:
    """The grid ``c`` runs on, the slowest core's output tiles, and the imbalance."""
    shape, slowest, imbalance, _ = on_cores(c, grid)
    return shape, slowest, imbalance


def on_cores(c: Contraction, grid: tuple[int, int]) -> tuple[tuple[int, int], int, float, int]:
    """``on_grid`` and the number of cores used."""
    mt, _, nt = c.tiles
    rows, cols = grid
    if c.batch == 1:
        gy, gx = min(rows, mt), min(cols, nt)
        slowest = -(-mt // gy) * -(-nt // gx)
        return (gy, gx), slowest, slowest * gy * gx / (mt * nt), gy * gx
    blocks = c.batch * mt
    used = min(rows * cols, blocks)
    slowest = -(-blocks // used) * nt
    shape = (-(-used // cols), min(cols, used))
    return shape, slowest, slowest * used / (blocks * nt), used


def width_sharded(c: Contraction, grid: tuple[int, int]) -> tuple[tuple[int, int], int, float, int]:
    """A DRAM-sharded matmul's grid, the slowest core's output tiles, the imbalance, and its
    cores."""
    mt, _, nt = c.tiles
    rows, cols = grid
    cores = max(d for d in range(1, min(rows * cols, nt) + 1) if nt % d == 0)
    return (-(-cores // cols), min(cols, cores)), mt * (nt // cores), 1.0, cores


def tile_work(
    graph: Graph, target: Target, overrides: Overrides | None = None
) -> dict[str, TileWork]:
    out: dict[str, TileWork] = {}
    homes = graph.records(Placement) if graph.has_records(Placement) else None
    for node in graph:
        products = node.op.contractions(graph.operand_types(node), node.type)
        if not products:
            out[node.name] = NO_WORK
            continue
        grid = target.grid
        phase = node_phase(graph, node)
        asked = overrides.for_node(node, phase).grid if overrides is not None else None
        if asked is not None:
            if asked[0] > grid[0] or asked[1] > grid[1]:
                raise PassError(
                    f"pass 'tiles': {overrides.origin if overrides else ''} gives "
                    f"'{node.name}' grid {list(asked)}, larger than {target.label}'s "
                    f"{list(grid)}"
                )
            grid = asked
        main = max(products, key=lambda c: c.padded_flops)
        sharded = homes is not None and dram_sharded_matmul(node, homes[node.name].input_homes)
        if sharded:
            program = "dram_sharded"
            shape, slowest, imbalance, cores = width_sharded(main, grid)
        else:
            program = "2d_multicast" if main.batch == 1 else "batched"
            shape, slowest, imbalance, cores = on_cores(main, grid)
        out[node.name] = TileWork(
            padded_flops=sum(c.padded_flops for c in products),
            padded_mkn=main.padded_mkn,
            grid=shape,
            per_core_tiles=slowest,
            imbalance=imbalance,
            program=program,
            rate_divisor=target.matmul_rate_divisor(main.m),
            live_rows=main.m,
            cores=cores,
        )
    return out


@register_pass
@frozen(kw_only=True)
class TilesPass(AnalysisPass):
    """Padded M, K, N, padded FLOPs, core grid and per-core tiles of every matmul-like op."""

    name: ClassVar[str] = "tiles"
    summary: ClassVar[str] = "32x32 tiles, padded FLOPs and core grids of matmul-like ops"
    record_type: ClassVar[type] = TileWork
    target: Target = field(factory=lambda: load_target("n300"), converter=load_target)
    overrides: Overrides | None = field(default=None, converter=optional(load_overrides))
    """A user's grids per role or node (``passes/overrides.py``), over the target's."""

    def reads(self, graph: Graph) -> tuple[type, ...]:
        return (Placement,) if graph.has_records(Placement) else ()

    def analyze(self, graph: Graph) -> dict[str, TileWork]:
        return tile_work(graph, self.target, self.overrides)
