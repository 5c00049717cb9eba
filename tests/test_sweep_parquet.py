"""irperf sweep --out F.parquet: the CSV's rows and columns, typed; resumed through a journal."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Any

import pytest

from irperf.cli import main

SWEEP = ["sweep", "llama-3.2-1b", "--target", "n150", "n300", "--seq-len", "128",
         "--context", "512", "--tp", "1,2", "--set", "clock_hz=1e9,1.2e9", "--quiet"]  # fmt: skip
ROWS = 2 * 2 * 2 * (1 + 1)  # targets x clocks x tp x (prompt lengths + contexts)
TYPES = {"seq_len": "int64", "batch": "int64", "context": "int64", "tp": "int64",
         "clock_hz": "double", "ttft_ms": "double", "tpot_ms": "double",
         "tokens_per_s_per_user": "double", "aggregate_roofline_ms": "double",
         "per_op_roofline_ms": "double", "scheduled_ms": "double", "fits": "bool"}  # fmt: skip


@pytest.fixture(scope="module")
def csv_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("csv") / "sweep.csv"
    assert main([*SWEEP, "--out", str(out)]) == 0
    return out


def _table(path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    pq = pytest.importorskip("pyarrow.parquet")
    table = pq.read_table(path)
    return table.column_names, table.to_pylist()


def _as_csv(value: Any) -> str:
    return "" if value is None else str(value)


def test_parquet_holds_the_csv_rows_typed(tmp_path: Path, csv_run: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "sweep.parquet"
    assert main([*SWEEP, "--out", str(out)]) == 0
    with open(csv_run, newline="") as f:
        reader = csv.DictReader(f)
        header, expected = list(reader.fieldnames or []), list(reader)
    names, rows = _table(out)
    assert names == header and len(rows) == ROWS
    schema = pq.read_schema(out)
    assert {n: str(schema.field(n).type) for n in TYPES} == TYPES
    assert {str(schema.field(n).type) for n in names if n not in TYPES} == {"string"}
    assert any(r["error"] for r in rows) and any(r["fits"] for r in rows)  # tp 2 on n150
    for got, want in zip(rows, expected, strict=True):
        assert got["clock_hz"] == float(want["clock_hz"])
        assert {k: _as_csv(v) for k, v in got.items() if k != "clock_hz"} == {
            k: v for k, v in want.items() if k != "clock_hz"
        }  # numbers written back exactly: str(float) round-trips
    assert not (tmp_path / "sweep.parquet.partial.csv").exists()


def test_parquet_resumes(tmp_path: Path, capsys: Any, csv_run: Path) -> None:
    pytest.importorskip("pyarrow")
    whole = tmp_path / "whole.parquet"
    assert main([*SWEEP, "--out", str(whole)]) == 0
    # A killed run left its journal (the CSV so far, the last row half written): resumed.
    out = tmp_path / "killed.parquet"
    lines = csv_run.read_bytes().splitlines(keepends=True)
    (tmp_path / "killed.parquet.partial.csv").write_bytes(b"".join(lines[:5]) + lines[5][:40])
    capsys.readouterr()
    assert main([*SWEEP, "--out", str(out)]) == 0
    assert f"wrote {ROWS - 4} rows to {out} (4 already there)" in capsys.readouterr().err
    assert _table(out) == _table(whole)
    # A finished file grows: its rows stay first, the new ones follow.
    assert main([*SWEEP, "--batch", "1,2", "--out", str(out)]) == 0
    assert f"wrote {ROWS} rows to {out} ({ROWS} already there)" in capsys.readouterr().err
    rows = _table(out)[1]
    assert rows[:ROWS] == _table(whole)[1] and {r["batch"] for r in rows[ROWS:]} == {2}
    assert not (tmp_path / "killed.parquet.partial.csv").exists()
    # Killed between writing the file and removing the journal: the rows count once.
    (tmp_path / "whole.parquet.partial.csv").write_bytes(csv_run.read_bytes())
    assert main([*SWEEP, "--out", str(whole)]) == 0
    assert _table(whole)[1] == _table(tmp_path / "killed.parquet")[1][:ROWS]


def test_without_pyarrow(tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow: ImportError
    assert main([*SWEEP, "--out", str(tmp_path / "x.parquet")]) == 2
    assert capsys.readouterr().err == (
        "irperf: error: sweep --out F.parquet needs pyarrow: pip install 'irperf[parquet]'\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_a_foreign_parquet_is_not_resumed(tmp_path: Path, capsys: Any) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    other = tmp_path / "other.parquet"
    pq.write_table(pa.table({"a": [1]}), other)
    assert main([*SWEEP, "--out", str(other)]) == 2
    assert "other columns" in capsys.readouterr().err
    broken = tmp_path / "broken.parquet"
    broken.write_text("not parquet\n")
    assert main([*SWEEP, "--out", str(broken)]) == 2
    err = capsys.readouterr().err
    assert "cannot resume from" in err and err.count("\n") == 1
