"""Spills and reshards as ops of their own, and the ``time`` strategy's choices by magnitude.

Facts: wormhole.md (32x32 tiles, BF16 2 bytes, usable L1 per core, 1 TFLOP/s per core at HiFi4,
288 GB/s of DRAM per chip), tt-metal-llama-vision.md (DRAM-sharded decode matmuls read their
activations width-sharded in L1; tt-mlir spills the farthest next use; a time objective trades
magnitudes)."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import irperf
from irperf.builder import Builder
from irperf.dtypes import BF16
from irperf.errors import PassError
from irperf.homes import Home
from irperf.ops import Add, MatMul, Reshape, Reshard, Silu, Spill
from passes.bytes import PlacedTraffic
from passes.op_time import OpTime
from passes.placement import Placement, PlacementSummary, place_dram, placed_traffic
from passes.placement_walk import circular_buffers, l1_share
from targets import Target, load_target
from tests.passes.test_fusion_properties import dags

N300 = load_target("n300")
ROW = 32 * 1024 * 2  # a [32, 1024] BF16 tensor: 32 tiles of 2 KiB


def _place(g: irperf.Graph, target: Target, strategy: str = "l1-greedy") -> irperf.Graph:
    place = irperf.get_pass("place")(strategy=strategy, target=target)
    return irperf.run(g, [place, "placed-bytes"])


def _one_core(capacity: int) -> Target:
    return attrs.evolve(N300, grid=(1, 1), mesh=(1, 2), l1_usable_bytes_per_core=capacity)


def _with_view() -> irperf.Graph:
    """a, b, c each 64 KiB; v is a view of b made at once and read last, c is read first."""
    b = Builder()
    x = b.input("x", (32, 1024), BF16)
    a = b.add(Silu(), x, name="a")
    bb = b.add(Silu(), x, name="b")
    v = b.add(Reshape(shape=(64, 512)), bb, name="v")
    c = b.add(Silu(), x, name="c")
    u = b.add(Silu(), c, name="use_c")
    b.add(Add(), a, u, name="use_a")
    b.add(Silu(), v, name="use_v")
    return b.graph


def test_a_spill_is_an_op_its_later_readers_read() -> None:
    g = _with_view()
    t = g.node("a").type
    assert l1_share(t, 1) == ROW
    one = _one_core(2 * ROW + circular_buffers([t, t], t))  # a and b fit, not c as well
    placed = _place(g, one)
    assert len(g) == 8  # the caller's graph is never changed
    spill = placed.node("b.spill")  # b's storage is read last (through v): it goes first
    assert isinstance(spill.op, Spill) and spill.operands == ("b",)
    assert spill.op.home is Home.DRAM_INTERLEAVED
    # v was made on b's L1 storage before the spill; its reader reads it remade on the copy.
    assert placed.node("v.spilled").operands == ("b.spill",)
    assert placed.node("use_v").operands == ("v.spilled",)
    assert placed.node("use_a").operands == ("a.spill", "use_c")  # a went before use_c
    # The spill's own bytes: its tensor read from L1 and written to DRAM, whole.
    traffic = placed.records(PlacedTraffic)
    assert traffic["b.spill"] == PlacedTraffic(bytes_written=ROW, noc_bytes=ROW)
    homes = placed.records(Placement)
    # b is one tile row, but its view's reader computes 64 rows (height-sharded): b could not
    # be read sharded as it is computed, so it was interleaved; a, one row read by one-row ops,
    # width-sharded.
    assert homes["b.spill"].input_homes == (Home.L1_INTERLEAVED,)
    assert homes["a.spill"].input_homes == (Home.L1_WIDTH_SHARDED,)
    assert homes["use_v"].input_homes == (Home.DRAM_INTERLEAVED,)
    summary = placed.graph_record(PlacementSummary)
    assert [(s.at, s.tensor, s.nbytes) for s in summary.spills] == [
        ("c", "b", ROW),
        ("use_c", "a", ROW),
    ]
    assert all(p.l1_bytes_per_core <= one.l1_usable_bytes_per_core for p in homes.values())


def _override(tmp_path: Path, home: str) -> str:
    path = tmp_path / "homes.toml"
    path.write_text(f'[node."text.0.attn_norm"]\nhome = "{home}"\n')
    return str(path)


DECODE_ROW = 32 * 4096 * 2  # [1, 1, 4096] BF16 in TILE layout: a 32-row strip


@pytest.mark.parametrize(
    ("home", "dram", "noc", "copies"),
    [
        # read from L1, written to L1; the norm, computing height-sharded, reads its
        # width-sharded input through a copy of its own
        ("l1_height_sharded", 0, 2 * DECODE_ROW, 4),
        ("dram_interleaved", DECODE_ROW, DECODE_ROW, 3),  # read from DRAM, written to L1
    ],
)
def test_a_dram_sharded_matmul_reads_a_reshard(
    tmp_path: Path, home: str, dram: int, noc: int, copies: int
) -> None:
    g = irperf.lower("llama-3.2-11b-vision", part="text", phase="decode")
    place = irperf.get_pass("place")(strategy="tt-metal", overrides=_override(tmp_path, home))
    placed = irperf.run(g, [place, "placed-bytes"])
    homes, traffic = placed.records(Placement), placed.records(PlacedTraffic)
    assert homes["text.0.attn_norm"].output_home is Home(home)
    # wq, wk and wv each read the norm width-sharded, as their DRAM-sharded program needs.
    for proj in ("wq", "wk", "wv"):
        matmul = placed.node(f"text.0.attn.{proj}")
        copy = placed.node(matmul.operands[0])
        assert isinstance(copy.op, Reshard) and copy.operands == ("text.0.attn_norm",)
        assert copy.op.home is Home.L1_WIDTH_SHARDED
        assert homes[matmul.name].input_homes == (Home.L1_WIDTH_SHARDED, Home.DRAM_SHARDED)
        assert traffic[copy.name] == PlacedTraffic(bytes_read=dram, noc_bytes=noc)
    assert placed.graph_record(PlacementSummary).reshards == copies
    assert not any(isinstance(n.op, Reshard) for n in placed.scope("text.1"))


def _magnitudes() -> irperf.Graph:
    """a: a compute-bound matmul's result read by another compute-bound matmul (L1 saves it
    nothing); b: an elementwise result read by an elementwise op (L1 saves DRAM time)."""
    g = Builder()
    x = g.input("x", (2048, 1024), BF16)
    y = g.input("y", (2048, 1024), BF16)
    a = g.add(MatMul(), x, g.weight("w0", (1024, 1024), BF16), name="a")
    b = g.add(Silu(), y, name="b")
    g.add(MatMul(), a, g.weight("w1", (1024, 1024), BF16), name="c")
    g.add(Silu(), b, name="d")
    return g.graph


def test_time_spends_l1_where_it_saves_time() -> None:
    g = _magnitudes()
    # Each matmul: 2 x 2048 x 1024 x 1024 FLOPs at 64 cores x 1.024 TFLOP/s (BF16, HiFi4) take
    # longer than its 4 + 2 + 4 MiB at 288 GB/s: compute-bound, so where a lives saves nothing.
    compute_s = 2 * 2048 * 1024 * 1024 / (64 * 1.024e12)
    assert compute_s > (4 + 2 + 4) * 2**20 / 288e9
    # a and b are 2048 tiles each: 32 per core of 64 (64 KiB); the matmuls' buffers (3 tiles,
    # double-buffered) are the largest. Room for a or b, not both.
    share, cb = 32 * 2048, 2 * 3 * 2048
    target = attrs.evolve(N300, l1_usable_bytes_per_core=share + cb + 2048)
    greedy, timed = _place(g, target), _place(g, target, "time")
    # l1-greedy keeps a (first come), then spills it to make room for b.
    assert [n.name for n in greedy if isinstance(n.op, Spill)] == ["a.spill"]
    # time: b's L1 home halves the DRAM bytes of two memory-bound ops; a's saves nothing.
    homes = timed.records(Placement)
    assert homes["b"].output_home is Home.L1_HEIGHT_SHARDED  # 2048 rows over the cores
    assert homes["a"].output_home is Home.DRAM_INTERLEAVED
    assert not any(isinstance(n.op, Spill) for n in timed)


def test_time_is_no_slower_than_l1_greedy_on_the_11b_prefill() -> None:
    # time's objective on a calibrated target is op-time's per-op time (dispatch apart: the
    # placement changes no dispatch); summed over the graph it never loses to l1-greedy here.
    g = irperf.run(
        irperf.lower("llama-3.2-11b-vision", phase="prefill"),
        "tensor-parallel{chips=2},precision{policy=tt-accuracy}",
    )
    timed = "tiles{target=n300},op-time{target=n300,dispatch=off}"

    def total(strategy: str) -> float:
        r = irperf.run(g, f"place{{strategy={strategy}}},{timed}")
        return sum(t.latency_s() for t in r.records(OpTime).values())

    assert total("time") <= total("l1-greedy") < total("dram")


def test_time_needs_a_noc_rate() -> None:
    g = irperf.lower("llama-3.2-11b-vision", part="text", phase="decode")
    with pytest.raises(PassError, match="strategy 'time' needs the NoC rate"):
        irperf.run(g, "place{strategy=time,target=n300-seed}")


PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(g=dags(), data=st.data())
def test_any_graph_any_capacity_every_strategy(g: irperf.Graph, data: st.DataObject) -> None:
    """Random DAGs, core counts and L1 sizes: no step over capacity under any strategy, the
    placed graph verifies, and the model's own ops move the bytes they move all in DRAM (the
    copies' bytes apart)."""
    cores = data.draw(st.sampled_from([1, 4, 64]))
    grid = {1: (1, 1), 4: (2, 2), 64: (8, 8)}[cores]
    floor = max(circular_buffers(g.operand_types(n), n.type) for n in g if n.operands)
    capacity = floor + 2048 * data.draw(st.integers(0, 3))  # room for 0 to 3 more tiles
    target = attrs.evolve(N300, grid=grid, l1_usable_bytes_per_core=capacity)
    all_dram = placed_traffic(g, place_dram(g, target), "full", tiled=True)
    for strategy in ("dram", "l1-greedy", "tt-metal", "time"):
        place = irperf.get_pass("place")(strategy=strategy, target=target)
        placed = irperf.run(g, [place, "placed-bytes{convention=full}"])  # verified
        homes, traffic = placed.records(Placement), placed.records(PlacedTraffic)
        assert all(p.l1_bytes_per_core <= capacity for p in homes.values()), strategy
        if strategy != "dram":
            model = sum(traffic[n.name].bytes + traffic[n.name].noc_bytes for n in g)
            assert model == sum(t.bytes for t in all_dram.values()), strategy
        for n in placed:
            if isinstance(n.op, Spill):
                assert homes[n.operands[0]].output_home is not Home.DRAM_INTERLEAVED
                assert homes[n.name].output_home is Home.DRAM_INTERLEAVED


