"""``irperf place``: the model on the machine: per op its chips, per-chip shape, role, formats and
fidelity; per collective its payload and link bytes; per chip its totals and whether it fits.

``--json`` is a public contract: top-level ``target``, ``tp``, ``pattern``, ``precision``,
``chips`` (one entry per chip: ``chip``, ``weights_bytes``, ``kv_cache_bytes``, ``dram_bytes``,
``link_bytes``, ``flops``, ``dram_capacity_bytes``, ``fits``) and ``ops`` (``name``, ``kind``,
``role``, ``chips``, ``shape`` (per chip), ``global_shape``, ``dtype``, ``weight_dtype``,
``fidelity``, ``flops`` (per chip), ``bytes_read``, ``bytes_written``, ``link_bytes``,
``input_homes``, ``output_home``, ``input_shards``, ``output_shard``; a collective adds
``payload_bytes``, the whole logical tensor it exchanges; a matmul-like op its tiles: ``grid``,
``padded_mkn``, ``padded_flops``, ``per_core_tiles``, ``imbalance``, ``program``,
``rate_divisor``), and ``strategy`` (the memory homes' strategy).
"""

from __future__ import annotations

import argparse
from typing import Any

from irperf.cli.common import (
    add_convention_arg,
    add_model_args,
    device_rows,
    fmt_int,
    lower_from_args,
    print_json,
    table,
)
from irperf.cli.machine import add_machine_args, machine_choice, machine_passes
from irperf.units import GB

