"""tt-metal ops_perf_results CSVs written by the tests themselves (wormhole.md's columns)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

TENSOR = ("W_PAD[LOGICAL]", "Z_PAD[LOGICAL]", "Y_PAD[LOGICAL]", "X_PAD[LOGICAL]")
TENSOR_MORE = ("LAYOUT", "DATATYPE", "MEMORY")
HEADER = [
    "OP CODE",
    "OP TYPE",
    "GLOBAL CALL COUNT",
    "DEVICE ID",
    "ATTRIBUTES",
    "MATH FIDELITY",
    "CORE COUNT",
    "HOST DURATION [ns]",
    "OP TO OP LATENCY [ns]",
    "DEVICE FW DURATION [ns]",
    "DEVICE KERNEL DURATION [ns]",
    *(f"{t}_{c}" for t in ("INPUT_0", "INPUT_1", "OUTPUT_0") for c in (*TENSOR, *TENSOR_MORE)),
]

Tensor = dict[str, str]


def tensor(
    shape: Sequence[int],
    dtype: str = "BFLOAT16",
    memory: str = "DEV_0_DRAM_INTERLEAVED",
    layout: str = "TILE",
) -> Tensor:
    """One tensor's cells; ``shape`` up to four logical dims (leading ones are 1), padded to
    32 in Y and X when TILE."""
    dims = [1] * (4 - len(shape)) + list(shape)
    cells = {}
    for i, (name, d) in enumerate(zip(TENSOR, dims, strict=True)):
        pad = -(-d // 32) * 32 if layout == "TILE" and i >= 2 else d
        cells[name] = f"{pad}[{d}]"
    return cells | {"LAYOUT": layout, "DATATYPE": dtype, "MEMORY": memory}


def row(
    op: str,
    kernel_ns: int | str,
    inputs: Sequence[Tensor],
    outputs: Sequence[Tensor],
    *,
    device: int = 0,
    fidelity: str = "HiFi4",
    cores: int | str = 64,
    gap_ns: int | str = 1000,
    op_type: str = "tt_dnn_device",
) -> dict[str, str]:
    cells = {
        "OP CODE": op,
        "OP TYPE": op_type,
        "GLOBAL CALL COUNT": "1",
        "DEVICE ID": str(device),
        "ATTRIBUTES": "{'program_config': 'x'; 'dtype': 'y'}",
        "MATH FIDELITY": fidelity,
        "CORE COUNT": str(cores),
        "HOST DURATION [ns]": "1",
        "OP TO OP LATENCY [ns]": str(gap_ns),
        "DEVICE FW DURATION [ns]": str(kernel_ns),
        "DEVICE KERNEL DURATION [ns]": str(kernel_ns),
    }
    for prefix, group in (("INPUT", inputs), ("OUTPUT", outputs)):
        for i, t in enumerate(group):
            cells |= {f"{prefix}_{i}_{k}": v for k, v in t.items()}
    return cells


def csv_text(rows: Sequence[dict[str, str]], header: Sequence[str] = HEADER) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(header), restval="", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
