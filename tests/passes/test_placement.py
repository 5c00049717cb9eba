"""Memory homes: L1 capacity, tt-mlir's spill rule, and costs that follow the homes.

Facts: wormhole.md (1364 KiB of usable L1 per core, 32x32 tiles, the 8x8 grid) and
tt-metal-llama-vision.md (tt-mlir spills the live tensor whose next use is farthest)."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import irperf
from irperf.builder import Builder
from irperf.dtypes import BF16
from irperf.errors import PassError
from irperf.ops import Add, Silu, Spill
from passes.bytes import PlacedTraffic, count_bytes
from passes.placement import (
    Home,
    Placement,
    PlacementSummary,
    place_dram,
    place_l1_greedy,
    placed_traffic,
    tiled_bytes,
)
from passes.placement_walk import circular_buffers, l1_share
from targets import load_target

N300 = load_target("n300")
CAP = 1_396_736  # 1364 KiB usable per core


@pytest.mark.parametrize("model", ["llama-3.2-11b-vision", "llama-3.2-90b-vision"])
@pytest.mark.parametrize("phase", ["prefill", "decode"])
@pytest.mark.parametrize("strategy", ["dram", "tt-metal", "l1-greedy", "time"])
def test_l1_never_over_capacity(model: str, phase: str, strategy: str) -> None:
    g = irperf.run(
        irperf.lower(model, phase=phase),
        f"tensor-parallel{{chips=2}},precision{{policy=tt-accuracy}},place{{strategy={strategy}}}",
    )
    assert N300.l1_usable_bytes_per_core == CAP
    assert all(p.l1_bytes_per_core <= CAP for p in g.records(Placement).values())
    summary = g.graph_record(PlacementSummary)
    assert summary.peak_l1_bytes_per_core <= CAP and summary.strategy == strategy


def _chain() -> irperf.Graph:
    """a, b, c each 64 KiB (32 x 1024 BF16): c is read first, then a, then b."""
    b = Builder()
    x = b.input("x", (32, 1024), BF16)
    a = b.add(Silu(), x, name="a")
    bb = b.add(Silu(), x, name="b")
    c = b.add(Silu(), x, name="c")
    u = b.add(Silu(), c, name="use_c")
    v = b.add(Add(), a, u, name="use_a")
    b.add(Add(), bb, v, name="use_b")
    return b.graph


def test_spill_evicts_the_farthest_next_use() -> None:
    g = _chain()
    t = g.node("a").type
    share = l1_share(t, 1)  # one core: the whole tensor
    assert share == 32 * 1024 * 2
    cb = circular_buffers([t, t], t)  # the adds' buffers, the largest of any op here
    # Room for a and b and one op's buffers, not for c as well.
    one_core = attrs.evolve(N300, grid=(1, 1), mesh=(1, 2), l1_usable_bytes_per_core=2 * share + cb)
    placed = place_l1_greedy(g, one_core)
    assert placed["c"].spilled == ("b",)  # b is read last: it goes, a stays
    # One tile row each, read by ops computing one tile row: width-sharded over the cores.
    assert placed["c"].output_home is Home.L1_WIDTH_SHARDED
    # use_c's result needs room too: of a and c, c is its operand, so a goes.
    assert placed["use_c"].spilled == ("a",)
    assert placed["use_b"].input_homes[0] is Home.DRAM_INTERLEAVED
    assert placed["use_a"].input_homes == (Home.DRAM_INTERLEAVED, Home.L1_WIDTH_SHARDED)
    assert all(p.l1_bytes_per_core <= one_core.l1_usable_bytes_per_core for p in placed.values())


def test_costs_follow_the_homes() -> None:
    g = irperf.lower("llama-3.2-11b-vision", part="vision")
    unplaced = count_bytes(g, "full")
    dram = irperf.run(g, "place{strategy=dram},placed-bytes{convention=full}").records(
        PlacedTraffic
    )
    # Every tensor in DRAM: exactly the bytes pass, no NoC traffic.
    assert all(dram[n] == unplaced[n] for n in unplaced)
    l1 = irperf.run(g, "place{strategy=l1-greedy},placed-bytes{convention=full}")
    homes, traffic = l1.records(Placement), l1.records(PlacedTraffic)
    # An L1-resident operand adds no DRAM bytes: ln_1 reads its input from L1.
    node = "vision.local.0.ln_1"
    assert homes[node].input_homes[0] is Home.L1_HEIGHT_SHARDED  # 4 x 1608 rows over the cores
    assert traffic[node].bytes_read < unplaced[node].bytes_read
    # Conserved: the model's ops move as many bytes (DRAM + NoC) as with every tensor in DRAM,
    # both in TILE layout (l1-greedy tiles tensors as the device does) ...
    spills = [n for n in l1 if isinstance(n.op, Spill)]
    assert spills, "the 11B encoder's activations do not all fit in L1"
    moved = sum(traffic[n].bytes + traffic[n].noc_bytes for n in traffic if n in g)
    all_dram = placed_traffic(g, place_dram(g, N300), "full", tiled=True)
    assert moved == sum(t.bytes for t in all_dram.values())
    # ... and each spill is an op of its own: it reads its tensor from L1, writes it to DRAM.
    for n in spills:
        whole = tiled_bytes(n.type)
        assert traffic[n.name] == PlacedTraffic(bytes_written=whole, noc_bytes=whole)
        assert homes[n.name].output_home is Home.DRAM_INTERLEAVED


def test_tiled_placements_count_whole_tiles() -> None:
    g = irperf.run(
        irperf.lower("llama-3.2-11b-vision", part="text", phase="decode"),
        "place{strategy=tt-metal},placed-bytes{convention=full}",
    )
    t = g.records(PlacedTraffic)["text.0.attn_norm"]
    row = 32 * 4096 * 2  # the decode row [1, 1, 4096] is a 32-row tile strip on the device
    weight = 32 * 4096 * 2  # and so is the norm's [4096] weight, one row padded to 32
    assert g.records(Placement)["text.0.attn_norm"].input_homes[0] is Home.L1_WIDTH_SHARDED
    assert t.noc_bytes == row + row  # its input from L1, its result to L1
    assert t.bytes_read == weight  # the weight from DRAM


def test_l1_too_small_for_an_ops_buffers() -> None:
    tiny = attrs.evolve(N300, l1_usable_bytes_per_core=1024)
    g = irperf.lower("llama-3.2-11b-vision", part="vision")
    with pytest.raises(PassError, match="less than the"):
        irperf.run(g, [irperf.get_pass("place")(strategy="l1-greedy", target=tiny)])


@settings(max_examples=25, deadline=None)
@given(capacity=st.integers(64 * 1024, 1_499_136), cores=st.sampled_from([1, 4, 64]))
def test_never_over_any_capacity(capacity: int, cores: int) -> None:
    grid = {1: (1, 1), 4: (2, 2), 64: (8, 8)}[cores]
    target = attrs.evolve(N300, grid=grid, l1_usable_bytes_per_core=capacity)
    g = irperf.lower("llama-3.2-11b-vision", part="text", phase="decode")
    placed = place_l1_greedy(g, target)
    assert all(p.l1_bytes_per_core <= capacity for p in placed.values())


def test_tt_metal_decode_reads_each_weight_from_dram_once() -> None:
    g = irperf.run(
        irperf.lower("llama-3.2-11b-vision", phase="decode"),
        "tensor-parallel{chips=2},precision{policy=tt-accuracy},"
        "place{strategy=tt-metal},placed-bytes",
    )
    homes, traffic = g.records(Placement), g.records(PlacedTraffic)
    bfp8 = 1024 + 64  # bytes per 32x32 tile

    def tiles(rows: int, cols: int) -> int:
        return (rows // 32) * (cols // 32)

    # One self layer's matmul weights on one of 2 chips, all BFP8 under tt-accuracy (11B):
    # wq 4096 x 2048, wk and wv 4096 x 512, wo 2048 x 4096, w1 and w3 4096 x 7168, w2 7168 x 4096.
    weights = bfp8 * (
        tiles(4096, 2048)
        + 2 * tiles(4096, 512)
        + tiles(2048, 4096)
        + 2 * tiles(4096, 7168)
        + tiles(7168, 4096)
    )
    matmuls = [n for n in g.scope("text.0") if n.op.kind == "matmul"]
    assert len(matmuls) == 7
    for n in matmuls:
        assert homes[n.name].input_homes == (Home.L1_WIDTH_SHARDED, Home.DRAM_SHARDED)
        assert homes[n.name].output_home is Home.L1_WIDTH_SHARDED
    assert sum(traffic[n.name].bytes_read for n in matmuls) == weights
    # The vision encoder's weights stay resident, interleaved; nothing of it runs in decode.
    assert homes["vision.local.0.attn.wq.weight"].output_home is Home.DRAM_INTERLEAVED


def test_tt_metal_prefill_keeps_activations_in_dram() -> None:
    g = irperf.run(
        irperf.lower("llama-3.2-11b-vision", phase="prefill"),
        "tensor-parallel{chips=2},place{strategy=tt-metal}",
    )
    homes = g.records(Placement)
    assert all(p.output_home is Home.DRAM_INTERLEAVED for p in homes.values())


def test_a_result_too_large_for_l1_spills_nothing() -> None:
    b = Builder()
    a = b.add(Silu(), b.input("x", (32, 1024), BF16), name="a")  # 64 KiB: fits
    big = b.add(Silu(), b.input("y", (32, 8192), BF16), name="big")  # 512 KiB: never fits
    b.add(Add(), a, a, name="use_a")
    b.add(Silu(), big, name="use_big")
    g = b.graph
    t = g.node("a").type
    cb = circular_buffers([t, t], t)
    one = attrs.evolve(N300, grid=(1, 1), mesh=(1, 2), l1_usable_bytes_per_core=l1_share(t, 1) + cb)
    placed = place_l1_greedy(g, one)
    # big can never fit beside its buffers: it goes to DRAM and a, which fits, is not evicted.
    assert placed["big"].output_home is Home.DRAM_INTERLEAVED and not placed["big"].spilled
    assert placed["use_a"].input_homes == (Home.L1_WIDTH_SHARDED, Home.L1_WIDTH_SHARDED)
