"""``irperf sweep``: every combination of models, targets, request shapes and machine choices,
one CSV row per configuration and phase, each with the exact ``irperf schedule`` command that
reproduces it.

Rows: for each model, batch, phase and its shape (``prefill`` rows take each ``--seq-len``,
``decode`` rows each ``--context``), each target, ``--set`` value, precision, tp and fusion, in
that nesting, so the same arguments give the same file, and the rows that share a lowering come
together. A configuration that cannot run (heads the chips do not
divide, a bad target value) is a row with its ``error``, never a crash; one that does not fit is
a row with ``fits`` false and its times. An interrupted sweep resumes: rows whose ``command`` the
output already holds are skipped, new ones appended. ``--workers N`` runs N local processes;
``--executor dask --scheduler ADDRESS`` sends the rows to a Dask cluster (``sweep_dask``), and
``--out F.parquet`` writes Parquet (``sweep_parquet``): the same rows either way.

The CSV columns are a public contract (``COLUMNS``, one column per ``--set`` key before
``ttft_ms``).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import itertools
import math
import os
import shlex
import sys
from collections.abc import Callable, Generator, Iterator, Sequence
from typing import Any

from irperf.checks import show
from irperf.cli.common import UsageError
from irperf.cli.schedule import apply_sets, parse_set

LEADING = ("model", "target", "phase", "seq_len", "batch", "context", "precision", "tp", "fusion")
TRAILING = (
    "ttft_ms",
    "tpot_ms",
    "tokens_per_s_per_user",
    "aggregate_roofline_ms",
    "per_op_roofline_ms",
    "scheduled_ms",
    "bound",
    "fits",
    "error",
    "command",
)
CHUNK = 64
"""Configurations per task at most (local processes or Dask): a task's rows may share work."""
CHUNKS_PER_SLOT = 4
"""Fewer configurations per task on a short sweep, so every process or thread gets some."""


def columns(set_keys: Sequence[str]) -> list[str]:
    return [*LEADING, *set_keys, *TRAILING]


