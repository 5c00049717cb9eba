"""Layouts, collectives and their inference; link bytes by the ring formula; pass semantics."""

from __future__ import annotations

import pytest

import irperf
from irperf.builder import Builder
from irperf.dtypes import BF16
from irperf.errors import PassError, TypeInferenceError
from irperf.graph import Graph
from irperf.layout import REPLICATED, partial, sharded
from irperf.ops import (
    SDPA,
    AllGather,
    AllReduce,
    Input,
    MatMul,
    MeshSplit,
    ReduceScatter,
    RMSNorm,
    Silu,
    Weight,
)
from irperf.pass_manager import AnalysisPass, register_pass
from irperf.types import TensorType
from passes.bytes import Traffic, count_bytes
from passes.flops import count_flops
from passes.memory import MemoryFootprint


def test_global_shape_follows_from_the_layout() -> None:
    t = TensorType((1, 1, 2048), BF16, sharded(2, 2))
    assert t.global_shape == (1, 1, 4096)
    assert t.global_numel == 4096 and t.nbytes == 2048 * 2
    assert TensorType((4, 4), BF16, partial(8)).global_shape == (4, 4)
    with pytest.raises(TypeInferenceError):
        TensorType((4,), BF16, sharded(1, 2))  # no such dimension


def _column_row(chips: int, d: int = 64, f: int = 128) -> Graph:
    """x @ W1 (column-parallel) -> silu -> @ W2 (row-parallel) -> all-reduce."""
    b = Builder()
    x = b.input("x", (1, 8, d), BF16)
    w1 = b.add(Weight(type=TensorType((d, f // chips), BF16, sharded(1, chips))), name="w1")
    w2 = b.add(Weight(type=TensorType((f // chips, d), BF16, sharded(0, chips))), name="w2")
    h = b.add(MatMul(), x, w1, name="up")
    h = b.add(Silu(), h, name="act")
    y = b.add(MatMul(), h, w2, name="down")
    b.add(AllReduce(chips=chips), y, name="reduce")
    return b.graph


def test_column_then_row_parallel_infers_split_then_partial() -> None:
    g = _column_row(2)
    assert g.node("up").type.layout == sharded(2, 2)
    assert g.node("act").type.layout == sharded(2, 2)
    assert g.node("down").type.layout == partial(2)
    assert g.node("reduce").type.layout == REPLICATED
    assert g.node("reduce").type.shape == (1, 8, 64)
    irperf.verify(g)


def test_inconsistent_layouts_are_type_errors() -> None:
    b = Builder()
    x = b.add(Input(type=TensorType((1, 8, 32), BF16, sharded(2, 2))), name="x")
    w = b.weight("w", (32,), BF16)
    with pytest.raises(TypeInferenceError, match="gather it first"):
        b.add(RMSNorm(), x, w, name="norm")  # a norm over the split dimension
    p = b.add(Input(type=TensorType((1, 8, 64), BF16, partial(2))), name="p")
    with pytest.raises(TypeInferenceError, match="needs a split"):
        b.add(AllGather(chips=2, dim=2), p, name="gather")  # a partial sum is not split
    with pytest.raises(TypeInferenceError, match="reduce it first"):
        b.add(Silu(), p, name="act")  # silu of a partial sum is not a partial sum of silus
    with pytest.raises(TypeInferenceError, match="heads"):
        whole = b.input("k", (1, 8, 32), BF16)
        b.add(SDPA(heads=1, kv_heads=1, head_dim=32), x, whole, whole, name="sdpa")


def test_collectives_infer_their_per_chip_results() -> None:
    b = Builder()
    whole = b.input("x", (1, 4, 64), BF16)
    part = b.add(MeshSplit(chips=4, dim=2), whole, name="split")
    assert part.type.shape == (1, 4, 16) and part.type.layout == sharded(2, 4)
    back = b.add(AllGather(chips=4, dim=2), part, name="gather")
    assert back.type == whole.type
    p = b.add(Input(type=TensorType((1, 4, 64), BF16, partial(4))), name="p")
    rs = b.add(ReduceScatter(chips=4, dim=2), p, name="rs")
    assert rs.type.shape == (1, 4, 16) and rs.type.layout == sharded(2, 4)
    with pytest.raises(TypeInferenceError, match="do not divide"):
        b.add(
            ReduceScatter(chips=3, dim=2),
            b.add(Input(type=TensorType((1, 4, 64), BF16, partial(3))), name="p3"),
            name="rs3",
        )


@pytest.mark.parametrize("chips", [2, 8])
def test_link_bytes_follow_the_ring_formula(chips: int) -> None:
    # A decode-step residual [1, 1, 4096] in BF16: T = 4096 * 2 bytes.
    T = 4096 * 2
    b = Builder()
    p = b.add(Input(type=TensorType((1, 1, 4096), BF16, partial(chips))), name="p")
    b.add(AllReduce(chips=chips), p, name="ar")
    b.add(ReduceScatter(chips=chips, dim=2), p, name="rs")
    s = b.add(Input(type=TensorType((1, 1, 4096 // chips), BF16, sharded(2, chips))), name="s")
    b.add(AllGather(chips=chips, dim=2), s, name="ag")
    traffic = count_bytes(b.graph, "full")
    assert traffic["ar"].link_bytes == 2 * (chips - 1) * T // chips
    assert traffic["rs"].link_bytes == (chips - 1) * T // chips
    assert traffic["ag"].link_bytes == (chips - 1) * T // chips
    # Link bytes are their own resource: the matmul-only convention keeps them, DRAM bytes not.
    seed = count_bytes(b.graph, "matmul-only")
    assert seed["ar"] == Traffic(link_bytes=2 * (chips - 1) * T // chips)
    assert count_flops(b.graph, "matmul-only")["ar"].flops == 0
    # Full convention: the reduction adds N-1 addends into each element of a chip's chunk.
    full = count_flops(b.graph, "full")
    assert full["ar"].flops == (chips - 1) * 4096 // chips
    assert full["rs"].flops == (chips - 1) * 4096 // chips
    assert full["ag"].flops == 0


def test_an_analysis_never_changes_the_callers_graph() -> None:
    g = irperf.lower("llama-3.2-11b-vision", part="vision")
    out = irperf.run(g, "flops,bytes,memory")
    assert out is not g and not g.has_records(Traffic) and out.has_records(Traffic)
    footprint = out.graph_record(MemoryFootprint)
    assert footprint.weights_bytes > 0


def test_an_exception_in_a_user_pass_names_the_pass() -> None:
    @register_pass
    class Broken(AnalysisPass):  # type: ignore[misc]
        name = "broken-spmd-test"
        record_type = int

        def analyze(self, graph: Graph) -> dict[str, int]:
            raise ZeroDivisionError("boom")

    g = _column_row(2)
    with pytest.raises(PassError, match=r"pass 'broken-spmd-test' failed \(after: flops\)"):
        irperf.run(g, "flops,broken-spmd-test")


def test_fused_traffic_is_its_own_record_and_stales_the_roofline() -> None:
    from passes.bytes import FusedTraffic
    from passes.roofline import RooflineTime

    g = irperf.lower("llama-3.2-11b-vision", part="vision")
    g = irperf.run(g, "flops,bytes,roofline{target=n300}")
    before = sum(t.memory_s for t in g.records(RooflineTime).values())
    fused = irperf.run(g, "fuse{strategy=all},fused-bytes")
    assert fused.has_records(Traffic) and fused.has_records(FusedTraffic)  # both kept
    assert not fused.has_records(RooflineTime)  # computed from unfused bytes: stale, dropped
    again = irperf.run(fused, "roofline{target=n300}")
    after = sum(t.memory_s for t in again.records(RooflineTime).values())
    assert after < before  # the fused graph moves fewer bytes
    assert g.has_records(RooflineTime)  # the caller's graph is as it was


def test_collective_and_layout_bounds() -> None:
    from irperf.layout import Layout

    with pytest.raises(TypeInferenceError, match="2 to 1,024 chips"):
        AllReduce(chips=10**6)
    with pytest.raises(TypeInferenceError, match="mesh axis"):
        AllReduce(chips=2, axis=5)
    with pytest.raises(TypeInferenceError, match="at most 1,024 chips"):
        Layout("sharded", 0, 10**9)
    # A layout on the other mesh axis says so, so a mismatch reads as one.
    assert str(partial(2, axis=0)) == "partial(/2 axis 0)"
