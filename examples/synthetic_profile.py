"""Write a SYNTHETIC tt-metal ops_perf_results CSV: Llama 3.2 1B prefill (2048 tokens, one chip).

Not a measurement: every duration comes from the made-up curves below, with a deterministic
+-5% ripple, so that ``irperf calibrate`` and ``irperf compare`` have a profile to show on
(``docs/calibrate.md``). Use the CSV tt-metal's profiler writes for your own runs.

    python examples/synthetic_profile.py ops_perf_results.csv

Curves: matmuls (BFP8 weights at HiFi2) the larger of ``5 us + ideal / 0.72`` (``ideal`` the
slowest core's tiles on the 8x8 grid at 2.048 TFLOP/s per core) and their bytes at 200 GB/s;
other ops ``2 us + bytes / 230 GB/s`` (their output, and from each input at most as many
elements: an embedding reads the rows it gathers, a slice what it keeps); attention ``20 us``
plus its FLOPs at 45% of the grid's HiFi4 peak; op-to-op gaps about 30 us (an eager run).
"""

from __future__ import annotations

import csv
import math
import sys
from collections.abc import Sequence

DIMS = ("W", "Z", "Y", "X")
COLUMNS = [
    "OP CODE",
    "OP TYPE",
    "GLOBAL CALL COUNT",
    "DEVICE ID",
    "ATTRIBUTES",
    "MATH FIDELITY",
    "CORE COUNT",
    "OP TO OP LATENCY [ns]",
    "DEVICE KERNEL DURATION [ns]",
]
for _t in ("INPUT_0", "INPUT_1", "INPUT_2", "OUTPUT_0"):
    COLUMNS += [f"{_t}_{d}_PAD[LOGICAL]" for d in DIMS]
    COLUMNS += [f"{_t}_LAYOUT", f"{_t}_DATATYPE", f"{_t}_MEMORY"]

BYTES = {"BFLOAT16": 2, "UINT32": 4}
TILE_BYTES = {"BFLOAT16": 2048, "BFLOAT8_B": 1088}
Tensor = tuple[tuple[int, ...], str, str]  # logical shape, data type, layout


def t(*shape: int, dtype: str = "BFLOAT16", layout: str = "TILE") -> Tensor:
    return (shape, dtype, layout)


def nbytes(x: Tensor) -> int:
    shape, dtype, layout = x
    dims = [1] * (4 - len(shape)) + list(shape)
    if layout == "TILE":
        return dims[0] * dims[1] * -(-dims[2] // 32) * -(-dims[3] // 32) * TILE_BYTES[dtype]
    return math.prod(dims) * BYTES[dtype]


def cells(prefix: str, x: Tensor) -> dict[str, str]:
    shape, dtype, layout = x
    dims = [1] * (4 - len(shape)) + list(shape)
    out = {}
    for i, (d, n) in enumerate(zip(DIMS, dims, strict=True)):
        pad = -(-n // 32) * 32 if layout == "TILE" and i >= 2 else n
        out[f"{prefix}_{d}_PAD[LOGICAL]"] = f"{pad}[{n}]"
    return out | {
        f"{prefix}_LAYOUT": layout,
        f"{prefix}_DATATYPE": dtype,
        f"{prefix}_MEMORY": "DEV_0_DRAM_INTERLEAVED",
    }


def matmul_s(m: int, k: int, n: int, moved: int) -> float:
    mt, kt, nt = -(-m // 32), -(-k // 32), -(-n // 32)
    gy, gx = min(8, mt), min(8, nt)
    ideal = -(-mt // gy) * -(-nt // gx) * kt * 2 * 32**3 / 2.048e12
    return max(5e-6 + ideal / 0.72, moved / 200e9)


def main(path: str) -> None:
    rows: list[dict[str, str]] = []

    def op(code: str, seconds: float, ins: Sequence[Tensor], out: Tensor, fid: str = "") -> None:
        i = len(rows)
        ripple = 1 + 0.05 * math.sin(12.9898 * (i + 1))
        row = {
            "OP CODE": code,
            "OP TYPE": "tt_dnn_device",
            "GLOBAL CALL COUNT": str(1024 * (i + 1)),
            "DEVICE ID": "0",
            "ATTRIBUTES": "",
            "MATH FIDELITY": fid,
            "CORE COUNT": "64",
            "OP TO OP LATENCY [ns]": str(round(30_000 * (1 + 0.04 * math.cos(7.1 * i)))),
            "DEVICE KERNEL DURATION [ns]": str(round(seconds * ripple * 1e9)),
        }
        for k, x in enumerate(ins):
            row |= cells(f"INPUT_{k}", x)
        rows.append(row | cells("OUTPUT_0", out))

    def moving(code: str, ins: Sequence[Tensor], out: Tensor) -> None:
        n = math.prod(out[0])
        moved = sum(nbytes(x) * min(math.prod(x[0]), n) // math.prod(x[0]) for x in ins)
        moved += nbytes(out)
        op(code, 2e-6 + moved / 230e9, ins, out)

    def linear(x: Tensor, k: int, n: int) -> Tensor:
        y, w = t(x[0][0], n), t(k, n, dtype="BFLOAT8_B")
        seconds = matmul_s(x[0][0], k, n, nbytes(x) + nbytes(w) + nbytes(y))
        op("Matmul", seconds, [x, w], y, "HiFi2")
        return y

    s, h, kv, ff = 2048, 2048, 512, 8192
    x = t(s, h)
    ids = t(1, s, dtype="UINT32", layout="ROW_MAJOR")
    op("Tilize", 3e-6, [ids], ids)
    moving("Embeddings", [ids, t(128256, h, layout="ROW_MAJOR")], x)
    attention = 20e-6 + 2 * 2 * 32 * s * s * 64 / (0.45 * 64 * 1.024e12)
    for _ in range(16):
        moving("RMSNorm", [x, t(h)], x)
        q, k, v = linear(x, h, h), linear(x, h, kv), linear(x, h, kv)
        moving("Typecast", [v], t(s, kv, dtype="BFLOAT8_B"))  # the KV cache's format
        moving("RotaryEmbeddingLlama", [q, t(s, 64), t(s, 64)], q)
        moving("RotaryEmbeddingLlama", [k, t(s, 64), t(s, 64)], k)
        moving("Typecast", [k], t(s, kv, dtype="BFLOAT8_B"))
        heads = [t(1, 32, s, 64), t(1, 8, s, 64), t(1, 8, s, 64)]
        op("ScaledDotProductAttention", attention, heads, t(1, 32, s, 64), "HiFi4")
        o = linear(x, h, h)
        moving("BinaryDeviceOperation", [o, x], x)
        moving("RMSNorm", [x, t(h)], x)
        g, u = linear(x, h, ff), linear(x, h, ff)
        moving("UnaryDeviceOperation", [g], g)
        moving("BinaryDeviceOperation", [g, u], g)
        d = linear(g, ff, h)
        moving("BinaryDeviceOperation", [d, x], x)
    moving("RMSNorm", [x, t(h)], x)
    last = t(1, h)
    moving("Slice", [x], last)
    weight = t(h, 128256, dtype="BFLOAT8_B")
    op("Matmul", nbytes(weight) / 180e9, [last, weight], t(1, 128256), "HiFi2")
    op("Untilize", 4e-6, [t(1, 128256)], t(1, 128256, layout="ROW_MAJOR"))
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, restval="")
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "ops_perf_results.csv")
