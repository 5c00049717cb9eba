"""A sweep row without walking the whole graph: lowered once per request shape, folded
(``irperf/folding.py``), put on the machine once per shape, chips and policy, then placed,
timed and scheduled per target on the folded graph, the schedule replayed over the whole
program (``passes/folding.py``). ``tests/test_folding.py`` holds each row equal to
``irperf schedule``'s, number for number.

It serves the rows a sweep makes (the ``tt-metal`` homes, no fusion); ``row_of`` answers None
for any other, or where the graph does not fold, and the caller runs ``irperf schedule``'s path.
Only those homes: ``passes/folding.py``'s checks see the graph a pass leaves, not the state a
placement walk carries from one instance to the next. Under ``tt-metal`` nothing an instance
holds in L1 outlives it but the carried stream (prefill and the encoder live in DRAM), which
``tests/test_folding.py`` holds equal across L1 sizes; an L1 strategy or a user's overrides
could keep more, so they take the whole path.
"""

from __future__ import annotations

import argparse
import functools
from collections import OrderedDict
from typing import Any

from irperf.units import MS_PER_S, US_PER_S

BOUNDS = ("compute", "dram", "noc", "link", "dispatch")
"""The bounds a row names, in the order ties go."""

_CACHE_ITEMS = 64


class _Cache(OrderedDict[Any, Any]):
    """The last few results, most recent last: a sweep's rows come grouped by shape."""

    def get_or(self, key: Any, make: Any) -> Any:
        if key in self:
            self.move_to_end(key)
            return self[key]
        value = make()
        self[key] = value
        if len(self) > _CACHE_ITEMS:
            self.popitem(last=False)
        return value


_lowered = _Cache()
_machined = _Cache()
_expansions = _Cache()
_placed = _Cache()

RATES = (
    "description",
    "clock_hz",
    "dram_bandwidth_bytes_per_s_per_chip",
    "compute",
    "link",
    "dispatch_overhead_s",
    "sfpu_flops_per_s_per_core",
    "eltwise_add_flops_per_s_per_core",
    "eltwise_mul_flops_per_s_per_core",
    "noc_bandwidth_bytes_per_s_per_core",
    "sources",
    "origin",
)
"""Target fields that only say how fast: ``place`` (``tt-metal``) and ``tiles`` never read
them, so targets that differ only here share one placed graph (``tests/test_folding.py``
changes each and compares)."""


def layout_key(target: Any) -> tuple[Any, ...]:
    """What of ``target`` the homes and tiles depend on, but its L1 capacity (``_placed_for``)."""
    import attrs

    skip = {*RATES, "l1_usable_bytes_per_core"}
    return tuple(
        (f.name, getattr(target, f.name)) for f in attrs.fields(type(target)) if f.name not in skip
    )


def _placed_for(machine_key: tuple[Any, ...], target: Any, make: Any) -> Any:
    """The placed graph for ``target``: one made for a target that differs only in rates, or in
    an L1 capacity under which the walk decides the same (``Walk.capacities``), else ``make()``."""
    from passes.placement import PlacementSummary

    found: list[Any] = _placed.get_or((machine_key, layout_key(target)), list)
    capacity = target.l1_usable_bytes_per_core
    for g in found:
        lo, hi = g.graph_record(PlacementSummary).capacities
        if lo <= capacity and (hi is None or capacity < hi):
            return g
    g = make()
    found.append(g)
    return g


@functools.cache
def _parser() -> argparse.ArgumentParser:
    from irperf.cli import build_parser

    return build_parser()


def parse(argv: list[str]) -> argparse.Namespace:
    return _parser().parse_args(argv)


def _lowering(args: argparse.Namespace, phase: str) -> tuple[Any, ...]:
    """What lowers ``phase`` of the request: the key its folded graph is kept under."""
    from irperf.cli.common import device_rows, lowering_options

    rows = device_rows(args, args.strategy if args.tt_metal_rows else None)
    decode = phase == "decode"
    options = lowering_options(args, **rows) | {
        "phase": phase,
        "seq_len": None if decode else args.seq_len,
        "context": args.context if decode else None,
    }
    return (args.model, args.part, tuple(sorted(options.items())))


def _lower(key: tuple[Any, ...]) -> Any:
    from irperf.api import lower
    from irperf.folding import fold

    model, part, options = key
    return fold(lower(model, part, **dict(options)))


def _warm(graph: Any) -> Any:
    """``graph`` with the tables every row on it reads computed once (``Graph.memo``: the
    passes that follow run on copies of it, which keep them)."""
    from passes.bytes import count_bytes
    from passes.flops import count_flops
    from passes.kernels import kernel_graph
    from passes.placement import Placement, graph_traffic

    kernel_graph(graph)
    for convention in ("full", "matmul-only"):
        count_flops(graph, convention)
        if graph.has_records(Placement):
            graph_traffic(graph, convention)
        else:
            count_bytes(graph, convention)
    return graph


