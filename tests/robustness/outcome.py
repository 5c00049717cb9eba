"""What every command must end in, whatever it was given: exit code 2 with one stderr line, or a
valid result (strict JSON, finite numbers, invariants that hold). The suite's one judge."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
from collections.abc import Sequence
from typing import Any

from hypothesis import settings

from irperf.cli import main

LONG = os.environ.get("IRPERF_ROBUSTNESS") == "long"
EXAMPLES = 1000 if LONG else 25
"""Examples per property: 25 in CI (the suite stays within its budget); a developer runs
``IRPERF_ROBUSTNESS=long python -m pytest tests/robustness`` for 1,000."""

robust = settings(max_examples=EXAMPLES, deadline=None, derandomize=not LONG)
"""CI runs the same examples every time (a red run reproduces); the long run explores."""

NON_FINITE = re.compile(r"(?<![\w.-])(nan|NaN|-?inf|-?Infinity)(?![\w.-])")
ERROR_PREFIX = "irperf: error: "
MAX_ERROR_CHARS = 420  # "irperf: error: " and a message cut at 400


@contextlib.contextmanager
def _no_env_debug() -> Any:
    saved = os.environ.pop("IRPERF_DEBUG", None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ["IRPERF_DEBUG"] = saved


def run_cli(argv: Sequence[str]) -> tuple[int, str, str]:
    """``irperf argv`` in this process: exit code, stdout, stderr. An exception escaping
    ``main`` fails the test (that is a traceback a user would see)."""
    out, err = io.StringIO(), io.StringIO()
    with _no_env_debug(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def _reject(constant: str) -> Any:
    raise AssertionError(f"non-strict JSON constant {constant}")


def assert_clean(argv: Sequence[str], code: int, out: str, err: str) -> Any:
    """The contract. Returns the parsed JSON of a successful ``--json`` run, else None."""
    where = f"irperf {' '.join(argv)[:300]}"
    assert "Traceback" not in err, f"{where}: traceback\n{err}"
    assert code in (0, 2), f"{where}: exit code {code}, stderr {err!r}"
    if code == 2:
        lines = err.splitlines()
        assert len(lines) == 1, f"{where}: {len(lines)} stderr lines: {err!r}"
        assert lines[0].startswith(ERROR_PREFIX), f"{where}: {err!r}"
        assert len(lines[0]) <= MAX_ERROR_CHARS, f"{where}: a {len(lines[0])}-char error"
        return None
    assert not NON_FINITE.search(out), f"{where}: non-finite number in output"
    if "--json" in argv:
        data = json.loads(out, parse_constant=_reject)
        assert_finite(data, where)
        return data
    return None


def assert_finite(value: Any, where: str) -> None:
    if isinstance(value, float):
        assert math.isfinite(value), f"{where}: {value}"
    elif isinstance(value, dict):
        for v in value.values():
            assert_finite(v, where)
    elif isinstance(value, list):
        for v in value:
            assert_finite(v, where)


def check_cli(argv: Sequence[str]) -> Any:
    """Run ``argv`` and hold it to the contract; the JSON of a ``--json`` success."""
    code, out, err = run_cli(argv)
    return assert_clean(argv, code, out, err)


def assert_analysis_invariants(report: dict[str, Any], where: str = "") -> None:
    """What an ``analyze --json`` report must satisfy for any input it accepted."""
    ops = report["ops"]
    totals = report["totals"]
    lat = report["latency_ms"]
    assert totals["flops"] == sum(o["flops"] for o in ops), where
    assert totals["bytes"] == sum(o["bytes_read"] + o["bytes_written"] for o in ops), where
    assert all(o["bytes_read"] >= 0 and o["bytes_written"] >= 0 for o in ops), where
    assert all(o["flops"] >= 0 and o["params"] >= 0 for o in ops), where
    assert all(isinstance(o[k], int) for o in ops for k in ("flops", "bytes_read")), where
    agg, per_op = lat["aggregate_roofline"], lat["per_op_roofline"]
    assert math.isfinite(agg) and math.isfinite(per_op) and agg >= 0, where
    # max(sum F, sum B) <= sum max(F_i, B_i); float sums, so a relative tolerance
    assert agg <= per_op * (1 + 1e-9) + 1e-12, where
    memory = report["memory"]
    assert memory["total_bytes"] >= memory["weights_bytes"] >= 0, where
