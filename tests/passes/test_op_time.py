"""Per-op time on the target by formula: wormhole.md (per-core rates per fidelity, the 8-row
face, FPU and SFPU rates, DRAM by access pattern), tt-metal-llama-vision.md (collectives,
dispatch), and the fitted kernel and collective models (targets/calibration.py)."""

from __future__ import annotations

import pytest

import irperf
from irperf.errors import PassError
from passes.bytes import PlacedTraffic
from passes.op_time import OpTime
from passes.tiles import TileWork
from targets import load_target
from targets.calibration import collective_models, gemm_models

N300 = load_target("n300")
B11 = "llama-3.2-11b-vision"


def _decode(*extra: str, pattern: str = "fractured") -> irperf.Graph:
    g = irperf.lower(B11, phase="decode")
    spec = [f"tensor-parallel{{chips=2,pattern={pattern}}}", "precision{policy=tt-accuracy}"]
    return irperf.run(g, ",".join([*spec, *extra]))


def test_a_dram_sharded_decode_matmul_is_bound_by_dram_at_240_gbs() -> None:
    g = _decode(
        "place{strategy=tt-metal}", "tiles", "op-time{target=n300}", "placed-bytes{convention=full}"
    )
    t = g.records(OpTime)["text.0.mlp.w1"]
    traffic = g.records(PlacedTraffic)["text.0.mlp.w1"]
    weight = 4096 * 7168 // 1024 * 1088  # BFP8 tiles of one chip's 4096 x 7168
    assert traffic.bytes == weight  # the activation is in L1, width-sharded
    assert t.dram_s == pytest.approx(weight / 240e9)
    assert t.bound == "dram" and t.dispatch_s == 1e-6  # decode runs traced


def test_compute_without_efficiency_is_the_slowest_core_at_peak() -> None:
    g = irperf.run(irperf.lower(B11, phase="prefill", seq_len=1024, part="text"), "tiles")
    ideal = irperf.run(g, "op-time{target=n300,efficiency=false}").records(OpTime)
    fitted = irperf.run(g, "op-time{target=n300}").records(OpTime)
    w = g.records(TileWork)["text.0.attn.wq"]
    # 1024 x 4096 x 4096 in BF16 at HiFi4 on 8 x 8 cores, balanced: 32 x 128 output tiles,
    # 4 x 16 per core, each 128 tile products of 2 x 32^3 FLOPs at 1.024 TFLOP/s per core.
    assert w.cores == 64 and w.imbalance == 1.0
    per_core = 4 * 16 * 128 * 2 * 32**3
    assert ideal["text.0.attn.wq"].compute_s == pytest.approx(per_core / 1.024e12)
    model = gemm_models(N300)[("bf16", "hifi4")]
    assert fitted["text.0.attn.wq"].compute_s == pytest.approx(
        model.fixed_s + per_core / 1.024e12 / model.e_max
    )


def test_one_row_costs_an_eight_row_face() -> None:
    g = irperf.run(irperf.lower(B11, phase="decode", part="text"), "tiles")
    t = irperf.run(g, "op-time{target=n300,efficiency=false}").records(OpTime)
    # wq: 1 live row of 32, 4096 x 4096 in BF16 at HiFi4 on a 1 x 8 grid (one row of tiles):
    # each core 128 / 8 = 16 output tiles of 128 tile products, a quarter of each tile computed.
    per_core = 16 * 128 * 2 * 32**3
    assert t["text.0.attn.wq"].compute_s == pytest.approx(per_core * 8 / 32 / 1.024e12)


def test_vector_ops_at_the_fpu_and_sfpu_rates() -> None:
    g = irperf.lower(B11, phase="decode", part="text")
    t = irperf.run(g, "op-time{target=n300,dispatch=off}").records(OpTime)
    flops = irperf.run(g, "flops{convention=full}").records(irperf.get_pass("flops").record_type)
    add = "text.0.attn_residual"
    assert g.node(add).op.kind == "add"
    assert t[add].compute_s == pytest.approx(flops[add].flops / (64 * 0.128e12))
    silu = next(n.name for n in g if n.op.kind == "silu")
    assert t[silu].compute_s == pytest.approx(flops[silu].flops / (64 * 0.064e12))
    assert all(r.dispatch_s == 0 for r in t.values())


@pytest.mark.parametrize(("kind", "measured_us"), [("all_reduce", 13.97), ("all_gather", 7.65)])
def test_a_decode_collective_takes_the_measured_time(kind: str, measured_us: float) -> None:
    # A decode row [1, 1, 4096] in BF16 is 8 KiB: the 8 KiB row of the measured 2-chip table.
    pattern = "all-reduce" if kind == "all_reduce" else "fractured"
    g = _decode("op-time{target=n300}", pattern=pattern)
    name = next(n.name for n in g if n.op.kind == kind and n.type.global_shape == (1, 1, 4096))
    link = g.records(OpTime)[name].link_s
    assert link == pytest.approx(measured_us * 1e-6, rel=0.11)  # the fit's documented error
    model = collective_models("wormhole")[kind]
    sent = {"all_reduce": 2 * (2 - 1) * 8192 // 2, "all_gather": 8192 // 2}[kind]
    assert link == pytest.approx(model.latency_s + model.s_per_byte * sent)


def test_dispatch_as_tt_metal_runs() -> None:
    full = irperf.lower(B11, phase="prefill", part="text")
    t = irperf.run(full, "op-time{target=n300}").records(OpTime)
    assert t["text.0.attn.wq"].dispatch_s == 29e-6  # prefill: eager
    views = [n.name for n in full if n.op.kind == "reshape"]
    assert views and all(t[v].dispatch_s == 0 for v in views)  # a view dispatches nothing
    traced = irperf.run(full, "op-time{target=n300,dispatch=trace}").records(OpTime)
    assert traced["text.0.attn.wq"].dispatch_s == 1e-6


def test_gpu_rules() -> None:
    g = irperf.lower(B11, phase="prefill", seq_len=1024, part="text")
    t = irperf.run(g, "op-time{target=h100}").records(OpTime)["text.0.attn.wq"]
    assert t.compute_s == pytest.approx(2 * 1024 * 4096 * 4096 / (989e12 * 0.7))
    assert t.dram_s == pytest.approx((1024 * 4096 * 2 * 2 + 4096 * 4096 * 2) / 3.35e12)
    assert t.dispatch_s == 5e-6 and t.bound == "compute"


def test_bad_options() -> None:
    g = irperf.lower(B11, phase="decode", part="text")
    with pytest.raises(PassError, match="dispatch"):
        irperf.run(g, "op-time{dispatch=sometimes}")
