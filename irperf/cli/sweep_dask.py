"""``irperf sweep --executor dask``: the sweep's rows computed on a Dask distributed cluster.

Each task is one chunk of configurations (``sweep.rows_for``), so a worker can reuse what the
chunk's rows share. Results come back in submission order, so the file is the one a local run
writes and a resumed run skips the same rows. At most a few chunks per worker thread are in
flight at a time: a long sweep never holds all its rows on the cluster.

The workers import irperf themselves (it travels by name, not by value): install the same
irperf on every worker.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
import re
import warnings
from collections import deque
from collections.abc import Generator, Iterator, Sequence
from concurrent.futures import CancelledError
from typing import Any

from irperf.cli.common import UsageError

CONNECT_TIMEOUT_S = 10.0
"""How long to try to reach the scheduler before giving up with one line."""
AHEAD_PER_THREAD = 4
"""Chunks in flight per worker thread: enough to keep every thread busy while one returns."""
MISSING = "sweep --executor dask needs the dask extra: pip install 'irperf[dask]'"


def _distributed() -> Any:
    try:
        return importlib.import_module("distributed")
    except ImportError:
        raise UsageError(MISSING) from None


@contextlib.contextmanager
def connect(address: str, timeout: float | None = None) -> Iterator[Any]:
    """A client of the scheduler at ``address``, closed on leaving; one line if it cannot be
    reached in ``timeout`` seconds (``CONNECT_TIMEOUT_S``)."""
    distributed = _distributed()
    wait = CONNECT_TIMEOUT_S if timeout is None else timeout
    if not _ADDRESS.match(address):  # before a Client exists: a failed one complains at exit
        raise UsageError(
            f"sweep: --scheduler {address!r:.80}: give the scheduler's address, "
            "tcp://HOST:PORT (or tls://, ws://, wss://, ucx://)"
        )
    _quiet()
    try:
        client = distributed.Client(address, timeout=wait, set_as_default=False)
    except ValueError as e:  # not an address: no scheme, no port, an unknown scheme
        raise UsageError(f"sweep: --scheduler {address!r:.80}: {e}") from None
    except (OSError, TimeoutError):
        raise UsageError(
            f"sweep: cannot reach the Dask scheduler at {address:.80} within {wait:g} s"
        ) from None
    try:
        _check_workers(client, address, wait)
        yield client
    finally:
        with contextlib.suppress(Exception):  # a scheduler already gone: nothing left to close
            client.close()


_ADDRESS = re.compile(r"^(tcp|tls|ws|wss|ucx)://[^\s/]+:\d{1,5}$")


def _quiet() -> None:
    """Dask's own logs and warnings (a lost connection's tracebacks, a version mismatch) would
    bury the sweep's one line: only critical ones show."""
    names = [
        n for n in logging.root.manager.loggerDict if n.split(".")[0] in ("distributed", "tornado")
    ]
    for name in ("distributed", "tornado", *names):  # dask configures its loggers one by one
        logging.getLogger(name).setLevel(logging.CRITICAL)
    warnings.filterwarnings("ignore", module=r"distributed(\..*)?$")


def _check_workers(client: Any, address: str, wait: float) -> None:
    """At least one worker within ``wait`` seconds, and irperf importable on every one (a
    worker without it cannot even read a task: it would leave the sweep waiting forever)."""
    try:
        client.wait_for_workers(1, timeout=wait)
    except (OSError, TimeoutError):
        raise UsageError(
            f"sweep: the Dask scheduler at {address:.80} has no worker (waited {wait:g} s)"
        ) from None
    found = client.run(importlib.util.find_spec, "irperf")
    lacking = sorted(w for w, spec in found.items() if spec is None)
    if lacking:
        raise UsageError(
            f"sweep: {len(lacking)} Dask worker(s) of {address:.80} cannot import irperf "
            f"({lacking[0]}): install the same irperf on every worker"
        )


def threads(client: Any) -> int:
    """The worker threads the cluster has now (at least 1: workers may join later)."""
    counts: dict[str, int] = client.nthreads()
    return max(1, sum(counts.values()))


def rows(
    client: Any, address: str, chunks: Sequence[Sequence[dict[str, Any]]]
) -> Generator[dict[str, Any]]:
    """Each chunk's rows, computed on the cluster, in the order of ``chunks``."""
    from irperf.cli.sweep import rows_for

    distributed = _distributed()
    ahead = AHEAD_PER_THREAD * threads(client)
    waiting: deque[Any] = deque()
    todo = iter(chunks)
    try:
        while True:
            for chunk in todo:
                waiting.append(client.submit(rows_for, list(chunk)))
                if len(waiting) >= ahead:
                    break
            if not waiting:
                return
            yield from waiting.popleft().result()
    except distributed.KilledWorker as e:  # its own message is a paragraph: name the task
        task = f" (task {e.args[0]!r:.80})" if e.args else ""
        raise UsageError(
            f"sweep: a Dask worker died computing sweep rows{task}; the rows written so far "
            "stay: run the sweep again to resume"
        ) from None
    except ImportError as e:  # a worker without irperf (or without a module it needs)
        raise UsageError(
            f"sweep: a Dask worker of {address:.80} cannot import {e.name or 'irperf'}: "
            "install the same irperf on every worker"
        ) from None
    except (OSError, TimeoutError, CancelledError) as e:  # the scheduler went away mid-sweep
        raise UsageError(
            f"sweep: lost the Dask scheduler at {address:.80} ({type(e).__name__}: "
            f"{' '.join(str(e).split()):.120}); the "
            "rows written so far stay: run the sweep again to resume"
        ) from None
    finally:
        for future in waiting:
            future.cancel()
