"""The ``irperf`` command line. Errors are one line on stderr with exit code 2.

What a user gives irperf and what irperf does with a bad one (``docs/errors.md``):

- bad input of any kind (an unknown name, a number out of range, a malformed file, a failing
  plugin, a flag that means nothing for the command, output that cannot be written): one line
  ``irperf: error: ...`` on stderr, exit code 2;
- a bug in irperf itself: one line ``irperf: internal error: ...``, exit code 70
  (``IRPERF_DEBUG=1`` shows the traceback);
- a reader that stops early (``| head``): exit code 0, nothing more printed.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Sequence

from irperf.api import check_packages
from irperf.checks import message_of, one_line, show
from irperf.cli import (
    analyze,
    calibrate,
    fusion,
    info,
    lower,
    place,
    report,
    run,
    schedule,
    sweep,
)
from irperf.cli.common import Parser
from irperf.errors import IrperfError

SUBCOMMANDS = (info, lower, analyze, place, schedule, sweep, calibrate, fusion, report, run)

EXIT_USAGE = 2
EXIT_INTERNAL = 70  # EX_SOFTWARE (sysexits.h)
EXIT_INTERRUPTED = 130
MESSAGE_CHARS = 400
"""A message longer than this is cut: one line a terminal shows whole."""

DEBUG_ENV = "IRPERF_DEBUG"


def build_parser() -> Parser:
    parser = Parser(
        prog="irperf", description="A compiler-style performance model for ML accelerators."
    )
    parser.add_argument("--version", action="version", version="irperf 0.1.0")
    sub = parser.add_subparsers(dest="command", parser_class=Parser, metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.add_parsers(sub)
    return parser


def _say(prefix: str, message: str) -> None:
    text = one_line(message)
    if len(text) > MESSAGE_CHARS:
        text = text[: MESSAGE_CHARS - 3] + "..."
    with contextlib.suppress(OSError, ValueError):  # stderr closed: the exit code still says it
        print(f"irperf: {prefix}: {text}", file=sys.stderr)


def _tolerant_streams() -> None:
    """Characters the terminal's encoding lacks (a file name in another script, under
    ``PYTHONIOENCODING=ascii``) are escaped, never a UnicodeEncodeError."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            with contextlib.suppress(OSError, ValueError):
                reconfigure(errors="backslashreplace")


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush of it cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    _tolerant_streams()
    if sys.stdout is None:  # started with stdout closed (>&-)
        _say("error", "cannot write output: stdout is closed")
        return EXIT_USAGE
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        check_packages()
        if args.command is None:
            parser.print_help()
            _say("error", "no command given; choose one of the commands above")
            return EXIT_USAGE
        code: int = args.func(args)
        sys.stdout.flush()
        return code
    except IrperfError as e:
        _say("error", message_of(e))
        return EXIT_USAGE
    except BrokenPipeError:  # the reader stopped early (| head): not an error
        _silence_stdout()
        return 0
    except OSError as e:
        if e.filename is not None:  # a file the user named
            _say("error", f"cannot use {show(os.fsdecode(e.filename))}: {e.strerror or e}")
            return EXIT_USAGE
        _silence_stdout()  # stdout itself failed (a full disk, /dev/full)
        _say("error", f"cannot write output: {e.strerror or e}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        _say("error", "interrupted")
        return EXIT_INTERRUPTED
    except Exception as e:
        if sys.stdout is None or getattr(sys.stdout, "closed", False):  # a plugin closed it
            _say("error", "cannot write output: stdout was closed")
            return EXIT_USAGE
        if os.environ.get(DEBUG_ENV):
            raise
        _say(
            "internal error",
            f"{type(e).__name__}: {message_of(e)} (a bug in irperf; {DEBUG_ENV}=1 shows the "
            "traceback)",
        )
        return EXIT_INTERNAL


def console() -> None:
    """The ``irperf`` program: ``main``, then exit even if a plugin left a thread running (the
    interpreter would wait for it forever)."""
    code = main()
    others = [t for t in threading.enumerate() if t is not threading.main_thread()]
    if any(t.is_alive() and not t.daemon for t in others):
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    console()
