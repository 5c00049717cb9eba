"""tt-metal's profiler CSV: parsing, its errors, and the fit to a known efficiency curve.

Every CSV is written here (``tests/profile_csv.py``); every expected number is the formula that
generated the rows."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from irperf.errors import ProfileError
from targets import load_target
from targets.profile import parse_profile, read_profile
from targets.profile_fit import fit_profile
from targets.profile_ops import device_class
from tests.profile_csv import HEADER, csv_text, row, tensor

N300 = load_target("n300")
TILE_FLOPS = 2 * 32**3
HIFI4, HIFI2 = 1.024e12, 2.048e12  # one core's rate (wormhole.md)
GRID = 8


def ideal_s(m: int, k: int, n: int, rate: float) -> float:
    """The slowest core's tiles of an M x K x N linear on the 8x8 grid, at ``rate``: M over
    the rows, N over the columns (docs/time.md)."""
    mt, kt, nt = m // 32, k // 32, n // 32
    gy, gx = min(GRID, mt), min(GRID, nt)
    return -(-mt // gy) * -(-nt // gx) * kt * TILE_FLOPS / rate


def matmul(m: int, k: int, n: int, ns: int, weight: str = "BFLOAT16", fid: str = "HiFi4") -> dict:
    return row(
        "Matmul",
        ns,
        [tensor((m, k)), tensor((k, n), dtype=weight)],
        [tensor((m, n))],
        fidelity=fid,
    )


SHAPES = [(2048, 2048, 2048), (4096, 4096, 4096), (2048, 8192, 4096), (4096, 2048, 8192)]
SHAPES += [(3072, 3072, 3072), (8192, 4096, 2048)]
"""Compute-bound shapes (their bytes at 190 GB/s take well under 90% of their time)."""


def known_curve() -> str:
    """Rows from t = 2 us + ideal / 0.8 (BF16 HiFi4) and t = 3 us + ideal / 0.7 (BFP8 HiFi2),
    rounded to the ns the profiler writes; adds moving 3 x S x H x 2 bytes at 200 GB/s;
    2-chip all-gathers at t = 5 us + (bytes one chip sends) x 1.5e-10 s/B."""
    rows = []
    for m, k, n in SHAPES:
        rows.append(matmul(m, k, n, round((2e-6 + ideal_s(m, k, n, HIFI4) / 0.8) * 1e9)))
        t = 3e-6 + ideal_s(m, k, n, HIFI2) / 0.7
        rows.append(matmul(m, k, n, round(t * 1e9), weight="BFLOAT8_B", fid="HiFi2"))
    for s, h in ((128, 2048), (1024, 4096), (4096, 8192)):
        shape = tensor((s, h))
        rows.append(
            row(
                "BinaryDeviceOperation",
                round(3 * s * h * 2 / 200e9 * 1e9),
                [shape] * 2,
                [shape],
                fidelity="",
            )
        )
    for h in (1024, 4096, 16384):
        for device in (0, 1):
            sends = 32 * h * 2 // 2  # the gathered [32, h] BF16 tensor, half from the other chip
            ns = round((5e-6 + sends * 1.5e-10) * 1e9)
            rows.append(
                row(
                    "AllGatherAsync",
                    ns,
                    [tensor((32, h // 2))],
                    [tensor((32, h))],
                    device=device,
                    fidelity="",
                )
            )
    return csv_text(rows)


def test_the_fit_recovers_a_known_curve() -> None:
    fit = fit_profile(parse_profile(known_curve(), "known.csv"), N300)
    kernels = {(k.dtype, k.fidelity): k for k in fit.fitted.kernels}
    bf16, bfp8 = kernels[("bf16", "hifi4")], kernels[("bfp8_b", "hifi2")]
    # stated tolerance: e_max within 1%, fixed_s within 5% (the rows are rounded to 1 ns)
    assert bf16.e_max == pytest.approx(0.8, rel=0.01)
    assert bf16.fixed_s == pytest.approx(2e-6, rel=0.05)
    assert bfp8.e_max == pytest.approx(0.7, rel=0.01)
    assert bfp8.fixed_s == pytest.approx(3e-6, rel=0.05)
    # n300 is rated 288 GB/s, the calibration's reference: the rate is written as measured
    (binary,) = fit.fitted.dram
    assert binary.op_class == "binary" and binary.bytes_per_s == pytest.approx(200e9, rel=0.001)
    assert binary.fixed_s == pytest.approx(0, abs=1e-9)
    (gather,) = fit.fitted.collectives
    assert gather.kind == "all_gather"
    assert gather.latency_s == pytest.approx(5e-6, rel=0.01)
    assert gather.s_per_byte == pytest.approx(1.5e-10, rel=0.01)
    assert fit.fitted.rows_used == 2 * len(SHAPES) + 3 + 6
    assert fit.dispatch_mode == "trace" and fit.fitted.dispatch_traced_s == pytest.approx(1e-6)
    assert fit.fitted.dispatch_eager_s is None
    assert fit.mean_abs_error_pct() < 0.1
    assert fit.unused == ()


def test_a_fitted_target_times_a_row_as_measured() -> None:
    """The fitted kernel model, put in a target, predicts the rows it came from: op-time's
    ideal and the fit's are one computation."""
    import attrs

    from targets.calibration import gemm_models, model_for

    fit = fit_profile(parse_profile(known_curve(), "known.csv"), N300)
    t = attrs.evolve(N300, fit=fit.fitted)
    m, k, n = SHAPES[1]
    model = model_for(gemm_models(t), "bf16", "hifi4")
    assert model.seconds(ideal_s(m, k, n, HIFI4)) == pytest.approx(
        2e-6 + ideal_s(m, k, n, HIFI4) / 0.8, rel=1e-3
    )