def _list(kind: type, what: str) -> Any:
    """A comma-separated list, each value once (a repeat would be a duplicate row); whole
    numbers from 1 where ``kind`` is int."""

    def parse(text: str) -> list[Any]:
        items = [t.strip() for t in text.split(",")]
        if not all(items):
            raise argparse.ArgumentTypeError(f"a comma-separated list of {what}, got {text!r:.60}")
        if kind is int:
            bad = [t for t in items if not (t.isascii() and t.isdigit() and int(t) >= 1)]
            if bad:
                raise argparse.ArgumentTypeError(f"{bad[0]!r:.40} is not a whole number from 1")
            return list(dict.fromkeys(int(t) for t in items))
        return list(dict.fromkeys(items))

    return parse


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("sweep", help="every combination of requests and designs, one CSV row each")
    p.add_argument("models", nargs="+", help="preset names or config files")
    p.add_argument("--target", nargs="+", default=["n300"], help="targets (default n300)")
    p.add_argument("--phase", type=_list(str, "phases"), default=["prefill", "decode"])
    p.add_argument("--seq-len", type=_list(int, "prompt lengths"), default=[128])
    p.add_argument("--context", type=_list(int, "cached positions"), default=[1024])
    p.add_argument("--batch", type=_list(int, "batch sizes"), default=[1])
    p.add_argument("--tp", type=_list(int, "chip counts"), default=None)
    p.add_argument("--precision", type=_list(str, "policies"), default=None)
    p.add_argument("--fusion", type=_list(str, "fusion strategies"), default=None)
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="a target parameter and its values (dram_bandwidth_bytes_per_s_per_chip=288e9,576e9)",
    )
    p.add_argument(
        "--out", required=True, help="the CSV file, or F.parquet for Parquet (resumed if it exists)"
    )
    p.add_argument("--workers", type=int, default=None, help="local processes (default 1)")
    p.add_argument(
        "--executor",
        choices=("local", "dask"),
        default="local",
        help="where rows are computed: this machine (default) or a Dask cluster (--scheduler)",
    )
    p.add_argument(
        "--scheduler", metavar="ADDRESS", help="the Dask scheduler (tcp://HOST:PORT) for dask"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def configurations(
    args: argparse.Namespace, sets: dict[str, list[str]]
) -> Iterator[dict[str, Any]]:
    """Every combination, a request (model, batch, phase, its prompt or context) outside and
    the designs it runs on (target, ``--set`` values, precision, tp, fusion) inside: rows that
    share a lowering come together, and a worker lowers it once."""
    keys = list(sets)
    for model, batch, phase in itertools.product(args.models, args.batch, args.phase):
        shapes = args.seq_len if phase == "prefill" else args.context
        for shape in shapes:
            for target in args.target:
                for values in itertools.product(*(sets[k] for k in keys)):
                    for precision, tp, fusion in itertools.product(
                        args.precision or [None], args.tp or [None], args.fusion or [None]
                    ):
                        yield {
                            "model": model,
                            "target": target,
                            "phase": phase,
                            "seq_len": shape if phase == "prefill" else None,
                            "context": shape if phase == "decode" else None,
                            "batch": batch,
                            "precision": precision,
                            "tp": tp,
                            "fusion": fusion,
                            "sets": dict(zip(keys, values, strict=True)),
                        }


def command(c: dict[str, Any]) -> str:
    words = ["irperf", "schedule", c["model"], "--target", c["target"], "--phase", c["phase"]]
    if c["seq_len"] is not None:
        words += ["--seq-len", str(c["seq_len"])]
    if c["context"] is not None:
        words += ["--context", str(c["context"])]
    words += ["--batch", str(c["batch"])]
    for flag in ("precision", "tp", "fusion"):
        if c[flag] is not None:
            words += [f"--{flag}", str(c[flag])]
    for k, v in c["sets"].items():
        words += ["--set", f"{k}={v}"]
    return shlex.join(words)


def rows_for(chunk: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """A chunk of configurations' rows, in order: one task of a parallel sweep."""
    return [row(c) for c in chunk]


def row(c: dict[str, Any], fast: bool = True) -> dict[str, Any]:
    """One configuration, scheduled: its CSV row (``error`` set where it cannot run). ``fast``:
    by the folded path (``irperf/cli/sweep_fast.py``) where it serves the row, the same
    figures as ``irperf schedule``'s."""
    from irperf.cli import build_parser
    from irperf.cli.schedule import schedule_report
    from irperf.errors import IrperfError

    out: dict[str, Any] = {k: c[k] for k in LEADING}
    out.update(c["sets"])
    out["command"] = command(c)
    if fast:
        quick = _fast(out["command"], c["phase"])
        if quick is not None:
            out.update(quick)
            return out
    try:
        argv = shlex.split(out["command"])[1:]
        args = build_parser().parse_args([*argv, "--json"])
        report = schedule_report(args)
    except (IrperfError, SystemExit) as e:
        out["error"] = " ".join(str(e).split()) or type(e).__name__
        return out
    phase = report["phases"][c["phase"]]
    lat = phase["latency_ms"]
    ops = phase["ops"]
    bound = max(
        ("compute", "dram", "noc", "link", "dispatch"),
        key=lambda b: sum(o["end_us"] - o["start_us"] for o in ops if o["bound"] == b),
    )
    out.update(
        precision=report["precision"],
        tp=report["tp"],
        fusion=report["fusion"],
        ttft_ms=report["ttft_ms"],
        tpot_ms=report["tpot_ms"],
        tokens_per_s_per_user=report["tokens_per_s_per_user"],
        aggregate_roofline_ms=lat["aggregate_roofline"],
        per_op_roofline_ms=lat["per_op"],
        scheduled_ms=lat["scheduled"],
        bound=bound,
        fits=report["fits"],
    )
    return out


def _fast(text: str, phase: str) -> dict[str, Any] | None:
    from irperf.cli.sweep_fast import row_of
    from irperf.errors import IrperfError

    try:
        quick = row_of([*shlex.split(text)[1:], "--json"], phase)
    except (IrperfError, SystemExit):
        return None  # the whole path says why, as its row
    if quick is None:
        return None
    ms = quick["scheduled_ms"]
    prefill = phase == "prefill"
    quick |= {
        "ttft_ms": ms if prefill else None,
        "tpot_ms": None if prefill else ms,
        "tokens_per_s_per_user": None if prefill or not ms else 1000.0 / ms,
    }
    return quick


def done_commands(path: str, header: list[str]) -> set[str]:
    """The commands an existing output holds (resume), after checking its header."""
    if not os.path.exists(path):
        return set()
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            first = next(reader, None)
            if first is None:
                return set()
            if first != header:
                raise UsageError(
                    f"sweep: {show(path)} has other columns than this sweep; give a new --out"
                )
            at = header.index("command")
            return {r[at] for r in reader if len(r) == len(header)}
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise UsageError(f"sweep: cannot resume from {show(path)}: {e}") from None


def run(args: argparse.Namespace) -> int:
    sets: dict[str, list[str]] = {}
    for item in args.set:
        key, values = parse_set(item, many=True)
        if key in sets:
            raise UsageError(f"sweep: --set {key} given twice")
        sets[key] = values

    for key, values in sets.items():
        for v in values:  # a bad key or value is refused before any row runs
            _check_set(args.target, key, v)
        sets[key] = _once(values)
    _check_values(args)
    _check_executor(args)
    bad = [p for p in args.phase if p not in ("prefill", "decode")]
    if bad:
        raise UsageError(f"sweep: --phase {bad[0]!r:.40}: valid: prefill, decode")
    header = columns(list(sets))
    journal, done = args.out, set()
    parquet = args.out.lower().endswith(".parquet")
    if parquet:
        from irperf.cli import sweep_parquet

        journal = sweep_parquet.journal(args.out)
        done = sweep_parquet.done_commands(args.out, header)
    _drop_partial_line(journal)  # first: a half-written row is not done, whatever it holds
    done |= done_commands(journal, header)
    todo = [c for c in configurations(args, sets) if command(c) not in done]
    with contextlib.ExitStack() as stack:
        rows = stack.enter_context(contextlib.closing(_executor(args, stack)(todo)))
        _write(journal, header, rows, _progress(len(todo), args.quiet))
    if parquet:
        sweep_parquet.finish(args.out, journal, header)
    print(f"wrote {len(todo)} rows to {args.out} ({len(done)} already there)", file=sys.stderr)
    return 0


def _check_set(targets: Sequence[str], key: str, value: str) -> None:
    """``--set KEY=VALUE`` is a numeric parameter of a target file and a number; a value that
    only some targets refuse (an L1 above one chip's) is those rows' error, not the sweep's."""
    from irperf.errors import IrperfError
    from targets import load_target

    problems = []
    for name in targets:
        try:
            apply_sets(load_target(name), [f"{key}={value}"])
        except (UsageError, IrperfError) as e:
            problems.append(e)
        else:
            return
    raise problems[0]


def _write(
    path: str, header: list[str], rows: Iterator[dict[str, Any]], progress: Callable[[int], None]
) -> None:
    """Append each row as it comes (a killed sweep keeps what it wrote)."""
    fresh = not os.path.exists(path) or os.path.getsize(path) == 0
    try:
        with open(path, "a", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=header, extrasaction="ignore")
            if fresh:
                writer.writeheader()
            for r in rows:
                writer.writerow({k: ("" if v is None else v) for k, v in r.items()})
                f.flush()
                progress(1)
    except OSError as e:
        raise UsageError(f"sweep: cannot write {show(path)}: {e.strerror or e}") from None
    finally:
        progress(0)


def _check_executor(args: argparse.Namespace) -> None:
    if args.executor == "dask":
        if args.scheduler is None:
            raise UsageError("sweep: --executor dask needs --scheduler tcp://HOST:PORT")
        if args.workers is not None:
            raise UsageError(
                "sweep: --workers is for --executor local; a Dask cluster has its own workers"
            )
        return
    if args.scheduler is not None:
        raise UsageError("sweep: --scheduler needs --executor dask")
    if args.workers is not None and not 1 <= args.workers <= 256:
        raise UsageError(f"sweep: --workers {args.workers}: from 1 to 256")


Rows = Callable[[list[dict[str, Any]]], Generator[dict[str, Any]]]


def _executor(args: argparse.Namespace, stack: contextlib.ExitStack[Any]) -> Rows:
    """What computes the rows, in order: local processes, or a Dask cluster (connected now and
    closed with ``stack``, so an unreachable scheduler fails before the file is touched)."""
    if args.executor == "local":
        workers = args.workers or 1
        return lambda todo: _local_rows(todo, workers)
    from irperf.cli import sweep_dask

    client = stack.enter_context(sweep_dask.connect(args.scheduler))
    return lambda todo: sweep_dask.rows(
        client, args.scheduler, chunks(todo, sweep_dask.threads(client))
    )


def chunks(todo: list[dict[str, Any]], slots: int) -> list[list[dict[str, Any]]]:
    """``todo`` cut into contiguous tasks of at most ``CHUNK``, small enough that ``slots``
    processes or threads each get a few."""
    size = max(1, min(CHUNK, math.ceil(len(todo) / (slots * CHUNKS_PER_SLOT))))
    return [todo[i : i + size] for i in range(0, len(todo), size)]


def _once(values: list[str]) -> list[str]:
    """Each numeric value once, however it is spelled (``1e9`` and ``1.0e9``), in order."""
    first: dict[float, str] = {}
    for v in values:
        first.setdefault(float(v), v)
    return list(first.values())


def _check_values(args: argparse.Namespace) -> None:
    """Values malformed on their own are refused before any row runs; error rows are for
    combinations that cannot run."""
    from lowering.model import MAX_BATCH
    from passes.fusion_rules import get_strategy
    from passes.precision import load_policy
    from targets import load_target

    for target in args.target:
        load_target(target)
    for policy in args.precision or []:
        load_policy(policy)
    for strategy in args.fusion or []:
        get_strategy(strategy)
    if max(args.batch) > MAX_BATCH:
        raise UsageError(f"sweep: --batch {max(args.batch)}: at most {MAX_BATCH:,}")
    from lowering import load_model_config

    for model in args.models:
        load_model_config(model)


def _drop_partial_line(path: str) -> None:
    """A sweep killed while writing may leave half a row: cut it, so appending starts a line."""
    try:
        with open(path, "rb+") as f:
            data = f.read()
            if data and not data.endswith(b"\n"):
                f.truncate(data.rfind(b"\n") + 1)
    except FileNotFoundError:
        return
    except OSError as e:
        raise UsageError(f"sweep: cannot resume {show(path)}: {e.strerror or e}") from None


def _local_rows(todo: list[dict[str, Any]], workers: int) -> Generator[dict[str, Any]]:
    if workers == 1 or len(todo) < 2:
        for chunk in chunks(todo, 1):
            yield from rows_for(chunk)
        return
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        for rows in pool.imap(rows_for, chunks(todo, workers)):  # in order: one process's file
            yield from rows


def _progress(total: int, quiet: bool) -> Any:
    """tqdm's bar on a terminal when it is installed (the ``progress`` extra); else nothing."""
    if quiet or not sys.stderr.isatty():
        return lambda n: None
    import importlib

    try:
        tqdm = importlib.import_module("tqdm").tqdm
    except ImportError:
        return lambda n: None
    bar = tqdm(total=total, unit="config", file=sys.stderr)

    def step(n: int) -> None:
        if n:
            bar.update(n)
        else:
            bar.close()

    return step
