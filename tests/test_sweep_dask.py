"""irperf sweep --executor dask: a LocalCluster on the loopback writes the local run's file."""

from __future__ import annotations

import contextlib
import csv
import re
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from irperf.cli import main, sweep_dask

SMALL = ["sweep", "llama-3.2-1b", "--target", "n150", "n300", "--seq-len", "128,256",
         "--context", "512", "--batch", "1,2", "--quiet"]  # fmt: skip
ROWS = 2 * 2 * (2 + 1)  # targets x batches x (prompt lengths + contexts)


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,  # workers import irperf by name, as on a real cluster
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        yield str(cluster.scheduler_address)


@pytest.fixture(scope="module")
def local_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("local") / "local.csv"
    assert main([*SMALL, "--out", str(out)]) == 0
    return out


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_dask_writes_the_local_file_and_resumes(
    tmp_path: Path, capsys: Any, scheduler: str, local_run: Path
) -> None:
    out = tmp_path / "dask.csv"
    argv = [*SMALL, "--executor", "dask", "--scheduler", scheduler, "--out", str(out)]
    assert main(argv) == 0
    assert len(_rows(out)) == ROWS
    assert _rows(out) == _rows(local_run)
    assert out.read_bytes() == local_run.read_bytes()
    # Resume on the cluster: two rows lost and one half written are made again, in place.
    lines = out.read_bytes().splitlines(keepends=True)
    out.write_bytes(b"".join(lines[:-3]) + lines[-3][:30])
    capsys.readouterr()
    assert main(argv) == 0
    assert f"wrote 3 rows to {out} ({ROWS - 3} already there)" in capsys.readouterr().err
    assert out.read_bytes() == local_run.read_bytes()


def test_an_unreachable_scheduler_is_one_line(
    tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("distributed")
    with socket.socket() as s:  # a loopback port nothing listens on
        s.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setattr(sweep_dask, "CONNECT_TIMEOUT_S", 0.5)
    out = tmp_path / "x.csv"
    argv = [*SMALL, "--executor", "dask", "--scheduler", address, "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert (
        err == f"irperf: error: sweep: cannot reach the Dask scheduler at {address} within 0.5 s\n"
    )
    assert not out.exists()


def test_without_the_extra(tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed: ImportError
    argv = [*SMALL, "--executor", "dask", "--scheduler", "tcp://127.0.0.1:8786"]
    assert main([*argv, "--out", str(tmp_path / "x.csv")]) == 2
    assert capsys.readouterr().err == (
        "irperf: error: sweep --executor dask needs the dask extra: pip install 'irperf[dask]'\n"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--executor", "dask"], "--executor dask needs --scheduler tcp://HOST:PORT"),
        (["--scheduler", "tcp://127.0.0.1:8786"], "--scheduler needs --executor dask"),
        (
            ["--executor", "dask", "--scheduler", "tcp://127.0.0.1:8786", "--workers", "2"],
            "--workers is for --executor local",
        ),
        (["--executor", "ray"], "invalid choice: 'ray'"),
    ],
)
def test_bad_executor_flags(tmp_path: Path, capsys: Any, argv: list[str], message: str) -> None:
    assert main([*SMALL, "--out", str(tmp_path / "x.csv"), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_a_bad_address_is_one_line(tmp_path: Path, capsys: Any) -> None:
    pytest.importorskip("distributed")
    argv = [*SMALL, "--executor", "dask", "--scheduler", "http://x:1"]
    assert main([*argv, "--out", str(tmp_path / "x.csv")]) == 2
    err = capsys.readouterr().err
    assert "--scheduler 'http://x:1': give the scheduler's address, tcp://HOST:PORT" in err
    assert err.count("\n") == 1


class _Failing:
    """A client whose every task fails with ``error`` (a dead worker, a lost scheduler)."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def nthreads(self) -> dict[str, int]:
        return {"tcp://127.0.0.1:1": 1}

    def submit(self, fn: Any, chunk: Any) -> Any:
        error = self.error

        class Future:
            def result(self) -> Any:
                raise error

            def cancel(self) -> None:
                pass

        return Future()


@pytest.mark.parametrize(
    ("error", "message"),
    [
        ("KilledWorker", "a Dask worker died computing sweep rows (task 'rows_for-1')"),
        (ModuleNotFoundError("No module named 'irperf'", name="irperf"), "cannot import irperf"),
        (OSError("Stream is closed"), "lost the Dask scheduler at tcp://127.0.0.1:1"),
        ("FutureCancelledError", "lost the Dask scheduler at tcp://127.0.0.1:1"),
    ],
)
def test_a_failing_cluster_is_one_line(
    tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch, error: Any, message: str
) -> None:
    distributed = pytest.importorskip("distributed")
    if error == "FutureCancelledError":  # what a lost scheduler leaves each future with
        from distributed.client import FutureCancelledError

        error = FutureCancelledError("rows_for-1", "scheduler-connection-lost", "a second line")
    if error == "KilledWorker":
        # its constructor's arguments change between versions; the message reads only the task
        error = distributed.KilledWorker.__new__(distributed.KilledWorker, "rows_for-1")

    @contextlib.contextmanager
    def connect(address: str) -> Iterator[Any]:
        yield _Failing(error)

    monkeypatch.setattr(sweep_dask, "connect", connect)
    out = tmp_path / "x.csv"
    argv = [*SMALL, "--executor", "dask", "--scheduler", "tcp://127.0.0.1:1", "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert out.read_text().count("\n") == 1  # the header: a rerun resumes


def test_a_malformed_address_is_one_line_and_quick(tmp_path: Path, capsys: Any) -> None:
    pytest.importorskip("distributed")
    for address in ("garbage", "", "tcp://host"):
        argv = [*SMALL, "--executor", "dask", "--scheduler", address]
        assert main([*argv, "--out", str(tmp_path / "x.csv")]) == 2
        err = capsys.readouterr().err
        assert "give the scheduler's address, tcp://HOST:PORT" in err and err.count("\n") == 1


class _Cluster:
    """A scheduler that answers: ``workers`` (address -> irperf's spec, None: not installed)."""

    def __init__(self, workers: dict[str, Any]) -> None:
        self.workers = workers

    def wait_for_workers(self, n: int, timeout: float) -> None:
        if not self.workers:
            raise TimeoutError("no workers")

    def run(self, fn: Any, *args: Any) -> dict[str, Any]:
        return dict(self.workers)


@pytest.mark.parametrize(
    ("workers", "message"),
    [
        ({}, "has no worker (waited 10 s)"),
        ({"tcp://10.0.0.2:1": None}, "1 Dask worker(s) of tcp://h:1 cannot import irperf"),
    ],
)
def test_workers_that_cannot_run_the_sweep_are_one_line(workers: Any, message: str) -> None:
    """Checked before any task: a worker without irperf cannot even read one (it would leave
    the sweep waiting forever)."""
    from irperf.cli.common import UsageError

    with pytest.raises(UsageError, match=re.escape(message)):
        sweep_dask._check_workers(_Cluster(workers), "tcp://h:1", 10.0)
    sweep_dask._check_workers(_Cluster({"tcp://10.0.0.2:1": object()}), "tcp://h:1", 10.0)
