"""The ``irperf`` command line. Errors are one line on stderr with exit code 2."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from irperf.cli import analyze, fusion, info, lower, report, run
from irperf.cli.common import Parser
from irperf.errors import IrperfError

SUBCOMMANDS = (info, lower, analyze, fusion, report, run)


def build_parser() -> Parser:
    parser = Parser(
        prog="irperf", description="A compiler-style performance model for ML accelerators."
    )
    parser.add_argument("--version", action="version", version="irperf 0.1.0")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for module in SUBCOMMANDS:
        module.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        code: int = args.func(args)
        return code
    except IrperfError as e:
        print(f"irperf: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