def test_rows_it_cannot_fit_are_listed_with_why() -> None:
    small = tensor((32, 32))
    rows = [
        row("Tilize", 5000, [small], [small], fidelity=""),
        row("FooBarOp", 5000, [small], [small], fidelity=""),
        row("Matmul", 5000, [small], [small], op_type="tt_dnn_cpu"),
        row("ScaledDotProductAttention", 9000, [small] * 3, [small]),
        # a decode matmul: 2 MiB of weight in 10 us, DRAM-bound at 190 GB/s
        row("Matmul", 10000, [tensor((32, 1024)), tensor((1024, 1024))], [tensor((32, 1024))]),
        row(
            "BinaryDeviceOperation",
            2000,
            [tensor((32, 32), memory="DEV_0_L1_INTERLEAVED")] * 2,
            [small],
            fidelity="",
        ),
        *[
            row(
                "BinaryDeviceOperation",
                2000 * i,
                [tensor((32, 32 * i))] * 2,
                [tensor((32, 32 * i))],
                fidelity="",
                gap_ns=30_000,
            )
            for i in (1, 2, 3)
        ],
    ]
    for r in rows[:-3]:
        r["OP TO OP LATENCY [ns]"] = "30000"
    fit = fit_profile(parse_profile(csv_text(rows), "mixed.csv"), N300)
    reasons = {u.row: u.reason for u in fit.unused}
    assert reasons[2] == "op code 'Tilize' maps to no irperf op class"
    assert reasons[3] == "op code 'FooBarOp' maps to no irperf op class"
    assert reasons[4] == "a host op (tt_dnn_cpu): no device time"
    assert reasons[5] == "attention: matched by irperf compare, not fitted"
    assert (32 * 1024 * 2 * 2 + 1024 * 1024 * 2) / 190e9 > 0.9 * 10e-6
    assert reasons[6] == "matmul: DRAM-bound (its bytes at 190 GB/s take 90% of its time or more)"
    assert reasons[7] == "binary: a tensor in L1, no DRAM rate to fit"
    assert sorted(reasons) == [2, 3, 4, 5, 6, 7]
    # the op-to-op median is 30 us: an eager run's gap
    assert fit.dispatch_mode == "eager" and fit.fitted.dispatch_eager_s == pytest.approx(30e-6)


