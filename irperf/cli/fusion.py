"""``irperf fusion``: fusion opportunities, strategies side by side, one strategy's groups."""

from __future__ import annotations

import argparse
from typing import Any

from irperf.cli.common import (
    UsageError,
    add_convention_arg,
    add_model_args,
    check_outputs,
    load_plugins,
    lower_from_args,
    output_file,
    plugin_output_on_stderr,
    print_json,
    refuse_unused,
)
from irperf.cli.fusion_tables import (
    groups_table,
    layer_table,
    log_text,
    opportunities_table,
    summary_table,
)

PICTURES = ("dot", "svg", "png")
DEFAULT_TOP = 40


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "fusion", help="fusion strategies: --opportunities, --compare LIST or --strategy S"
    )
    add_model_args(p)
    p.add_argument("--target", default="n300-seed", help="target name or .toml file")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument(
        "--opportunities",
        action="store_true",
        help="every fusable pair or sibling group of the unfused graph, largest saving first",
    )
    mode.add_argument(
        "--compare", metavar="LIST", help="strategies side by side, e.g. none,flash-attention,all"
    )
    mode.add_argument("--strategy", metavar="S", help="one strategy: its groups and bytes")
    add_convention_arg(p, "full")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--log", action="store_true", help="print greedy's steps (XLA fusion dump)")
    p.add_argument(
        "--top", type=int, default=None, help=f"table rows of --opportunities ({DEFAULT_TOP})"
    )
    p.add_argument(
        "--capacity-bytes",
        type=int,
        default=None,
        help="on-chip limit for greedy (default: the target's usable L1 x cores)",
    )
    p.add_argument(
        "--load",
        action="append",
        default=[],
        metavar="MODULE_OR_FILE",
        help="import a module or .py file that registers strategies (repeatable)",
    )
    for fmt in PICTURES:
        p.add_argument(
            f"--{fmt}",
            metavar="FILE",
            type=output_file,
            help=f"with --strategy: draw {fmt.upper()}",
        )
    p.set_defaults(func=run)


def _header(graph: Any, target: Any, args: argparse.Namespace) -> dict[str, Any]:
    from passes.fusion_greedy import capacity_bytes

    return {
        "model": graph.meta.get("model"),
        "part": graph.meta.get("part"),
        "target": target.name,
        "convention": args.convention,
        "capacity_bytes": capacity_bytes(target)
        if args.capacity_bytes is None
        else args.capacity_bytes,
    }


def _title(h: dict[str, Any], target: Any, graph: Any) -> str:
    from irperf.cli.analyze import matmul_peak

    peak = matmul_peak(target, graph.meta)
    bw = target.chips * target.dram_bandwidth_bytes_per_s_per_chip / 1e9
    return (
        f"{h['model']}  part={h['part']}  target={h['target']} ({peak}, "
        f"{bw:,.0f} GB/s, on-chip {h['capacity_bytes']:,} B)  convention={h['convention']}"
    )


def run(args: argparse.Namespace) -> int:
    from passes.fusion_greedy import check_capacity
    from passes.fusion_rules import get_strategy
    from targets import load_target

    load_plugins(args.load)
    if args.compare is not None:
        names = list(dict.fromkeys(s.strip() for s in args.compare.split(",") if s.strip()))
        if not names:
            raise UsageError("fusion: --compare needs a comma-separated list of strategies")
    else:
        names = [] if args.strategy is None else [args.strategy]
    # an unknown name fails before any work; names are spelled as registered
    strategies = [get_strategy(name) for name in names]
    names = list(dict.fromkeys(s.name for s in strategies))
    greedy = any(s.greedy for s in strategies)
    top_given = args.top is not None
    refuse_unused(
        args,
        [
            *(
                (f"--{fmt}", bool(getattr(args, fmt)) and not args.strategy, "needs --strategy")
                for fmt in PICTURES
            ),
            ("--log", args.log and not greedy, "prints greedy's steps; compare or pick greedy"),
            ("--log", args.log and args.json, "is for the table; --json always holds the log"),
            (
                "--capacity-bytes",
                args.capacity_bytes is not None and not (greedy or args.opportunities),
                "limits greedy and --opportunities; rule strategies never read it",
            ),
            ("--top", top_given and not args.opportunities, "limits the --opportunities table"),
            ("--top", top_given and args.json, "limits the table; --json lists every opportunity"),
        ],
    )
    pictures = [getattr(args, fmt) for fmt in PICTURES if getattr(args, fmt)]
    check_outputs(args, pictures, [args.model, args.target, *args.load])
    if top_given and args.top < 1:
        raise UsageError(f"fusion: --top must be an integer from 1, got {args.top}")
    check_capacity(args.capacity_bytes, "fusion: --capacity-bytes")
    target = load_target(args.target)
    graph = lower_from_args(args)
    header = _header(graph, target, args)
    if args.opportunities:
        return _opportunities(graph, target, header, args)
    if args.compare is not None:
        return _compare(graph, names, header, target, args)
    return _strategy(graph, names[0], header, target, args)