def row_of(argv: list[str], phase: str) -> dict[str, Any] | None:
    """The sweep row's figures for ``irperf schedule ARGV`` (one phase), or None where this path
    does not serve it."""
    from irperf.api import run as run_passes
    from irperf.cli.machine import is_tenstorrent, machine_choice, machine_passes
    from irperf.cli.schedule import apply_sets
    from irperf.pass_manager import build_pass, get_pass
    from passes.folding import check, expand, expanded, footprint
    from passes.kernels import kernel_graph
    from passes.op_time import OpTime, OpTimeSummary, with_bound
    from passes.roofline import RooflineTime, aggregate_roofline_s
    from passes.schedule import makespan_s, program, shapes, simulate
    from passes.tiles import TileWork
    from targets import load_target

    args = parse(argv)
    if args.fusion is not None or args.strategy not in (None, "tt-metal"):
        return None
    target = apply_sets(load_target(args.target), args.set)
    chips, pattern, policy = machine_choice(args, target)
    tt = is_tenstorrent(target)
    args.strategy = "tt-metal"
    args.tt_metal_rows = tt
    key = _lowering(args, phase)
    folded = _lowered.get_or(key, lambda: _lower(key))
    if folded is None:
        return None
    machine_key = (*key, chips, pattern, policy)
    on_machine = machine_passes(chips, pattern, policy)
    machined = _machined.get_or(
        machine_key,
        lambda: run_passes(folded.graph, on_machine) if on_machine else folded.graph,
    )
    placed = machined
    if tt:  # homes and tiles: once per machine graph and target, whatever its rates
        homes = [
            build_pass(get_pass("place"), {"strategy": "tt-metal", "target": target}),
            build_pass(get_pass("tiles"), {"target": target}),
        ]
        placed = _placed_for(machine_key, target, lambda: _warm(run_passes(machined, homes)))
    else:
        _warm(placed)
    work = placed.records(TileWork) if placed.has_records(TileWork) else None
    shapes(placed, target.cores, work, args.async_ccl == "on")  # every row on it reads them
    passes: list[Any] = []
    passes.append(build_pass(get_pass("op-time"), {"target": target, "dispatch": args.dispatch}))
    counted = "placed-bytes" if tt else "bytes"
    passes += ["flops", counted, build_pass(get_pass("roofline"), {"target": target})]
    g = run_passes(placed, passes)
    kg = kernel_graph(g)
    layout = placed.memo("layout", lambda: check(folded, folded.graph, g, kg))  # structure
    if layout is None:
        return None
    timed = g.graph_record(OpTimeSummary)
    work = g.records(TileWork) if g.has_records(TileWork) else None
    steps = program(g, g.records(OpTime), timed.cores, work, args.overlap, args.async_ccl == "on")
    shape = (
        tuple((k.name, k.inputs) for k in kg.kernels),
        layout.step_spans,
        tuple(tuple(sorted(c.items())) for c in layout.carries),
    )
    deps = _expansions.get_or(shape, lambda: expand(folded, g, kg, steps, layout)[1])
    whole = expanded(steps, layout.step_spans)
    line = simulate(whole, timed.cores, deps)
    # Per folded step once: its bound (a view, which runs nothing, has none) and latency.
    bounds = [
        None
        if not (s.length_s or s.time.dispatch_s or s.cores or s.link or s.dram)
        else with_bound(s.time).bound
        for s in steps
    ]
    latencies = [s.time.latency_s(args.overlap) for s in steps]
    spent = dict.fromkeys(BOUNDS, 0.0)
    for b, start, end in zip(
        expanded(bounds, layout.step_spans), line.starts, line.ends, strict=True
    ):
        if b is not None:
            spent[b] += end * US_PER_S - start * US_PER_S
    roofline = g.records(RooflineTime)
    memory = placed.memo("footprint", lambda: footprint(folded, g, layout))  # homes alone
    capacity = target.dram_bytes_per_chip * (1 if chips > 1 else target.chips)
    scheduled = makespan_s(line) * MS_PER_S
    return {
        "precision": policy,
        "tp": chips,
        "fusion": None,
        "scheduled_ms": scheduled,
        "per_op_roofline_ms": sum(expanded(latencies, layout.step_spans)) * MS_PER_S,
        "aggregate_roofline_ms": aggregate_roofline_s(
            expanded([roofline[n.name] for n in g], layout.node_spans)
        )
        * MS_PER_S,
        "bound": max(BOUNDS, key=spent.__getitem__),
        "fits": memory.total_bytes <= capacity,
    }
