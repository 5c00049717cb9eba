"""``irperf run``: lower a model and run any pass pipeline on it."""

from __future__ import annotations

import argparse
from typing import Any

from irperf.cli.common import add_model_args, lower_from_args, print_json
from irperf.errors import PluginError
from irperf.plugins import describe, load_plugin


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "run", help="run a pass pipeline, e.g. --passes 'flops,bytes{convention=full}'"
    )
    add_model_args(p)
    p.add_argument(
        "--passes", required=True, help="comma-separated passes with {key=value} options"
    )
    p.add_argument(
        "--load",
        action="append",
        default=[],
        metavar="MODULE_OR_FILE",
        help="import a module or .py file that registers passes (repeatable)",
    )
    p.add_argument("--json", action="store_true", help="print every node's records as JSON")
    p.set_defaults(func=run)
    p = sub.add_parser("passes", help="list the registered passes")
    p.add_argument("--load", action="append", default=[], metavar="MODULE_OR_FILE")
    p.set_defaults(func=list_passes)


def _jsonable(record: Any) -> Any:
    import attrs

    if attrs.has(type(record)):
        return attrs.asdict(record)
    return record


def run(args: argparse.Namespace) -> int:
    from irperf.api import run as run_passes

    for spec in args.load:
        load_plugin(spec)
    graph = run_passes(lower_from_args(args), args.passes)
    kinds: list[type[Any]] = graph.record_kinds()
    if args.json:
        print_json(
            {
                "model": graph.meta.get("model"),
                "nodes": len(graph),
                "records": {
                    k.__name__: {n: _jsonable(rec) for n, rec in graph.records(k).items()}
                    for k in kinds
                },
            }
        )
        return 0
    print(
        f"{graph.name}: {len(graph):,} nodes; records: "
        + (", ".join(k.__name__ for k in kinds) or "none")
    )
    for k in kinds:
        recs: list[Any] = list(graph.records(k).values())
        if recs and hasattr(recs[0], "__add__"):
            try:
                total = sum(recs[1:], recs[0])
            except Exception as e:  # a plugin's record type that does not add up
                raise PluginError(f"{k.__name__} records do not add up: {describe(e)}") from e
            print(f"  {k.__name__} total: {_jsonable(total)}")
    return 0


def list_passes(args: argparse.Namespace) -> int:
    import sys

    from irperf.api import _load_builtin_passes
    from irperf.pass_manager import entry_point_failures, get_pass, pass_names

    _load_builtin_passes()
    for spec in args.load:
        load_plugin(spec)
    for name in pass_names():
        print(f"{name:20s} {get_pass(name).summary}")
    for failure in entry_point_failures():
        print(f"irperf: warning: {failure}", file=sys.stderr)
    return 0