@pytest.mark.parametrize(
    ("op_code", "cls"),
    [
        ("Matmul", "matmul"),
        ("MatmulDeviceOperation", "matmul"),
        ("Softmax", "softmax"),
        ("ScaleMaskSoftmax", "softmax"),
        ("LayerNorm", "norm"),
        ("RMSNorm", "norm"),
        ("BinaryDeviceOperation", "binary"),
        ("BinaryNgDeviceOperation", "binary"),
        ("UnaryDeviceOperation", "unary"),
        ("AllGather", "all_gather"),
        ("AllGatherAsync", "all_gather"),
        ("ReduceScatter", "reduce_scatter"),
        ("AllReduceAsync", "all_reduce"),
        ("ScaledDotProductAttention", "attention"),
        ("ScaledDotProductAttentionDecode", "attention"),
        ("Embeddings", "embedding"),
        ("RotaryEmbeddingLlama", "rope"),
        ("PagedUpdateCache", "cache_update"),
        ("Concat", "data_movement"),
        ("Untilize", None),
        ("NotAnOp", None),
    ],
)
def test_op_codes_map_to_irperf_classes(op_code: str, cls: str | None) -> None:
    assert device_class(op_code) == cls


def test_cells_read_as_tt_metal_writes_them() -> None:
    text = csv_text(
        [
            row(
                "Softmax",
                1234,
                [tensor((19, 64))],
                [tensor((19, 64))],
                device=1,
                cores=56,
                gap_ns="2.5e3",
            )
        ]
    )
    (r,) = parse_profile(text).rows
    assert (r.row, r.op_code, r.device_id, r.core_count) == (2, "Softmax", 1, 56)
    assert (r.kernel_duration_ns, r.op_to_op_latency_ns, r.fidelity) == (1234, 2500, "hifi4")
    (x,) = r.inputs
    assert x.padded == (1, 1, 32, 64) and x.logical == (1, 1, 19, 64)
    assert (x.layout, x.dtype.name, x.home, x.sharded) == ("tile", "bf16", "dram", False)
    assert x.bytes == 32 * 64 * 2  # whole tiles
    assert len(r.outputs) == 1


def bad(text: str) -> str:
    with pytest.raises(ProfileError) as e:
        parse_profile(text, "ops.csv")
    return str(e.value)


GOOD = row("Softmax", 1234, [tensor((32, 64))], [tensor((32, 64))])


BAD_CELLS = [
    ("CORE COUNT", "abc", "must be a core count, an integer from 1 to 100,000, got 'abc'"),
    ("CORE COUNT", "0", "must be a core count, an integer from 1 to 100,000, got '0'"),
    ("DEVICE KERNEL DURATION [ns]", "-5", "must be a duration in ns, more than 0 and at most"),
    ("DEVICE KERNEL DURATION [ns]", "0", "must be a duration in ns, more than 0 and at most"),
    ("DEVICE KERNEL DURATION [ns]", "nan", "must be a duration in ns, got 'nan'"),
    ("OP TO OP LATENCY [ns]", "-1", "must be a duration in ns, at least 0 and at most"),
    ("INPUT_0_Y_PAD[LOGICAL]", "32[64]", "must be a dimension with 1 <= logical <= padded"),
    ("INPUT_0_X_PAD[LOGICAL]", "x", "must be a dimension, PADDED[LOGICAL] such as 32[19]"),
    ("INPUT_0_DATATYPE", "COMPLEX", "must be one of BFLOAT16, FLOAT32"),
    ("INPUT_0_MEMORY", "SOMEWHERE", "must be a memory home such as DEV_0_DRAM_INTERLEAVED"),
    ("INPUT_0_LAYOUT", "WEIRD", "must be TILE or ROW_MAJOR, got 'WEIRD'"),
    ("INPUT_0_MEMORY", "", "empty, but INPUT_0's W_PAD[LOGICAL] is given"),
    ("MATH FIDELITY", "HiFi9", "must be LoFi, HiFi2, HiFi3, HiFi4 or empty, got 'HiFi9'"),
    ("DEVICE ID", "-1", "must be a device id, an integer from 0 to 1,023"),
    ("OP CODE", "", "empty; every row names its op"),
]


