"""``irperf analyze``: FLOPs, bytes, parameters and roofline latency of a lowered model."""

from __future__ import annotations

import argparse
from typing import Any

from irperf.cli.common import (
    add_convention_arg,
    add_model_args,
    fmt_int,
    fmt_ms,
    lower_from_args,
    print_json,
    table,
)
from irperf.cli.machine import add_machine_args, machine_choice, machine_passes
from irperf.units import GB


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("analyze", help="cost a model on a target (table or --json)")
    add_model_args(p)
    p.add_argument("--target", default="n300-seed", help="target name or .toml file")
    add_convention_arg(p, "matmul-only")
    p.add_argument("--mfu", type=float, default=1.0, help="fraction of peak FLOP/s reached")
    p.add_argument(
        "--fidelity",
        default=None,
        type=str.lower,
        help="math fidelity for every op (lofi, hifi2, hifi3, hifi4); default: the target's "
        "pairing per format (Wormhole: BF16 HiFi4, BFP8 HiFi2, BFP4 LoFi)",
    )
    add_machine_args(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def analysis(args: argparse.Namespace) -> tuple[dict[str, Any], Any]:
    """Lower, run the analysis pipeline; the JSON-ready report and the target."""
    from irperf.api import analysis_pipeline
    from irperf.api import run as run_passes
    from passes.bytes import count_bytes
    from passes.summary import report
    from targets import load_target

    target = load_target(args.target)
    chips, pattern, policy = machine_choice(args, target)
    graph = lower_from_args(args)
    on_machine = machine_passes(chips, pattern, policy)
    if on_machine:
        graph = run_passes(graph, on_machine)
    count_bytes(graph, "full")  # the time model reads it: the bytes pass derives its own from it
    pipeline = analysis_pipeline(target, args.convention, args.mfu, args.fidelity)
    pipeline += timed_passes(target)
    graph = run_passes(graph, pipeline)
    header = {
        "target": target.name,
        "convention": args.convention,
        "mfu": args.mfu,
        "fidelity": args.fidelity or "per format",
        "tp": chips,
        "pattern": pattern if chips > 1 else None,
        "precision": graph.meta.get("precision"),
    }
    out = report(graph, **header)
    add_schedule(out, graph)
    memory = out.get("memory")
    if memory is not None:  # does it fit the target's DRAM? (one chip's, for a split graph)
        per_chip = chips > 1
        capacity = target.dram_bytes_per_chip * (1 if per_chip else target.chips)
        memory["per_chip"] = per_chip
        memory["device_bytes"] = capacity
        memory["fits"] = memory["total_bytes"] <= capacity
    return out, target


def timed_passes(target: Any) -> list[Any]:
    """``op-time`` and ``schedule`` on ``target`` (docs/time.md), as analyze runs them."""
    from irperf.pass_manager import build_pass, get_pass

    return [
        build_pass(get_pass("op-time"), {"target": target}),
        build_pass(get_pass("schedule"), {"target": target}),
    ]


def add_schedule(out: dict[str, Any], graph: Any) -> None:
    """The scheduled view beside the rooflines: ``latency_ms.scheduled``, ``ttft_ms`` (a full
    prefill), ``tpot_ms`` and ``tokens_per_s_per_user`` (a decode step), and per op
    ``start_us``, ``end_us`` and ``bound``."""
    from irperf.units import MS_PER_S, US_PER_S
    from passes.op_time import OpTime
    from passes.schedule import Schedule, Slot

    makespan_ms = graph.graph_record(Schedule).makespan_s * MS_PER_S
    out["latency_ms"]["scheduled"] = makespan_ms
    decode = out.get("phase") == "decode" and out.get("part") != "vision"
    full_prefill = out.get("phase") == "prefill" and out.get("part") == "full"
    out["ttft_ms"] = makespan_ms if full_prefill else None
    out["tpot_ms"] = makespan_ms if decode else None
    out["tokens_per_s_per_user"] = 1000.0 / makespan_ms if decode and makespan_ms else None
    slots, times = graph.records(Slot), graph.records(OpTime)
    for op in out["ops"]:
        slot = slots[op["name"]]
        op["start_us"] = slot.start_s * US_PER_S
        op["end_us"] = slot.end_s * US_PER_S
        op["bound"] = times[op["name"]].bound


def matmul_peak(
    target: Any, meta: dict[str, Any], fidelity: str | None = None, chips: int | None = None
) -> str:
    """The matrix peak the weights' format (``meta``: a graph's run keys) runs at on ``chips``
    chips (default: all of them, pooled), for headers."""
    rate = target.rate(meta.get("weight_dtype", meta.get("dtype")), fidelity)
    peak = rate.flops_per_s_per_core * target.cores * (target.chips if chips is None else chips)
    how = "" if rate.dtype == "any" else f" {rate.dtype}/{rate.fidelity}"
    return f"{peak / 1e12:,.1f} TFLOP/s{how}"


def _run_line(report: dict[str, Any]) -> str:
    """What the graph runs: part, phase and its shape."""
    run = report.get("run", {})
    words = [f"part={report['part']}"]
    if report.get("phase") and report["part"] != "vision":
        words.append(f"phase={report['phase']}")
    words += [
        f"{k.replace('_', '-')}={run[k]}" for k in ("batch", "seq_len", "context") if k in run
    ]
    if run.get("image", True):
        words.append(f"images={run.get('images', 1)}x{run.get('tiles', 4)} tiles")
    else:
        words.append("no-image")
    return "  ".join(words)


def _sizes(n: int) -> str:
    return f"{n / GB:,.2f} GB ({fmt_int(n)} B)"


def run(args: argparse.Namespace) -> int:
    report, target = analysis(args)
    if args.json:
        print_json(report)
        return 0
    if report["tp"] > 1:
        link = target.link.bandwidth_bytes_per_s * target.link.count
        dram = target.dram_bandwidth_bytes_per_s_per_chip
        machine = (
            f"(per chip: {target.cores} cores, {dram / 1e9:,.0f} GB/s DRAM, "
            f"{link / 1e9:,.1f} GB/s link)  tp={report['tp']} {report['pattern']}"
            f"  precision={report['precision'] or 'lowering formats'}"
        )
    else:
        peak = matmul_peak(target, report.get("run", {}), args.fidelity)
        bw = target.chips * target.dram_bandwidth_bytes_per_s_per_chip
        machine = f"({peak}, {bw / 1e9:,.0f} GB/s)"
        if report["precision"]:
            machine += f"  precision={report['precision']}"
    print(
        f"{report['model']}  {_run_line(report)}  target={report['target']} "
        f"{machine}  convention={report['convention']}  mfu={report['mfu']}"
    )
    rows = [
        [
            g["label"],
            fmt_int(g["blocks"]) if g["blocks"] else "",
            fmt_int(g["ops"]),
            fmt_int(g["flops"]),
            fmt_int(g["bytes"]),
            fmt_int(g["params"]),
            fmt_ms(g["aggregate_roofline_ms"]),
            fmt_ms(g["per_op_roofline_ms"]),
        ]
        for g in report["groups"]
    ]
    t = report["totals"]
    lat = report["latency_ms"]
    total = [
        "total",
        "",
        fmt_int(t["ops"]),
        fmt_int(t["flops"]),
        fmt_int(t["bytes"]),
        fmt_int(t["params"]),
        fmt_ms(lat["aggregate_roofline"]),
        fmt_ms(lat["per_op_roofline"]),
    ]
    rows.append(total)
    headers = ["group", "blocks", "ops", "FLOPs", "bytes", "params", "aggr. ms", "per-op ms"]
    print(table(headers, rows))
    rows = [
        [
            s["label"],
            fmt_int(s["ops"]),
            fmt_int(s["flops"]),
            fmt_int(s["bytes"]),
            fmt_int(s["params"]),
            fmt_ms(s["aggregate_roofline_ms"]),
            fmt_ms(s["per_op_roofline_ms"]),
        ]
        for s in report["stages"]
    ]
    rows.append([total[0], *total[2:]])
    print()
    print(table(["stage", *headers[2:]], rows))
    lat = report["latency_ms"]
    what = "TPOT" if report["tpot_ms"] is not None else "TTFT" if report["ttft_ms"] else "time"
    print(
        f"\nscheduled {what}: {fmt_ms(lat['scheduled'])} ms (op-time + schedule, every tensor "
        f"in DRAM: docs/time.md; irperf schedule places it and gives the whole request)"
    )
    if report["tp"] > 1:
        t, lat = report["totals"], report["latency_ms"]
        print(
            f"\nper chip: {fmt_int(t['flops'])} FLOPs, {fmt_int(t['bytes'])} DRAM bytes, "
            f"{fmt_int(t['link_bytes'])} link bytes ({fmt_ms(lat['link_ms'])} ms on the link)"
        )
    m = report.get("memory")
    if m is not None:
        weights, cache = _sizes(m["weights_bytes"]), _sizes(m["kv_cache_bytes"])
        act = _sizes(m["activation_peak_bytes"])
        each = " per chip" if m.get("per_chip") else ""
        print(f"\nmemory{each}: weights {weights}, KV cache {cache}, activation peak {act}")
        if not m["fits"]:
            where = f"per chip of {report['target']}" if each else f"on {report['target']}"
            print(
                f"warning: {_sizes(m['total_bytes'])}{each} does not fit the "
                f"{_sizes(m['device_bytes'])} of DRAM {where}"
            )
    return 0
