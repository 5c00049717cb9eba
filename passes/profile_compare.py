"""Match a device profile's rows to a scheduled graph's ops, and how far the times differ.

Each row is given irperf's op class (``targets.profile_ops.device_class``) and a shape key; each
op of the graph the same (``irperf.ops.taxonomy.op_class``, per-chip shapes): a matmul-like op
by its product ``(batch x M, K, N)``, any other by its result's elements (tt-metal splits heads
and folds batches as irperf does not, so the dimensions themselves differ).
Each device's rows are matched in order, the k-th row of a (class, key) to the k-th op of that
(class, key) in program order: every chip runs the same program, so each device's rows match
the same ops, and an op's measured time is the mean over the devices that ran it. A row with no
class, no op of its class, or no op of its key left is unmatched, with the reason.

Errors are ``100 (predicted - measured) / measured``; per group, the mean absolute error and
the geometric mean absolute error ``100 (exp(mean |ln(predicted / measured)|) - 1)``: the
factor by which they typically differ, defined for exact predictions (0%) too; an op predicted
to take no time is left out of the geometric mean (``geomean_ops`` counts those in it).
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Iterable, Sequence

from attrs import frozen

from irperf.graph import Graph, Node
from irperf.ops.taxonomy import op_class
from targets.profile import Profile, ProfileRow
from targets.profile_ops import device_class, matmul_of

Key = tuple[str, tuple[int, ...]]


def node_key(graph: Graph, node: Node) -> Key | None:
    """The (class, shape key) of a graph op; None for what dispatches no device op."""
    cls = op_class(node.op)
    if cls is None:
        return None
    if cls == "matmul":
        products = node.op.contractions(graph.operand_types(node), node.type)
        if products:
            main = max(products, key=lambda c: c.padded_flops)
            return cls, (main.batch * main.m, main.k, main.n)
    return cls, (math.prod(node.type.shape),)


def row_key(row: ProfileRow) -> Key | None:
    cls = device_class(row.op_code)
    if cls is None:
        return None
    if cls == "matmul" and len(row.inputs) > 1:
        c = matmul_of(row)
        return cls, (c.batch * c.m, c.k, c.n)
    return cls, (row.outputs[0].numel,)


@frozen(kw_only=True)
class GraphOp:
    """One op of the scheduled graph: its name, key and predicted device time."""

    name: str
    key: Key
    predicted_us: float


@frozen(kw_only=True)
class MatchedOp:
    name: str
    op_class: str
    predicted_us: float
    measured_us: float
    """The mean over the rows matched to it (one per device that ran it)."""
    rows: tuple[int, ...]

    @property
    def error_pct(self) -> float:
        return 100 * (self.predicted_us - self.measured_us) / self.measured_us


@frozen(kw_only=True)
class UnmatchedRow:
    row: int
    op_code: str
    reason: str


@frozen(kw_only=True)
class Errors:
    """Predicted against measured over a group of ops."""

    ops: int
    predicted_us: float
    measured_us: float
    mean_abs_error_pct: float | None
    """None when the group has no op (no error to speak of, not a perfect one)."""
    geomean_abs_error_pct: float | None
    """None when no op of the group has a predicted time above zero."""
    geomean_ops: int


def errors(ops: Sequence[MatchedOp]) -> Errors:
    logs = [abs(math.log(o.predicted_us / o.measured_us)) for o in ops if o.predicted_us > 0]
    return Errors(
        ops=len(ops),
        predicted_us=math.fsum(o.predicted_us for o in ops),
        measured_us=math.fsum(o.measured_us for o in ops),
        mean_abs_error_pct=statistics.fmean(abs(o.error_pct) for o in ops) if ops else None,
        geomean_abs_error_pct=100 * (math.exp(statistics.fmean(logs)) - 1) if logs else None,
        geomean_ops=len(logs),
    )


def _why(key: Key, left: dict[Key, deque[GraphOp]], ops: Sequence[GraphOp]) -> str:
    cls, shape = key
    of_class = [o for o in ops if o.key[0] == cls]
    if not of_class:
        return f"irperf's graph has no {cls} op"
    same = sum(o.key == key for o in ops)
    if not same:
        return f"no irperf {cls} op of shape key {list(shape)}"
    return f"more {cls} rows of shape key {list(shape)} on its device than irperf's {same}"


def match(ops: Sequence[GraphOp], profile: Profile) -> tuple[list[MatchedOp], list[UnmatchedRow]]:
    """Matched ops in program order, and the rows left over (module docstring)."""
    unmatched = [
        UnmatchedRow(row=s.row, op_code=s.op_code, reason=s.reason) for s in profile.skipped
    ]
    queues: dict[int, dict[Key, deque[GraphOp]]] = {}
    found: dict[str, list[ProfileRow]] = {}
    for row in profile.rows:
        key = row_key(row)
        if key is None:
            reason = f"op code {row.op_code!r} maps to no irperf op class"
            unmatched.append(UnmatchedRow(row=row.row, op_code=row.op_code, reason=reason))
            continue
        left = queues.setdefault(row.device_id, _queues(ops))
        queue = left.get(key)
        if not queue:
            reason = _why(key, left, ops)
            unmatched.append(UnmatchedRow(row=row.row, op_code=row.op_code, reason=reason))
            continue
        found.setdefault(queue.popleft().name, []).append(row)
    matched = [
        MatchedOp(
            name=o.name,
            op_class=o.key[0],
            predicted_us=o.predicted_us,
            measured_us=statistics.fmean(r.kernel_duration_ns / 1e3 for r in found[o.name]),
            rows=tuple(r.row for r in found[o.name]),
        )
        for o in ops
        if o.name in found
    ]
    return matched, sorted(unmatched, key=lambda u: u.row)


def _queues(ops: Iterable[GraphOp]) -> dict[Key, deque[GraphOp]]:
    out: dict[Key, deque[GraphOp]] = {}
    for o in ops:
        out.setdefault(o.key, deque()).append(o)
    return out