def test_time_honours_a_users_l1_home(tmp_path: Path) -> None:
    # wq's result saves nothing in L1 by the roofline (its readers are compute-bound), so time
    # leaves it in DRAM unless a user asks; asked, it is kept in L1 while it fits.
    path = tmp_path / "wq.toml"
    path.write_text('[node."vision.local.0.attn.wq"]\nhome = "l1_interleaved"\n')
    g = irperf.lower("llama-3.2-11b-vision", part="vision")
    plain = irperf.run(g, "place{strategy=time}").records(Placement)
    assert plain["vision.local.0.attn.wq"].output_home is Home.DRAM_INTERLEAVED
    place = irperf.get_pass("place")(strategy="time", overrides=str(path))
    asked = irperf.run(g, [place]).records(Placement)
    assert asked["vision.local.0.attn.wq"].output_home is Home.L1_INTERLEAVED


def test_counting_again_after_a_place_that_made_copies() -> None:
    # place may return a new graph (its spills): counting before and after it is no repeat.
    g = irperf.lower("llama-3.2-11b-vision", part="vision")
    placed = irperf.run(g, "flops,place{strategy=l1-greedy},flops,placed-bytes,roofline")
    assert any(isinstance(n.op, Spill) for n in placed)
    with pytest.raises(PassError, match="after any pass that made a new graph"):
        irperf.run(g, "flops,place{strategy=l1-greedy},placed-bytes,roofline")
