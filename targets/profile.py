"""tt-metal's profiler CSV (``ops_perf_results_<date>.csv``) read into typed rows.

One row per op; the columns irperf reads are those wormhole.md lists: the op code, device id,
math fidelity, core count, device kernel duration, op-to-op latency, and per input and output
tensor its four dimensions (cells ``32[19]``: padded, then logical), layout, data type and
memory home. Rows are numbered as a spreadsheet shows them: the header is row 1. A host op
(``OP TYPE`` other than ``tt_dnn_device``) has no device time: it is kept aside with the reason,
never an error. Anything else that is not what tt-metal writes (a missing column, a cell that
is not a number, a negative duration, zero cores, an empty file, another tool's CSV, bytes that
are not UTF-8) is a ``ProfileError`` naming the file, the row and the column.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Callable, Sequence
from typing import TypeVar

from attrs import frozen

from irperf.checks import read_input_text, show
from irperf.dtypes import DTYPES, DType
from irperf.errors import ProfileError

MAX_PROFILE_BYTES = 1024 * 2**20
"""A profile of the largest model runs to tens of MB; more than 1 GiB is no profile."""

KERNEL = "DEVICE KERNEL DURATION [ns]"
OP_TO_OP = "OP TO OP LATENCY [ns]"
OP_CODE = "OP CODE"
OP_TYPE = "OP TYPE"
DEVICE = "DEVICE ID"
FIDELITY = "MATH FIDELITY"
CORES = "CORE COUNT"
ATTRIBUTES = "ATTRIBUTES"
DEVICE_OP = "tt_dnn_device"
DIMS = ("W", "Z", "Y", "X")
TENSOR_FIELDS = (*(f"{d}_PAD[LOGICAL]" for d in DIMS), "LAYOUT", "DATATYPE", "MEMORY")


def tensor_columns(prefix: str) -> tuple[str, ...]:
    """The columns of one tensor: ``INPUT_0_W_PAD[LOGICAL]`` ... ``INPUT_0_MEMORY``."""
    return tuple(f"{prefix}_{f}" for f in TENSOR_FIELDS)


REQUIRED = (
    KERNEL,
    OP_CODE,
    DEVICE,
    FIDELITY,
    CORES,
    OP_TO_OP,
    *tensor_columns("INPUT_0"),
    *tensor_columns("OUTPUT_0"),
)
"""Columns a tt-metal ops_perf_results CSV always has; the duration first, the one a profile is
for (another tool's CSV is named by its absence)."""

_TENSOR = re.compile(
    r"^((?:IN|OUT)PUT_\d+)_(?:" + "|".join(re.escape(f) for f in TENSOR_FIELDS) + r")$"
)
_DIM = re.compile(r"^\s*(\d+)\s*(?:\[\s*(\d+)\s*\])?\s*$")
_NUMBER = re.compile(r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$")
_FIDELITIES = {"lofi": "lofi", "hifi2": "hifi2", "hifi3": "hifi3", "hifi4": "hifi4"}
_NO_FIDELITY = {"", "n/a", "none", "nan"}

# tt-metal's DataType names; formats irperf has keep irperf's names (the fit's keys)
_DTYPES: dict[str, DType] = {
    "BFLOAT16": DTYPES["bf16"],
    "FLOAT32": DTYPES["fp32"],
    "BFLOAT8_B": DTYPES["bfp8_b"],
    "BFLOAT4_B": DTYPES["bfp4_b"],
    "INT32": DTYPES["int32"],
    "UINT32": DType("uint32", 4, 4 * 1024, False),
    "UINT16": DType("uint16", 2, 2 * 1024, False),
    "UINT8": DType("uint8", 1, 1024, False),
}
MAX_DIM = 2**31
MAX_CORES = 100_000
MAX_NS = 10**9
"""A device op or gap of more than 1 s is a unit slip (and more than a target file holds: its
fitted times are at most 1 s)."""


@frozen(kw_only=True)
class ProfileTensor:
    """One operand or result of a profiled op, on its device."""

    padded: tuple[int, int, int, int]
    """W, Z, Y, X as stored (tiles padded to 32)."""
    logical: tuple[int, int, int, int]
    layout: str
    """``tile`` or ``row_major``."""
    dtype: DType
    home: str
    """``dram`` or ``l1``."""
    sharded: bool

    @property
    def numel(self) -> int:
        return math.prod(self.logical)

    @property
    def bytes(self) -> int:
        """Stored size: whole tiles in TILE layout, else the logical elements."""
        if self.layout == "tile" or self.dtype.is_block:
            w, z, y, x = self.padded
            return w * z * -(-y // 32) * -(-x // 32) * self.dtype.tile_bytes
        assert self.dtype.element_bytes is not None
        return self.numel * self.dtype.element_bytes


@frozen(kw_only=True)
class ProfileRow:
    """One device op as the profiler saw it."""

    row: int
    """The row in the file, the header being row 1."""
    op_code: str
    device_id: int
    fidelity: str | None
    """``lofi`` .. ``hifi4``; None for an op with no matrix engine work."""
    core_count: int
    kernel_duration_ns: int
    op_to_op_latency_ns: int
    attributes: str
    inputs: tuple[ProfileTensor, ...]
    outputs: tuple[ProfileTensor, ...]


@frozen(kw_only=True)
class SkippedRow:
    """A row with no device time (a host op), and why it was left out."""

    row: int
    op_code: str
    reason: str


@frozen(kw_only=True)
class Profile:
    source: str
    rows: tuple[ProfileRow, ...]
    skipped: tuple[SkippedRow, ...]


def read_profile(path: str) -> Profile:
    """The profile at ``path`` (see the module docstring); every failure a ProfileError."""
    text = read_input_text(path, show(path), ProfileError, MAX_PROFILE_BYTES)
    return parse_profile(text, path)


def parse_profile(text: str, source: str = "<profile>") -> Profile:
    name = show(source)
    text = text.removeprefix("\ufeff")  # a BOM, as spreadsheets save CSV
    if not text.strip():
        raise ProfileError(f"{name}: empty file, not a tt-metal ops_perf_results CSV")
    if "\x00" in text:
        raise ProfileError(f"{name}: holds NUL bytes: not a CSV text file")
    records = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(records)]
        body = [(i, r) for i, r in enumerate(records, start=2) if any(c.strip() for c in r)]
    except csv.Error as e:
        raise ProfileError(f"{name}: malformed CSV at line {records.line_num}: {e}") from None
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        more = f" (and {len(missing) - 1:,} more)" if len(missing) > 1 else ""
        raise ProfileError(
            f"{name}: not a tt-metal ops_perf_results CSV: missing column {missing[0]!r}{more}"
        )
    for col in header:
        if header.count(col) > 1 and col:
            raise ProfileError(f"{name}: column {col!r} appears twice in the header")
    if not body:
        raise ProfileError(f"{name}: no rows after the header")
    index = {c: i for i, c in enumerate(header)}
    # Tensors by their number, whatever order the columns come in: INPUT_0 is the first operand.
    tensors = sorted(
        {m.group(1) for c in header if (m := _TENSOR.match(c))},
        key=lambda p: (p.startswith("OUT"), int(p.rsplit("_", 1)[1])),
    )
    for prefix in tensors:
        absent = [c for c in tensor_columns(prefix) if c not in index]
        if absent:
            raise ProfileError(f"{name}: missing column {absent[0]!r} ({prefix} has others)")
    rows: list[ProfileRow] = []
    skipped: list[SkippedRow] = []
    for number, cells in body:
        if len(cells) != len(header):
            raise ProfileError(
                f"{name}: row {number}: {len(cells):,} cells, the header has {len(header):,}"
            )
        got = _row(name, number, cells, index, tensors)
        if isinstance(got, ProfileRow):
            rows.append(got)
        else:
            skipped.append(got)
    return Profile(source=source, rows=tuple(rows), skipped=tuple(skipped))


T = TypeVar("T")


def _row(
    name: str, number: int, cells: Sequence[str], index: dict[str, int], tensors: list[str]
) -> ProfileRow | SkippedRow:
    def cell(col: str) -> str:
        return cells[index[col]].strip() if col in index else ""

    def parsed(col: str, parse: Callable[[str], T]) -> T:
        try:
            return parse(cell(col))
        except ValueError as e:
            raise ProfileError(f"{name}: row {number}, column {col!r}: {e}") from None

    op_code = parsed(OP_CODE, _op_code)
    op_type = cell(OP_TYPE)
    if op_type and op_type != DEVICE_OP:
        return SkippedRow(
            row=number, op_code=op_code, reason=f"a host op ({op_type}): no device time"
        )
    ins: list[ProfileTensor] = []
    outs: list[ProfileTensor] = []
    for prefix in tensors:
        cols = tensor_columns(prefix)
        given = [c for c in cols if cell(c)]
        if not given:
            continue
        absent = [c for c in cols if c not in index or not cell(c)]
        if absent:
            raise ProfileError(
                f"{name}: row {number}, column {absent[0]!r}: empty, but {prefix}'s "
                f"{given[0].removeprefix(prefix + '_')} is given"
            )
        dims = [parsed(c, _dim) for c in cols[:4]]
        tensor = ProfileTensor(
            padded=(dims[0][0], dims[1][0], dims[2][0], dims[3][0]),
            logical=(dims[0][1], dims[1][1], dims[2][1], dims[3][1]),
            layout=parsed(cols[4], _layout),
            dtype=parsed(cols[5], _dtype),
            home=parsed(cols[6], _home),
            sharded="SHARDED" in cell(cols[6]).upper(),
        )
        (ins if prefix.startswith("IN") else outs).append(tensor)
    for prefix, group in (("INPUT_0", ins), ("OUTPUT_0", outs)):
        if not group:
            raise ProfileError(
                f"{name}: row {number}, column {prefix + '_W_PAD[LOGICAL]'!r}: empty; a device "
                f"op has at least one input and one output"
            )
    return ProfileRow(
        row=number,
        op_code=op_code,
        device_id=parsed(DEVICE, lambda s: _integer(s, 0, 1023, "a device id")),
        fidelity=parsed(FIDELITY, _fidelity),
        core_count=parsed(CORES, lambda s: _integer(s, 1, MAX_CORES, "a core count")),
        kernel_duration_ns=parsed(KERNEL, lambda s: _ns(s, positive=True)),
        op_to_op_latency_ns=parsed(OP_TO_OP, lambda s: _ns(s, positive=False)),
        attributes=cell(ATTRIBUTES),
        inputs=tuple(ins),
        outputs=tuple(outs),
    )


def _op_code(text: str) -> str:
    if not text:
        raise ValueError("empty; every row names its op")
    if not text.isprintable():  # a terminal escape would reach the tables raw
        raise ValueError(f"must be printable text, got {show(text)}")
    return text


def _number(text: str, what: str) -> float:
    if not _NUMBER.match(text):
        raise ValueError(f"must be {what}, got {show(text)}")
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"must be {what}, got {show(text)}")
    return value


def _integer(text: str, lo: int, hi: int, what: str) -> int:
    value = _number(text, f"{what}, an integer from {lo:,} to {hi:,}")
    if not value.is_integer() or not lo <= value <= hi:
        raise ValueError(f"must be {what}, an integer from {lo:,} to {hi:,}, got {show(text)}")
    return int(value)


def _ns(text: str, *, positive: bool) -> int:
    what = "a duration in ns"
    value = _number(text, what)
    if value < 0 or (positive and value == 0) or value > MAX_NS:
        bound = "more than 0" if positive else "at least 0"
        raise ValueError(f"must be {what}, {bound} and at most 1e9 (1 s), got {show(text)}")
    return round(value)


def _dim(text: str) -> tuple[int, int]:
    m = _DIM.match(text)
    if m is None:
        raise ValueError(f"must be a dimension, PADDED[LOGICAL] such as 32[19], got {show(text)}")
    pad = int(m.group(1))
    logical = int(m.group(2)) if m.group(2) is not None else pad
    if not 1 <= logical <= pad <= MAX_DIM:
        raise ValueError(
            f"must be a dimension with 1 <= logical <= padded <= 2^31, got {show(text)}"
        )
    return pad, logical


def _layout(text: str) -> str:
    value = text.upper().removeprefix("LAYOUT.")
    if value not in ("TILE", "ROW_MAJOR"):
        raise ValueError(f"must be TILE or ROW_MAJOR, got {show(text)}")
    return value.lower()


def _dtype(text: str) -> DType:
    value = text.upper().removeprefix("DATATYPE.")
    if value not in _DTYPES:
        raise ValueError(f"must be one of {', '.join(_DTYPES)}, got {show(text)}")
    return _DTYPES[value]


def _home(text: str) -> str:
    value = text.upper()
    if "DRAM" in value:
        return "dram"
    if "L1" in value:
        return "l1"
    raise ValueError(f"must be a memory home such as DEV_0_DRAM_INTERLEAVED, got {show(text)}")


def _fidelity(text: str) -> str | None:
    value = text.lower().removeprefix("mathfidelity.")
    if value in _NO_FIDELITY:
        return None
    if value not in _FIDELITIES:
        raise ValueError(f"must be LoFi, HiFi2, HiFi3, HiFi4 or empty, got {show(text)}")
    return _FIDELITIES[value]
