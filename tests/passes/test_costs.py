"""Cost rules under both conventions, written as formulas."""

from __future__ import annotations

import pytest

import irperf
from irperf.builder import Builder
from irperf.dtypes import BF16, BFP4_B, BFP8_B, FP8, INT32
from irperf.errors import PassError
from irperf.ops import (
    SDPA,
    Add,
    CacheAppend,
    Embedding,
    Gelu,
    LayerNorm,
    MatMul,
    Mul,
    Op,
    Reshape,
    RMSNorm,
    Silu,
    Softmax,
    Tanh,
    Transpose,
)
from irperf.types import TensorType
from passes.bytes import Traffic, count_bytes
from passes.flops import FlopCount, count_flops
from passes.roofline import aggregate_roofline_s, per_op_roofline_s, roofline_times
from targets import load_target


def one_op(op: Op, *shapes: tuple[int, ...], dtypes: tuple = ()) -> irperf.Graph:  # type: ignore[type-arg]
    b = Builder()
    ins = [
        b.input(f"in{i}", s, dtypes[i] if i < len(dtypes) else BF16) for i, s in enumerate(shapes)
    ]
    b.add(op, *ins, name="op")
    return b.graph


def flops(op: Op, *shapes: tuple[int, ...], convention: str = "full", **kw) -> FlopCount:  # type: ignore[no-untyped-def]
    return count_flops(one_op(op, *shapes, **kw), convention)["op"]  # type: ignore[arg-type]


def traffic(op: Op, *shapes: tuple[int, ...], convention: str = "full", **kw) -> Traffic:  # type: ignore[no-untyped-def]
    return count_bytes(one_op(op, *shapes, **kw), convention)["op"]  # type: ignore[arg-type]


def test_matmul_counts_in_both_conventions() -> None:
    for conv in ("matmul-only", "full"):
        assert flops(MatMul(), (2, 7, 16), (16, 8), convention=conv).flops == 2 * 2 * 7 * 16 * 8
    assert traffic(MatMul(), (7, 16), (16, 8)).bytes == (7 * 16 + 16 * 8 + 7 * 8) * 2


def test_elementwise_norms_are_free_only_under_matmul_only() -> None:
    n = 5 * 8
    assert flops(Gelu(), (5, 8)) == FlopCount(flops=4 * n, transcendentals=n)
    assert flops(Silu(), (5, 8)) == FlopCount(flops=3 * n, transcendentals=n)
    assert flops(Tanh(), (5, 8)) == FlopCount(transcendentals=n)
    assert flops(Softmax(), (5, 8)) == FlopCount(flops=4 * n, transcendentals=n)
    assert flops(Add(), (5, 8), (8,)) == FlopCount(flops=n)
    assert flops(LayerNorm(), (5, 8), (8,), (8,)) == FlopCount(flops=7 * n, transcendentals=5)
    assert flops(RMSNorm(), (5, 8), (8,)) == FlopCount(flops=4 * n, transcendentals=5)
    assert flops(Gelu(), (5, 8), convention="matmul-only") == FlopCount()
    assert traffic(Gelu(), (5, 8), convention="matmul-only") == Traffic()
    assert traffic(Add(), (5, 8), (8,)) == Traffic(bytes_read=(n + 8) * 2, bytes_written=n * 2)


def test_sdpa_dense_flops_and_flash_bytes() -> None:
    b, sq, skv, h, kvh, d = 2, 3, 11, 8, 2, 16
    op = SDPA(heads=h, kv_heads=kvh, head_dim=d, causal=True)
    shapes = ((b, sq, h * d), (b, skv, kvh * d), (b, skv, kvh * d))
    scores = b * h * sq * skv
    mm = 2 * 2 * b * h * sq * skv * d
    assert flops(op, *shapes, convention="matmul-only") == FlopCount(flops=mm)
    # full: + scale (1) + softmax (4) + causal mask (1) per score, one exp per score.
    assert flops(op, *shapes) == FlopCount(flops=mm + 6 * scores, transcendentals=scores)
    q, kv = b * sq * h * d * 2, b * skv * kvh * d * 2
    assert traffic(op, *shapes) == Traffic(bytes_read=q + 2 * kv, bytes_written=q)
    # A static cache of 11 positions of which 5 are filled: only 5 are read and attended.
    part = SDPA(heads=h, kv_heads=kvh, head_dim=d, kv_len=5)
    assert traffic(part, *shapes).bytes_read == q + 2 * (b * 5 * kvh * d * 2)
    assert flops(part, *shapes, convention="matmul-only").flops == 2 * 2 * b * h * sq * 5 * d


