"""``irperf lower``: lower a model, split it over chips if asked, draw it (DOT, SVG, PNG)."""

from __future__ import annotations

import argparse
from typing import Any

from irperf.cli.common import (
    add_convention_arg,
    add_model_args,
    check_outputs,
    lower_from_args,
    output_file,
    refuse_unused,
)
from irperf.cli.machine import tp_value
from irperf.cli.place import STRATEGIES as PLACEMENTS

COLORS = ("family", "role", "chip", "home")
"""``--color`` choices (``irperf.render.COLOR_MODES``, not imported here: it pulls graphviz in)."""


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("lower", help="lower a model; write graphviz DOT/SVG/PNG")
    add_model_args(p)
    out = p.add_mutually_exclusive_group()
    out.add_argument("--dot", metavar="FILE", type=output_file, help="write DOT source")
    out.add_argument(
        "--svg", metavar="FILE", type=output_file, help="render SVG (needs the 'dot' binary)"
    )
    out.add_argument(
        "--png", metavar="FILE", type=output_file, help="render PNG (needs the 'dot' binary)"
    )
    p.add_argument(
        "--collapse-repeats",
        action="store_true",
        help="draw one period of each run of repeated blocks (or block sequences) with an xN badge",
    )
    p.add_argument(
        "--show-weights",
        action="store_true",
        help="draw weights and constants as nodes (default: listed in their users' labels)",
    )
    p.add_argument(
        "--annotate",
        action="store_true",
        help="run flops/bytes first so node labels show FLOPs and bytes",
    )
    p.add_argument(
        "--tp",
        type=tp_value,
        default=1,
        metavar="N",
        help="split the graph over N chips by tensor parallelism (the tensor-parallel pass); "
        "1 or off: unsplit (default)",
    )
    p.add_argument(
        "--color",
        type=str.lower,
        choices=COLORS,
        default=None,
        help="fill nodes by op family (default), role, chip (replicated, split, partial "
        "sum, collective; with --tp) or home (memory home under --strategy)",
    )
    p.add_argument(
        "--strategy",
        type=str.lower,
        choices=PLACEMENTS,
        default=None,
        help="with --color home: the placement strategy whose homes are drawn (default "
        "tt-metal), on the n300's L1",
    )
    add_convention_arg(p, None, "matmul-only; with --annotate")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from irperf.api import run as run_passes
    from irperf.render import render_to_file

    output = any(getattr(args, fmt) for fmt in ("dot", "svg", "png"))
    refuse_unused(
        args,
        [
            ("--annotate", args.annotate and not output, "needs --dot, --svg or --png"),
            (
                "--collapse-repeats",
                args.collapse_repeats and not output,
                "needs --dot, --svg or --png",
            ),
            ("--show-weights", args.show_weights and not output, "needs --dot, --svg or --png"),
            ("--color", args.color is not None and not output, "needs --dot, --svg or --png"),
            (
                "--strategy",
                args.strategy is not None and args.color != "home",
                "needs --color home",
            ),
            ("--convention", args.convention is not None and not args.annotate, "needs --annotate"),
        ],
    )
    check_outputs(args, [p for p in (args.dot, args.svg, args.png) if p], [args.model])
    graph = lower_from_args(args)
    if args.tp > 1:
        from passes.tensor_parallel import tensor_parallel

        graph = tensor_parallel(graph, args.tp)
    homes = None
    if args.color == "home":  # the placed graph: its spills and reshards are drawn too
        from passes.placement import Placement

        graph = run_passes(graph, f"place{{strategy={args.strategy or 'tt-metal'}}}")
        homes = {k: p.output_home.value for k, p in graph.records(Placement).items()}
    if args.annotate:
        c = args.convention or "matmul-only"
        graph = run_passes(graph, f"flops{{convention={c}}},bytes{{convention={c}}}")
    for fmt in ("dot", "svg", "png"):
        path = getattr(args, fmt)
        if path:
            drawing = render_to_file(
                graph,
                path,
                fmt,
                collapse_repeats=True if args.collapse_repeats else None,
                show_weights=args.show_weights,
                color=args.color or "family",
                homes=homes,
            )
            if drawing.note:
                print(f"note: {drawing.note}")
            print(f"wrote {path} ({len(graph):,} nodes, {drawing.nodes:,} drawn)")
            return 0
    blocks = len(graph.blocks)
    print(f"{graph.name}: {len(graph):,} nodes in {blocks} blocks; use --dot/--svg/--png to draw")
    return 0