@pytest.mark.parametrize(("column", "cell", "why"), BAD_CELLS)
def test_a_bad_cell_names_its_row_and_column(column: str, cell: str, why: str) -> None:
    """The bad row is the file's third (the header is row 1)."""
    message = bad(csv_text([GOOD, GOOD | {column: cell}]))
    assert message.startswith(f"'ops.csv': row 3, column {column!r}: {why}")


def test_malformed_files() -> None:
    assert bad("") == "'ops.csv': empty file, not a tt-metal ops_perf_results CSV"
    assert bad("\n  \n") == "'ops.csv': empty file, not a tt-metal ops_perf_results CSV"
    assert bad(csv_text([])) == "'ops.csv': no rows after the header"
    missing = [c for c in HEADER if c != "DEVICE KERNEL DURATION [ns]"]
    not_ours = "'ops.csv': not a tt-metal ops_perf_results CSV: missing column"
    assert bad(csv_text([GOOD], missing)) == f"{not_ours} 'DEVICE KERNEL DURATION [ns]'"
    nsight = "ID,Process ID,Process Name,Host Name,Kernel Name,Duration,Grid Size\n1,2,p,h,k,3,4\n"
    assert bad(nsight).startswith(f"{not_ours} 'DEVICE KERNEL DURATION [ns]' (and ")
    pandas = ",name,duration_ms\n0,matmul,1.5\n"
    assert "not a tt-metal ops_perf_results CSV" in bad(pandas)
    short = csv_text([GOOD]).rstrip("\n").rsplit(",", 3)[0] + "\n"
    assert (
        bad(short) == f"'ops.csv': row 2: {len(HEADER) - 3:,} cells, the header has {len(HEADER):,}"
    )
    assert "NUL" in bad(csv_text([GOOD]) + "\x00")
    twice = csv_text([GOOD], [*HEADER, "CORE COUNT"])
    assert bad(twice) == "'ops.csv': column 'CORE COUNT' appears twice in the header"


def test_files_that_are_not_text(tmp_path: Path) -> None:
    path = tmp_path / "ops.csv"
    path.write_bytes(csv_text([GOOD]).encode() + b"\xff\xfe")
    with pytest.raises(
        ProfileError, match=r"ops.csv': not UTF-8 text \(invalid start byte at byte \d+\)"
    ):
        read_profile(str(path))
    with pytest.raises(ProfileError, match="file not found"):
        read_profile(str(tmp_path / "missing.csv"))
    path.write_text(csv_text([GOOD]))
    assert len(read_profile(str(path)).rows) == 1
    assert math.isclose(read_profile(str(path)).rows[0].kernel_duration_ns, 1234)


def test_a_profile_with_nothing_to_fit() -> None:
    small = tensor((32, 32))
    text = csv_text([row("Tilize", 5000, [small], [small], fidelity="", gap_ns=0)])
    with pytest.raises(ProfileError, match="'only.csv': nothing to fit: 1 device rows"):
        fit_profile(parse_profile(text, "only.csv"), N300)
    with pytest.raises(Exception, match="names no calibration"):
        fit_profile(parse_profile(known_curve(), "known.csv"), load_target("h100"))