def test_views_gathers_and_block_formats() -> None:
    assert traffic(Reshape(shape=(40,)), (5, 8)) == Traffic()
    assert traffic(Transpose(perm=(1, 0)), (5, 8)) == Traffic(bytes_read=80, bytes_written=80)
    # An embedding lookup reads the ids and the gathered rows, not the whole table.
    t = traffic(Embedding(), (3,), (1000, 16), dtypes=(INT32, BF16))
    assert t == Traffic(bytes_read=3 * 4 + 3 * 16 * 2, bytes_written=3 * 16 * 2)
    # A cache append writes the new rows in place: it never reads or copies the old ones.
    new_rows = 2 * 3 * 16 * 2
    t = traffic(CacheAppend(), (2, 7, 16), (2, 3, 16))
    assert t == Traffic(bytes_read=new_rows, bytes_written=new_rows)
    assert traffic(CacheAppend(), (2, 7, 16), (2, 3, 16), convention="matmul-only") == Traffic()
    assert flops(CacheAppend(), (2, 7, 16), (2, 3, 16)) == FlopCount()
    # Block-format weights are read as whole tiles.
    t = traffic(MatMul(), (32, 64), (64, 96), dtypes=(BF16, BFP8_B))
    assert t.bytes_read == 32 * 64 * 2 + (64 // 32) * (96 // 32) * 1088


def test_unknown_op_is_an_error_naming_op_node_and_pass() -> None:
    from typing import ClassVar

    from attrs import frozen

    from irperf.ops import OpFamily

    @frozen(kw_only=True)
    class Mystery(Op):
        kind: ClassVar[str] = "mystery"
        family: ClassVar[OpFamily] = OpFamily.ELEMENTWISE

        def _infer(self, inputs):  # type: ignore[no-untyped-def]
            return inputs[0]

    g = one_op(Mystery(), (2, 2))
    with pytest.raises(PassError, match="pass 'flops' has no rule for op 'mystery'.*node 'op'"):
        count_flops(g, "full")
    with pytest.raises(PassError, match="pass 'flops' has no rule for op 'mystery'"):
        count_flops(g, "matmul-only")


def test_roofline_views() -> None:
    b = Builder()
    x = b.input("x", (4096, 4096), BF16)
    w = b.weight("w", (4096, 4096), BF16)
    y = b.add(MatMul(), x, w, name="mm")
    b.add(Gelu(), y, name="act")
    g = irperf.run(b.graph, "flops{convention=full},bytes{convention=full}")
    target = load_target("n300-seed")
    times = roofline_times(g, target, mfu=0.5)
    mm_f, mm_b = 2 * 4096**3, 3 * 4096 * 4096 * 2
    act_f, act_b = 4 * 4096 * 4096, 2 * 4096 * 4096 * 2
    peak, bw = 466e12 * 0.5, 576e9
    assert times["mm"].compute_s == pytest.approx(mm_f / peak)
    assert times["mm"].memory_s == pytest.approx(mm_b / bw)
    ts = list(times.values())
    assert aggregate_roofline_s(ts) == pytest.approx(
        max((mm_f + act_f) / peak, (mm_b + act_b) / bw)
    )
    assert per_op_roofline_s(ts) == pytest.approx(
        max(mm_f / peak, mm_b / bw) + max(act_f / peak, act_b / bw)
    )


def test_tensor_type_str() -> None:
    assert str(TensorType((1, 4128, 1280), BF16)) == "bf16[1x4128x1280]"


def test_constants_are_literals_not_dram_reads() -> None:
    b = Builder()
    x = b.input("x", (5, 8), BF16)
    c = b.constant("c", 0.5, (1,), BF16)
    b.add(Mul(), x, c, name="op")
    t = count_bytes(b.graph, "full")["op"]
    assert t == Traffic(bytes_read=5 * 8 * 2, bytes_written=5 * 8 * 2)


def test_roofline_peak_follows_the_format_and_its_fidelity() -> None:
    # Wormhole's usual pairing: BF16 at HiFi4, BFP8 at HiFi2, BFP4 at LoFi (per core, 1 GHz).
    n300 = load_target("n300")
    cores = 2 * 64
    for wdt, per_core in ((BF16, 1.024e12), (BFP8_B, 2.048e12), (BFP4_B, 4.096e12)):
        b = Builder()
        x = b.input("x", (64, 64), BF16)
        w = b.weight("w", (64, 64), wdt)
        b.add(MatMul(), x, w, name="mm")
        g = irperf.run(b.graph, "flops,bytes")
        t = roofline_times(g, n300)["mm"]
        assert t.compute_s == pytest.approx(2 * 64**3 / (per_core * cores))
        lofi = roofline_times(g, n300, fidelity="lofi")["mm"]
        assert lofi.compute_s == pytest.approx(2 * 64**3 / (4.096e12 * cores))


def test_a_format_without_a_rate_is_an_error_not_a_fallback() -> None:
    b = Builder()
    x = b.input("x", (64, 64), FP8)
    w = b.weight("w", (64, 64), FP8)
    b.add(MatMul(), x, w, name="mm")
    g = irperf.run(b.graph, "flops,bytes")
    with pytest.raises(PassError, match="node 'mm' computes in fp8: target 'n300' has no"):
        roofline_times(g, load_target("n300"))
