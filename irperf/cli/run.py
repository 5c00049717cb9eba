"""``irperf run``: lower a model and run any pass pipeline on it."""

from __future__ import annotations

import argparse
from typing import Any

from irperf.checks import all_finite, show
from irperf.cli.common import (
    add_model_args,
    load_plugins,
    lower_from_args,
    plugin_output_on_stderr,
    print_json,
)
from irperf.errors import IrperfError, PluginError
from irperf.plugins import describe


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
    from irperf.pass_manager import AnalysisPass, build_pipeline

    load_plugins(args.load)
    with plugin_output_on_stderr():
        pipeline = build_pipeline(args.passes)
        graph = run_passes(lower_from_args(args), pipeline)
        kinds: list[type[Any]] = graph.record_kinds()
        # an analysis whose records a later pass dropped: a transform (a new graph has no stale
        # records) or an analysis that replaced what they were computed from
        dropped = list(
            dict.fromkeys(
                p.name
                for p in pipeline
                if isinstance(p, AnalysisPass) and not graph.has_records(p.record_type)
            )
        )
        if args.json:
            payload = {
                "model": graph.meta.get("model"),
                "nodes": len(graph),
                "dropped": dropped,
                "records": {k.__name__: _records_json(graph, k) for k in kinds},
                "graph_records": {
                    k.__name__: _jsonable(graph.graph_record(k)) for k in graph.graph_record_kinds()
                },
            }
        else:
            totals = [(k.__name__, _total(graph, k)) for k in kinds]
            totals += [
                (k.__name__, str(_jsonable(graph.graph_record(k))))
                for k in graph.graph_record_kinds()
            ]
    if args.json:
        print_json(payload)
        return 0
    print(
        f"{graph.name}: {len(graph):,} nodes; records: "
        + (", ".join(k.__name__ for k in kinds) or "none")
    )
    whole = {k.__name__ for k in graph.graph_record_kinds()}
    for name, total in totals:
        if total is not None:
            print(f"  {name}{'' if name in whole else ' total'}: {total}")
    for name in dropped:
        print(
            f"note: the records of {name} were dropped: a later pass replaced the graph or what "
            f"they were computed from; run {name} after it"
        )
    return 0


def _records_json(graph: Any, kind: type) -> dict[str, Any]:
    """A record type's records as JSON-ready data; a plugin's that cannot be read is an error."""
    try:
        return {n: _jsonable(rec) for n, rec in graph.records(kind).items()}
    except IrperfError:
        raise
    except Exception as e:
        raise PluginError(f"{kind.__name__} records cannot be read: {describe(e)}") from e


def _total(graph: Any, kind: type) -> Any:
    """The sum of a record type's records (None if they do not add), as printed."""
    try:
        recs: list[Any] = list(graph.records(kind).values())
        if not (recs and hasattr(recs[0], "__add__")):
            return None
        total = _jsonable(sum(recs[1:], recs[0]))
        text = str(total)
    except IrperfError:
        raise
    except Exception as e:  # a plugin's record type that does not add up
        raise PluginError(f"{kind.__name__} records do not add up: {describe(e)}") from e
    if not all_finite(total):
        raise PluginError(f"{kind.__name__} records add up to a non-finite number: {show(total)}")
    return text


def list_passes(args: argparse.Namespace) -> int:
    import sys

    from irperf.api import _load_builtin_passes
    from irperf.pass_manager import entry_point_failures, get_pass, pass_names

    _load_builtin_passes()
    load_plugins(args.load)
    with plugin_output_on_stderr():
        names = [(name, get_pass(name).summary) for name in pass_names()]
    for name, summary in names:
        print(f"{name:20s} {summary}")
    for failure in entry_point_failures():
        print(f"irperf: warning: {failure}", file=sys.stderr)
    return 0