STRATEGIES = ("dram", "tt-metal", "l1-greedy", "time")
"""``--strategy`` choices (``passes.placement.STRATEGIES``, not imported here: the parser is
built before any pass module loads; a test keeps the two equal)."""


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("place", help="put a model on a target: splits, formats, per-chip totals")
    add_model_args(p)
    p.add_argument("--target", default="n300", help="target name or .toml file (default n300)")
    add_convention_arg(p, "matmul-only")
    add_machine_args(p)
    p.add_argument(
        "--strategy",
        type=str.lower,
        choices=STRATEGIES,
        default="dram",
        help="memory homes: dram (every tensor in DRAM, interleaved; default), tt-metal (decode "
        "weights DRAM-sharded, activations width-sharded in L1), l1-greedy (results kept in "
        "L1 while they fit, the farthest next use spilled) or time (L1 where it saves the most "
        "time, by op-time's per-op model)",
    )
    p.add_argument(
        "--override",
        metavar="FILE",
        default=None,
        help="a TOML file of homes and grids per role or node, over the strategy's "
        "(see docs/machine.md)",
    )
    p.add_argument("--ops", action="store_true", help="list every op (a long table)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def _check(args: argparse.Namespace) -> None:
    from irperf.cli.common import refuse_unused

    refuse_unused(
        args, [("--ops", args.ops and args.json, "means nothing with --json (ops are in it)")]
    )


def placement(args: argparse.Namespace) -> dict[str, Any]:
    """Lower, put on the machine, count; the JSON-ready report."""
    from irperf.api import run as run_passes
    from irperf.pass_manager import build_pass, get_pass

    _check(args)
    from targets import load_target

    target = load_target(args.target)
    chips, pattern, policy = machine_choice(args, target)
    graph = lower_from_args(args, **device_rows(args, args.strategy))
    count = f"flops{{convention={args.convention}}},bytes{{convention={args.convention}}}"
    from passes.overrides import load_overrides

    overrides = load_overrides(args.override) if args.override is not None else None
    tiles = build_pass(get_pass("tiles"), {"target": target, "overrides": overrides})
    options = {"strategy": args.strategy, "target": target, "overrides": overrides}
    homes = build_pass(get_pass("place"), options)
    placed = f"placed-bytes{{convention={args.convention}}}"
    # Placing first: its spills and reshards are ops that every count must see.
    passes = [*machine_passes(chips, pattern, policy), homes, count, "params", "memory", tiles]
    passes.append(placed)
    graph = run_passes(graph, passes)
    return report(graph, target, chips, pattern, args.convention, args.strategy, args.override)


def _shard(node: Any, home: Any, target: Any) -> dict[str, list[int]] | None:
    from passes.placement_walk import shard_of

    banks = target.dram_channels_per_chip
    found = shard_of(node.type, home, target.grid, banks)
    return None if found is None else {"grid": list(found.grid), "shape": list(found.shape)}


def report(
    graph: Any,
    target: Any,
    chips: int,
    pattern: str | None,
    convention: str,
    strategy: str,
    overrides: str | None = None,
) -> dict[str, Any]:
    """The ``place --json`` object of a counted graph (flops, bytes, params, memory ran)."""
    from irperf.ops import MatMul, Source
    from irperf.ops.taxonomy import ALIASES
    from irperf.roles import Role
    from passes.bytes import PlacedTraffic
    from passes.flops import FlopCount
    from passes.memory import MemoryFootprint
    from passes.params import ParamCount
    from passes.placement import Placement, PlacementSummary
    from passes.roofline import compute_dtype
    from passes.tiles import TileWork

    flops, traffic = graph.records(FlopCount), graph.records(PlacedTraffic)
    work, homes = graph.records(TileWork), graph.records(Placement)
    summary = graph.graph_record(PlacementSummary)
    params = graph.records(ParamCount)
    footprint = graph.graph_record(MemoryFootprint)
    ops: list[dict[str, Any]] = []
    has_fidelities = any(c.fidelity != "none" for c in target.compute)
    for n in graph:
        if isinstance(n.op, Source):
            continue
        t, layout = n.type, n.type.layout
        weight = graph.node(n.operands[1]).type.dtype.name if isinstance(n.op, MatMul) else None
        fidelity = n.fidelity
        if not has_fidelities:
            fidelity = None  # a GPU's rates have no fidelity phases: a policy's means nothing
        elif fidelity is None and flops[n.name].flops:
            fidelity = target.fidelity_for(compute_dtype(graph, n).name)
        entry: dict[str, Any] = {
            "name": n.name,
            "kind": n.op.kind,
            "role": n.role.value if n.role else None,
            "chips": layout.parts if not layout.replicated else chips,
            "layout": str(layout),
            "shape": list(t.shape),
            "global_shape": list(t.global_shape),
            "dtype": t.dtype.name,
            "weight_dtype": weight,
            "fidelity": fidelity,
            "flops": flops[n.name].flops,
            "bytes_read": traffic[n.name].bytes_read,
            "bytes_written": traffic[n.name].bytes_written,
            "link_bytes": traffic[n.name].link_bytes,
            "noc_bytes": traffic[n.name].noc_bytes,
            "input_homes": [h.value for h in homes[n.name].input_homes],
            "output_home": homes[n.name].output_home.value,
            "l1_bytes_per_core": homes[n.name].l1_bytes_per_core,
            "output_shard": _shard(n, homes[n.name].output_home, target),
            "input_shards": [
                _shard(graph.node(o), h, target)
                for o, h in zip(n.operands, homes[n.name].input_homes, strict=True)
            ],
        }
        tiled = work[n.name]
        if tiled.padded_mkn is not None:  # a matmul-like op: its tiles on the core grid
            assert tiled.grid is not None
            entry["grid"] = list(tiled.grid)
            entry["padded_mkn"] = list(tiled.padded_mkn)
            entry["padded_flops"] = tiled.padded_flops
            entry["per_core_tiles"] = tiled.per_core_tiles
            entry["imbalance"] = tiled.imbalance
            entry["program"] = tiled.program
            entry["rate_divisor"] = tiled.rate_divisor
        if n.role is Role.COLLECTIVE:
            # The whole tensor exchanged: an all-gather's result, a reduction's addend.
            entry["payload_bytes"] = max(graph.node(n.operands[0]).type.nbytes, t.nbytes)
        ops.append(entry)
    capacity = target.dram_bytes_per_chip  # split or whole, each chip holds its own part
    needed = footprint.total_bytes
    chip = {
        "weights_bytes": sum(p.weight_bytes for p in params.values()),
        "kv_cache_bytes": footprint.kv_cache_bytes,
        "activation_peak_bytes": footprint.activation_peak_bytes,
        "dram_bytes": sum(r.bytes for r in traffic.values()),
        "link_bytes": sum(r.link_bytes for r in traffic.values()),
        "noc_bytes": sum(r.noc_bytes for r in traffic.values()),
        "flops": sum(f.flops for f in flops.values()),
        "dram_capacity_bytes": capacity,
        "fits": needed <= capacity,
        "peak_l1_bytes_per_core": summary.peak_l1_bytes_per_core,
        "peak_l1_op": summary.peak_l1_op,
        "spills": len(summary.spills),
        "reshards": summary.reshards,
        "unplaceable": [
            {"name": n.name, "bytes": n.type.nbytes}
            for n in graph
            if n.type.nbytes > capacity and not isinstance(n.op, ALIASES)  # views hold none
        ],
    }
    return {
        "model": graph.meta.get("model"),
        "part": graph.meta.get("part"),
        "phase": graph.meta.get("phase"),
        "target": target.name,
        "tp": chips,
        "pattern": pattern,
        "strategy": strategy,
        "overrides": overrides,
        "vision_rows": graph.meta.get("vision_rows"),
        "vision_tile_rows": _tile_rows(graph),
        "l1_capacity_bytes_per_core": summary.capacity_bytes_per_core,
        "precision": graph.meta.get("precision"),
        "convention": convention,
        "chips": [{"chip": i, **chip} for i in range(chips)],
        "ops": ops,
    }


def _tile_rows(graph: Any) -> int | None:
    """The rows one vision tile takes inside the encoder (its tokens, padded), if it runs."""
    if "vision.pad" not in graph:
        return None
    shape: tuple[int, ...] = graph.node("vision.pad").type.shape
    return shape[2]


def _gb(n: int) -> str:
    return f"{n / GB:,.2f} GB"


def run(args: argparse.Namespace) -> int:
    out = placement(args)
    if args.json:
        print_json(out)
        return 0
    print(
        f"{out['model']}  part={out['part']}  phase={out['phase']}  target={out['target']}  "
        f"tp={out['tp']}{' ' + out['pattern'] if out['pattern'] else ''}  "
        f"precision={out['precision'] or 'lowering formats'}  convention={out['convention']}"
    )
    chip = out["chips"][0]
    each = f"each of {out['tp']} chips" if out["tp"] > 1 else "unsplit: the whole model on one chip"
    rows = [
        ["weights", _gb(chip["weights_bytes"]), fmt_int(chip["weights_bytes"])],
        ["KV cache", _gb(chip["kv_cache_bytes"]), fmt_int(chip["kv_cache_bytes"])],
        [
            "activation peak",
            _gb(chip["activation_peak_bytes"]),
            fmt_int(chip["activation_peak_bytes"]),
        ],
        ["DRAM capacity", _gb(chip["dram_capacity_bytes"]), fmt_int(chip["dram_capacity_bytes"])],
        ["DRAM traffic", _gb(chip["dram_bytes"]), fmt_int(chip["dram_bytes"])],
        ["link traffic", _gb(chip["link_bytes"]), fmt_int(chip["link_bytes"])],
        ["NoC traffic", _gb(chip["noc_bytes"]), fmt_int(chip["noc_bytes"])],
        ["FLOPs", "", fmt_int(chip["flops"])],
    ]
    print(f"\nper chip ({each}):")
    print(table(["", "GB", "exact"], rows, "lrr"))
    needed = chip["weights_bytes"] + chip["kv_cache_bytes"] + chip["activation_peak_bytes"]
    if chip["fits"]:
        print(f"fits: {_gb(needed)} of {_gb(chip['dram_capacity_bytes'])} per chip")
    else:
        print(
            f"does not fit: needs {_gb(needed)} ({fmt_int(needed)} B) per chip, "
            f"{_gb(chip['dram_capacity_bytes'])} available"
        )
    for t in chip["unplaceable"][:3]:
        print(
            f"cannot be placed anywhere: {t['name']} ({fmt_int(t['bytes'])} B) is larger than "
            f"a chip's {_gb(chip['dram_capacity_bytes'])} of DRAM"
        )
    print(
        f"L1 ({out['strategy']}): peak {fmt_int(chip['peak_l1_bytes_per_core'])} B per core "
        f"at {chip['peak_l1_op']}, {chip['spills']} spills, {chip['reshards']} reshards"
    )
    print()
    print(
        table(
            ["role", "ops", "formats", "fidelity", "FLOPs/chip", "DRAM bytes", "link bytes"],
            _roles(out["ops"]),
        )
    )
    collectives = [o for o in out["ops"] if "payload_bytes" in o]
    if collectives:
        print()
        print(
            table(
                ["collective", "count", "payload bytes", "link bytes/chip"],
                _collectives(collectives),
                "lrrr",
            )
        )
    if args.ops:
        print()
        rows = [
            [
                o["name"],
                o["kind"],
                o["role"] or "",
                o["layout"],
                "x".join(map(str, o["shape"])),
                o["dtype"] + (f"/{o['weight_dtype']}" if o["weight_dtype"] else ""),
                o["fidelity"] or "",
                fmt_int(o["flops"]),
                fmt_int(o["bytes_read"] + o["bytes_written"]),
                fmt_int(o["link_bytes"]),
            ]
            for o in out["ops"]
        ]
        headers = [
            "op",
            "kind",
            "role",
            "layout",
            "shape/chip",
            "format",
            "fidelity",
            "FLOPs",
            "bytes",
            "link",
        ]
        print(table(headers, rows, "llllllrrrr"))
    return 0


def _roles(ops: list[dict[str, Any]]) -> list[list[str]]:
    acc: dict[str, dict[str, Any]] = {}
    for o in ops:
        r = acc.setdefault(
            o["role"] or "",
            {"ops": 0, "formats": set(), "fid": set(), "flops": 0, "bytes": 0, "link": 0},
        )
        r["ops"] += 1
        if o["weight_dtype"]:
            r["formats"].add(f"{o['dtype']}x{o['weight_dtype']}")
        if o["fidelity"]:
            r["fid"].add(o["fidelity"])
        r["flops"] += o["flops"]
        r["bytes"] += o["bytes_read"] + o["bytes_written"]
        r["link"] += o["link_bytes"]
    return [
        [
            role,
            fmt_int(r["ops"]),
            ", ".join(sorted(r["formats"])),
            ", ".join(sorted(r["fid"])),
            fmt_int(r["flops"]),
            fmt_int(r["bytes"]),
            fmt_int(r["link"]),
        ]
        for role, r in acc.items()
    ]


def _collectives(ops: list[dict[str, Any]]) -> list[list[str]]:
    acc: dict[str, list[int]] = {}
    for o in ops:
        a = acc.setdefault(o["kind"], [0, 0, 0])
        a[0] += 1
        a[1] += o["payload_bytes"]
        a[2] += o["link_bytes"]
    return [[k, fmt_int(c), fmt_int(p), fmt_int(lb)] for k, (c, p, lb) in acc.items()]