def test_tensors_are_numbered_by_their_columns_not_their_order() -> None:
    """INPUT_1's columns before INPUT_0's still make INPUT_0 the first operand."""
    rows = [matmul(1024, 4096, 2048, 50_000), matmul(2048, 8192, 1024, 90_000)]
    ins = [c for c in HEADER if c.startswith("INPUT_")]
    swapped = [c for c in HEADER if not c.startswith("INPUT_")]
    swapped += [c for c in ins if c.startswith("INPUT_1")] + [
        c for c in ins if c.startswith("INPUT_0")
    ]
    want = parse_profile(csv_text(rows), "a.csv").rows
    got = parse_profile(csv_text(rows, swapped), "b.csv").rows
    assert [r.inputs for r in got] == [r.inputs for r in want]
    assert got[0].inputs[0].logical[-2:] == (1024, 4096)


def test_a_tensor_missing_a_column_is_a_missing_column() -> None:
    for gone in ("INPUT_1_W_PAD[LOGICAL]", "INPUT_1_LAYOUT"):
        header = [c for c in HEADER if c != gone]
        text = csv_text([matmul(1024, 1024, 1024, 20_000)], header)
        with pytest.raises(ProfileError, match=rf"missing column '{re.escape(gone)}'"):
            parse_profile(text, "p.csv")


def test_durations_a_target_file_cannot_hold_are_refused() -> None:
    """Above 1 s a device op is a unit slip, and more than a fitted target holds."""
    add = row(
        "BinaryDeviceOperation", 2_000_000_000, [tensor((1024, 1024))] * 2, [tensor((1024, 1024))]
    )
    with pytest.raises(ProfileError, match=r"row 2, column 'DEVICE KERNEL DURATION \[ns\]'"):
        parse_profile(csv_text([add]), "p.csv")
    gap = row(
        "BinaryDeviceOperation",
        1000,
        [tensor((32, 32))] * 2,
        [tensor((32, 32))],
        gap_ns=2_000_000_000,
    )
    with pytest.raises(ProfileError, match=r"row 2, column 'OP TO OP LATENCY \[ns\]'"):
        parse_profile(csv_text([gap]), "p.csv")


def test_times_spanning_many_magnitudes_fit_or_are_left_out() -> None:
    """Durations from 1 ns to 1 s in one class: a fit or no fit, never a crash."""
    rows = [
        row("BinaryDeviceOperation", ns, [tensor((n, 1024))] * 2, [tensor((n, 1024))])
        for n, ns in ((32, 1), (64, 999_999_999), (128, 5))
    ]
    fit_profile(parse_profile(csv_text(rows), "p.csv"), N300)


def test_a_class_of_one_size_keeps_the_measured_rate_and_fits_its_floor() -> None:
    """One size cannot tell a floor from a rate: the calibration's read rate (267 GB/s on
    Wormhole, wormhole.md) and the floor that makes the row exact, so a larger op of the class
    costs its bytes at that rate, not at whatever rate one small op implies."""
    n = 1024 * 1024  # elements of each tensor
    moved = 3 * n * 2  # two inputs and the output, bf16: 23.6 us at 267 GB/s
    ns = 30_000
    add = row("BinaryDeviceOperation", ns, [tensor((1024, 1024))] * 2, [tensor((1024, 1024))])
    (binary,) = fit_profile(parse_profile(csv_text([add] * 4), "p.csv"), N300).fitted.dram
    assert binary.bytes_per_s == pytest.approx(267e9)
    assert binary.fixed_s == pytest.approx(ns * 1e-9 - moved / 267e9, rel=1e-5)
    # faster than that rate at its one size: no floor, the rate through the origin
    quick = row("BinaryDeviceOperation", 10_000, [tensor((1024, 1024))] * 2, [tensor((1024, 1024))])
    (binary,) = fit_profile(parse_profile(csv_text([quick] * 4), "p.csv"), N300).fitted.dram
    assert binary.bytes_per_s == pytest.approx(moved / 10e-6, rel=1e-6) and binary.fixed_s == 0


def test_an_op_code_that_is_not_printable_text_is_refused() -> None:
    add = row("Bin\x1b[31mary", 1000, [tensor((32, 32))] * 2, [tensor((32, 32))])
    with pytest.raises(ProfileError, match=r"row 2, column 'OP CODE': must be printable"):
        parse_profile(csv_text([add]), "p.csv")
