"""``irperf report seed``: the seed post's tables, regenerated from the graph."""

from __future__ import annotations

import argparse
from typing import Any

from irperf.checks import show
from irperf.cli.common import UsageError, fmt_int, print_json, table


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("report", help="regenerate a published analysis (seed)")
    p.add_argument("which", help="the report: seed")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.which.lower() != "seed":
        raise UsageError(f"unknown report {show(args.which)}; valid: seed")
    from irperf.api import lower
    from irperf.api import run as run_passes
    from passes.seed_report import SEED_MODEL, seed_pipeline, seed_tables

    graph = run_passes(lower(SEED_MODEL, "vision"), seed_pipeline())
    t = seed_tables(graph)
    if args.json:
        print_json(t)
        return 0
    per_op = t["per_op"]
    print(f"Seed post, reproduced from the graph of {t['model']} (matmul-only convention)\n")
    print("FLOPs per transformer block (vision.local.0)")
    rows = [[r["op"], fmt_int(r["flops"]), r["node"]] for r in per_op["flops"]]
    rows.append(["total", fmt_int(per_op["flops_total"]), ""])
    print(table(["op", "FLOPs", "node"], rows, "lrl"))
    print("\nData moved per transformer block (bytes)")
    rows = [[r["op"], fmt_int(r["bytes"]), r["node"]] for r in per_op["bytes"]]
    rows.append(["total", fmt_int(per_op["bytes_total"]), ""])
    print(table(["op", "bytes", "node"], rows, "lrl"))
    print()
    rows = [
        [
            str(r["n_layers"]),
            fmt_int(r["gflops"]),
            fmt_int(r["mb"]),
            fmt_int(r["flops"]),
            fmt_int(r["bytes"]),
        ]
        for r in t["layers"]
    ]
    print(table(["n layers", "GFLOPs", "MB moved", "FLOPs", "bytes"], rows))
    n = t["n300"]
    from targets import load_target

    tg = load_target(t["target"])
    peak = tg.chips * tg.peak_flops_per_s_per_chip() / 1e12  # the seed pools both chips
    bw = tg.chips * tg.dram_bandwidth_bytes_per_s_per_chip / 1e9
    print(f"\nPerformance estimate on {tg.name} ({peak:,.0f} TFLOP/s, {bw:,.0f} GB/s)")
    rows = [[f"{n['compute_ms']:.1f}", f"{n['memory_ms']:.1f}", f"{n['total_ms']:.1f}"]]
    print(table(["Compute time (ms)", "Memory time (ms)", "Total time (ms)"], rows, "rrr"))
    return 0
