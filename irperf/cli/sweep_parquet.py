"""``irperf sweep --out F.parquet``: the sweep's rows as a Parquet file, with typed columns.

A Parquet file is written whole, so while a sweep runs its rows go to a CSV journal beside it,
``F.parquet.partial.csv``, one row at a time exactly as ``--out F.csv`` would write them; at the
end the rows of ``F.parquet`` (when resuming), then the journal's, become the new ``F.parquet``
(written to a temporary file, then renamed) and the journal is removed. A killed sweep leaves
the journal, and the next run resumes from it and from ``F.parquet``.

Column types: the CSV's columns in the CSV's order; counts (``seq_len``, ``batch``,
``context``, ``tp``) int64, ``--set`` values and times float64, ``fits`` bool, the rest
strings; a cell the CSV leaves empty is null.
"""

from __future__ import annotations

import csv
import importlib
import os
from collections.abc import Callable
from typing import Any

from irperf.checks import show
from irperf.cli.common import UsageError

MISSING = "sweep --out F.parquet needs pyarrow: pip install 'irperf[parquet]'"
INTS = ("seq_len", "batch", "context", "tp")
STRINGS = ("model", "target", "phase", "precision", "fusion", "bound", "error", "command")
BOOLS = ("fits",)


def _pyarrow() -> tuple[Any, Any]:
    try:
        return importlib.import_module("pyarrow"), importlib.import_module("pyarrow.parquet")
    except ImportError:
        raise UsageError(MISSING) from None


def journal(path: str) -> str:
    """Where the rows of a Parquet sweep go while it runs (after checking pyarrow is there)."""
    _pyarrow()
    return f"{path}.partial.csv"


def schema(header: list[str]) -> Any:
    pa, _ = _pyarrow()

    def kind(column: str) -> Any:
        if column in INTS:
            return pa.int64()
        if column in STRINGS:
            return pa.string()
        if column in BOOLS:
            return pa.bool_()
        return pa.float64()  # a --set value or a time

    return pa.schema([(c, kind(c)) for c in header])


def _read(path: str, header: list[str]) -> Any:
    """The table an existing Parquet output holds (None if there is none), its columns checked."""
    if not os.path.exists(path):
        return None
    pa, pq = _pyarrow()
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as e:
        raise UsageError(f"sweep: cannot resume from {show(path)}: {e}") from None
    if table.column_names != header:
        raise UsageError(f"sweep: {show(path)} has other columns than this sweep; give a new --out")
    try:
        return table.cast(schema(header))
    except pa.ArrowException as e:
        raise UsageError(f"sweep: cannot resume from {show(path)}: {e}") from None


def done_commands(path: str, header: list[str]) -> set[str]:
    """The commands a finished Parquet output holds (resume)."""
    table = _read(path, header)
    return set() if table is None else set(table.column("command").to_pylist())


def _typed(column: str) -> Callable[[str], Any]:
    if column in INTS:
        return int
    if column in STRINGS:
        return str
    if column in BOOLS:
        return lambda text: text == "True"
    return float


def finish(path: str, journal_path: str, header: list[str]) -> None:
    """``path``'s old rows, then the journal's, written as the new ``path``; the journal goes."""
    pa, pq = _pyarrow()
    parse = {c: _typed(c) for c in header}
    try:
        with open(journal_path, newline="", encoding="utf-8") as f:
            rows = [
                {c: (parse[c](v) if v != "" else None) for c, v in r.items()}
                for r in csv.DictReader(f)
            ]
    except (OSError, UnicodeDecodeError, csv.Error, ValueError) as e:
        raise UsageError(f"sweep: cannot read {show(journal_path)}: {e}") from None
    old = _read(path, header)
    if old is not None:  # a run killed between writing the file and removing the journal
        # left rows in both: the file's count once
        have = set(old.column("command").to_pylist())
        rows = [r for r in rows if r["command"] not in have]
    table = pa.Table.from_pylist(rows, schema=schema(header))
    if old is not None:
        table = pa.concat_tables([old, table])
    temporary = f"{path}.writing"
    try:
        pq.write_table(table, temporary)
        os.replace(temporary, path)
        os.remove(journal_path)
    except OSError as e:
        raise UsageError(f"sweep: cannot write {show(path)}: {e.strerror or e}") from None
