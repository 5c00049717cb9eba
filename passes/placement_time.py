"""The ``time`` strategy's objective: the time each result saves by living in L1.

Each op's time is ``max(compute, DRAM bytes / DRAM rate, NoC bytes / NoC bandwidth)``. On a
calibrated target compute and the DRAM rate are ``op-time``'s (the fitted kernel model; the
measured rate of the access pattern, DRAM-sharded where the strategy shards the operand); else
the per-chip roofline's (padded FLOPs at one chip's peak; the datasheet bandwidth). Bytes are
every operand read and the result written in TILE layout, as ``placed-bytes`` counts them under
``full``. A result's value
is what its producer and every reader save when that tensor's bytes move from DRAM to the NoC,
every other tensor in DRAM (so values add, and each is computed once: linear in graph size),
less the reshards its L1 home would force on a reader (a read and a write of the copy on the NoC,
``passes/placement_walk.py``'s rule). A compute-bound chain saves nothing and stays in DRAM,
leaving L1 to the memory-bound ops that gain from it: magnitudes, not a lexicographic order of
preferences (tt-mlir's finding).
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Mapping, Sequence

from attrs import frozen

from irperf.errors import PassError
from irperf.graph import Graph, Node
from irperf.homes import Home
from irperf.ops import Source
from irperf.ops.taxonomy import ALIASES
from irperf.rules import RuleContext
from passes.bytes import WRITES, literal_names, operand_reads
from passes.placement_walk import DRAM, HomeRule, reshards_needed
from passes.roofline import compute_dtype
from targets import Target

TILED = {"tiled": True}


@frozen
class Gains:
    """Per result, the seconds per chip its L1 home saves at each step that writes or reads it
    (steps in graph order), and what spilling it would cost (its L1 read and DRAM write)."""

    steps: Mapping[str, tuple[int, ...]]
    suffix: Mapping[str, tuple[float, ...]]
    """``suffix[s][k]``: the saving of steps ``steps[s][k:]`` together."""
    spill_s: Mapping[str, float]
    forced: frozenset[str] = frozenset()
    """Results whose L1 home a user asked for: tried while they fit, whatever they save."""

    def total(self, s: str) -> float:
        found = self.suffix.get(s)
        return found[0] if found else 0.0

    def after(self, s: str, step: int) -> float:
        """What ``s`` still saves from ``step`` on, where it stays in L1."""
        steps = self.steps.get(s)
        if not steps:
            return 0.0
        k = bisect.bisect_left(steps, step)
        return self.suffix[s][k] if k < len(steps) else 0.0


def l1_gains(graph: Graph, target: Target, rule: HomeRule) -> Gains:
    """Seconds per chip that each result saves in the L1 home ``rule`` asks for, per step."""
    if target.noc_bandwidth_bytes_per_s_per_core is None:
        raise PassError(
            f"pass 'place': strategy 'time' needs the NoC rate, and {target.label} has no "
            f"noc_bandwidth_bytes_per_s_per_core"
        )
    noc = target.noc_bandwidth_bytes_per_s_per_core * target.cores
    rates = _rates(graph, target)
    literals = literal_names(graph)
    root: dict[str, str] = {}
    wanted: dict[str, Home] = {}
    value: dict[str, list[tuple[int, float]]] = {}
    spill: dict[str, float] = {}
    for step, node in enumerate(graph):
        name = node.name
        root[name] = root[node.operands[0]] if isinstance(node.op, ALIASES) else name
        wanted[name] = rule(graph, node) or DRAM
        if isinstance(node.op, Source):
            continue
        ctx = RuleContext.of(graph, node, options=TILED)
        reads = operand_reads(graph, ctx, literals)
        written = WRITES.lookup(node)(ctx)
        homes = [wanted[root[o]] for o in node.operands]
        compute, dram = rates(node, homes)
        moved = sum(reads) + written
        if root[name] == name and written:
            value.setdefault(name, []).append((step, _saved(compute, moved, written, dram, noc)))
            spill[name] = max(written / dram, written / noc)  # a spill op's time
        for k, (o, b) in enumerate(zip(node.operands, reads, strict=True)):
            s = root[o]
            if not b or isinstance(graph.node(s).op, Source):
                continue
            gain = _saved(compute, moved, b, dram, noc)
            if k in reshards_needed(node, homes, wanted[name]) and not homes[k].in_dram:
                gain -= 2 * b / noc  # the copy its L1 home forces: read and written on the NoC
            value.setdefault(s, []).append((step, gain))
    steps = {s: tuple(k for k, _ in gains) for s, gains in value.items()}
    suffix = {
        s: tuple(itertools.accumulate(reversed([g for _, g in gains])))[::-1]
        for s, gains in value.items()
    }
    return Gains(steps, suffix, spill)


def _rates(graph: Graph, target: Target) -> Callable[[Node, Sequence[Home]], tuple[float, float]]:
    """Per op, its compute time and its DRAM rate: ``op-time``'s fitted models on a calibrated
    target (the kernel model, the access pattern's measured rate), else the per-chip roofline
    (padded FLOPs at peak, the datasheet bandwidth)."""
    if target.calibration is not None:
        from passes.op_time import compute_times, dram_rate
        from targets.calibration import load_calibration

        cal = load_calibration(target.calibration)
        times = compute_times(graph, target)
        return lambda node, homes: (times[node.name], dram_rate(node, homes, cal, target))
    dram = target.dram_bandwidth_bytes_per_s_per_chip

    def roofline(node: Node, homes: Sequence[Home]) -> tuple[float, float]:
        products = node.op.contractions(graph.operand_types(node), node.type)
        flops = sum(c.padded_flops for c in products)
        if not flops:
            return 0.0, dram
        dt = compute_dtype(graph, node).name
        return flops / target.peak_flops_per_s_per_chip(dt, node.fidelity), dram

    return roofline


def _saved(compute_s: float, moved: int, b: int, dram: float, noc: float) -> float:
    """What an op moving ``moved`` bytes saves when ``b`` of them come from L1 instead."""
    return max(compute_s, moved / dram) - max(compute_s, (moved - b) / dram, b / noc)
