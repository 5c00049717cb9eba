"""irperf sweep: the CSV contract, every combination, errors as rows, resume, reproduction."""

from __future__ import annotations

import csv
import json
import shlex
from pathlib import Path
from typing import Any

import pytest

from irperf.cli import main

B11 = "llama-3.2-11b-vision"
CONTRACT = [  # the columns, one per --set key before ttft_ms
    "model", "target", "phase", "seq_len", "batch", "context", "precision", "tp", "fusion",
    "dram_bandwidth_bytes_per_s_per_chip",
    "ttft_ms", "tpot_ms", "tokens_per_s_per_user", "aggregate_roofline_ms",
    "per_op_roofline_ms", "scheduled_ms", "bound", "fits", "error", "command",
]  # fmt: skip


def _rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def test_every_combination_errors_as_rows_and_resume(tmp_path: Path, capsys: Any) -> None:
    out = tmp_path / "sweep.csv"
    argv = ["sweep", B11, "--seq-len", "128,256", "--context", "512", "--batch", "1,4",
            "--tp", "2,3", "--set", "dram_bandwidth_bytes_per_s_per_chip=288e9,576e9",
            "--out", str(out), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    header, rows = _rows(out)
    assert header == CONTRACT
    # 2 bandwidths x 2 tp x 2 batches x (2 prompt lengths + 1 context)
    assert len(rows) == 2 * 2 * 2 * (2 + 1)
    bad = [r for r in rows if r["tp"] == "3"]
    assert bad and all("has 2 chips" in r["error"] and not r["scheduled_ms"] for r in bad)
    good = [r for r in rows if r["tp"] == "2"]
    assert all(not r["error"] and r["fits"] == "True" for r in good)
    for r in good:
        if r["phase"] == "prefill":
            assert r["ttft_ms"] == r["scheduled_ms"] and not r["tpot_ms"] and r["seq_len"]
        else:
            assert r["tpot_ms"] == r["scheduled_ms"] and r["context"] == "512"
            assert float(r["tokens_per_s_per_user"]) == pytest.approx(1000 / float(r["tpot_ms"]))
    # Twice the DRAM bandwidth: a DRAM-bound decode step is faster, though not twice.
    step = {
        (r["dram_bandwidth_bytes_per_s_per_chip"], r["batch"]): float(r["tpot_ms"])
        for r in good
        if r["phase"] == "decode"
    }
    assert step["288e9", "1"] / 2 < step["576e9", "1"] < step["288e9", "1"]
    # Resume: nothing is redone; a lost row is made again, a half-written one replaced.
    lines = out.read_text().splitlines(keepends=True)
    out.write_text("".join(lines[:-1]) + lines[-1][:20])
    capsys.readouterr()
    assert main(argv) == 0
    assert "wrote 1 rows" in capsys.readouterr().err
    assert _rows(out)[1] == rows
    # The command column reproduces the row.
    again = shlex.split(good[-1]["command"])[1:]
    assert main([*again, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["phases"][good[-1]["phase"]]["latency_ms"]["scheduled"] == pytest.approx(
        float(good[-1]["scheduled_ms"])
    )


def test_workers_write_the_same_file(tmp_path: Path) -> None:
    one, two = tmp_path / "one.csv", tmp_path / "two.csv"
    base = ["sweep", B11, "--phase", "decode", "--context", "128,1024", "--quiet"]
    assert main([*base, "--out", str(one)]) == 0
    assert main([*base, "--out", str(two), "--workers", "2"]) == 0
    assert one.read_text() == two.read_text()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--set", "dram=1,2"], "not a numeric target parameter"),
        (["--set", "dram_bandwidth_bytes_per_s_per_chip=fast"], "not a number"),
        (["--set", "dram_bandwidth_bytes_per_s_per_chip=-1"], "dram_bandwidth"),
        (["--set", "l1_usable_bytes_per_core=1.5"], "a whole number"),
        (["--batch", "1,x"], "not a whole number"),
        (["--phase", "train"], "valid: prefill, decode"),
        (["--workers", "0"], "from 1 to 256"),
        (["--batch", "0"], "not a whole number from 1"),
        (["--context", "0"], "not a whole number from 1"),
        (["--tp", "x"], "not a whole number from 1"),
        (["--precision", "bogus"], "bogus"),
        (["--fusion", "bogus"], "unknown fusion strategy"),
        (["--target", "n300", "nope"], "unknown target"),
    ],
)
def test_bad_sweeps(tmp_path: Path, capsys: Any, argv: list[str], message: str) -> None:
    assert main(["sweep", B11, "--out", str(tmp_path / "x.csv"), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_repeated_values_run_once(tmp_path: Path) -> None:
    out = tmp_path / "once.csv"
    argv = ["sweep", B11, "--phase", "decode", "--batch", "1,1", "--out", str(out), "--quiet",
            "--set", "clock_hz=1e9,1.0e9"]  # fmt: skip
    assert main(argv) == 0
    assert len(_rows(out)[1]) == 1


def test_a_foreign_csv_is_not_resumed(tmp_path: Path, capsys: Any) -> None:
    out = tmp_path / "other.csv"
    out.write_text("a,b\n1,2\n")
    assert main(["sweep", B11, "--phase", "decode", "--out", str(out)]) == 2
    assert "other columns" in capsys.readouterr().err


def test_a_half_written_row_is_never_taken_for_done(tmp_path: Path, capsys: Any) -> None:
    """Resume cuts the half-written last line before reading what is done: a row cut between
    its CR and LF, or inside its command (a prefix of another row's command), is made again."""
    argv = ["sweep", "llama-3.2-1b", "--target", "n150", "--phase", "decode", "--context", "1",
            "--set", "l1_usable_bytes_per_core=1000000,100000", "--quiet"]  # fmt: skip
    whole = tmp_path / "whole.csv"
    assert main([*argv, "--out", str(whole)]) == 0
    data = whole.read_bytes()
    assert data.endswith(b"100000\r\n")
    for cut in (data[:-1], data[:-2]):  # before the LF; inside the command ('...=10000')
        out = tmp_path / "cut.csv"
        out.write_bytes(cut)
        assert main([*argv, "--out", str(out)]) == 0
        assert out.read_bytes() == data


def test_a_set_value_only_some_targets_refuse_is_their_rows_error(tmp_path: Path) -> None:
    """Checked against every target, whatever their order: h100 refuses an L1 n300 takes."""
    for targets in (["n300", "h100"], ["h100", "n300"]):
        out = tmp_path / f"{targets[0]}.csv"
        l1 = "l1_usable_bytes_per_core=1400000"
        argv = ["sweep", "llama-3.2-1b", "--target", *targets, "--phase", "decode",
                "--set", l1, "--out", str(out), "--quiet"]  # fmt: skip
        assert main(argv) == 0
        errors = {r["target"]: r["error"] for r in _rows(out)[1]}
        assert errors["n300"] == "" and "l1_usable_bytes_per_core" in errors["h100"]