def _compare(
    graph: Any, names: list[str], header: dict[str, Any], target: Any, args: argparse.Namespace
) -> int:
    from passes.fusion_report import compare

    with plugin_output_on_stderr():  # a plugin's rules run here
        rows = compare(
            graph, names, target=target, convention=args.convention, capacity=args.capacity_bytes
        )
    if args.json:
        print_json({**header, "baseline": "none", "strategies": rows})
        return 0
    print(_title(header, target, graph))
    print(summary_table(rows))
    print("\nDRAM bytes by kind: per layer for repeated blocks, in total otherwise")
    print(layer_table(rows))
    if args.log:
        print(log_text(rows))
    return 0


def _strategy(
    graph: Any, name: str, header: dict[str, Any], target: Any, args: argparse.Namespace
) -> int:
    from irperf.render import render_to_file
    from passes.fusion_report import compare_runs, fused_groups, groups_by_pattern, run_all

    with plugin_output_on_stderr():  # a plugin's rules run here
        runs = run_all(
            graph, [name], target=target, convention=args.convention, capacity=args.capacity_bytes
        )
    rows = compare_runs(runs, [name])
    run_ = runs[name]
    groups = fused_groups(run_)
    for fmt in PICTURES:
        path = getattr(args, fmt)
        if path:
            render_to_file(run_.graph, path, fmt, collapse_repeats=True)
    if args.json:
        print_json({**header, "baseline": "none", "strategies": rows, "groups": groups})
        return 0
    print(_title(header, target, graph))
    print(summary_table(rows))
    print("\nDRAM bytes by kind: per layer for repeated blocks, in total otherwise")
    print(layer_table(rows))
    print(f"\nFused groups of {name}: {len(groups):,}")
    if groups:
        print(groups_table(groups_by_pattern(run_.graph, groups)))
    for fmt in PICTURES:
        if getattr(args, fmt):
            print(f"wrote {getattr(args, fmt)}")
    if args.log:
        print(log_text(rows))
    return 0


def _opportunities(
    graph: Any, target: Any, header: dict[str, Any], args: argparse.Namespace
) -> int:
    from passes.fusion_opportunities import by_pattern, opportunities, opportunity_json
    from passes.fusion_report import run_strategy

    base = run_strategy(graph, "none", target=target, convention=args.convention)
    found = opportunities(base.graph, target, args.convention, args.capacity_bytes)
    patterns = by_pattern(base.graph, found)
    if args.json:
        print_json(
            {
                **header,
                "baseline": "none",
                "opportunities": [opportunity_json(o) for o in found],
                "patterns": patterns,
            }
        )
        return 0
    print(_title(header, target, graph))
    print(
        f"{len(found):,} opportunities over the unfused graph (strategy none), in "
        f"{len(patterns):,} patterns; largest DRAM saving first"
    )
    top = DEFAULT_TOP if args.top is None else args.top
    print(opportunities_table(patterns[:top]))
    if len(patterns) > top:
        print(f"... {len(patterns) - top:,} more patterns (--top N, or --json for all)")
    return 0
