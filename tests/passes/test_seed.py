"""The seed post's numbers, reproduced exactly from the graph (expected values are its formulas)."""

from __future__ import annotations

import pytest

import irperf
from irperf.graph import Graph
from passes.bytes import Traffic
from passes.flops import FlopCount
from passes.params import ParamCount
from passes.seed_report import seed_pipeline, seed_tables

S, W, F = 4128, 1280, 5120  # tokens (4 tiles x 1032), width, MLP width
BF16_BYTES = 2


def mm_flops(m: int, k: int, n: int) -> int:
    return m * k * n * 2  # "MM FLOPs = M * K * N * 2"


def mm_bytes(m: int, k: int, n: int) -> int:
    return (m * k + k * n + m * n) * BF16_BYTES  # "(M * K + K * N + M * N) * dtype_bytes"


@pytest.fixture(scope="module")
def graph() -> Graph:
    g = irperf.lower("llama-3.2-11b-vision", part="vision")
    return irperf.run(g, seed_pipeline() + ",params")


def block_sum(graph: Graph, kind: type, attr: str, scope: str) -> int:
    recs = graph.records(kind)
    return sum(getattr(recs[n.name], attr) for n in graph.scope(scope))


def test_one_layer_flops_and_bytes(graph: Graph) -> None:
    flops = block_sum(graph, FlopCount, "flops", "vision.local.0")
    nbytes = block_sum(graph, Traffic, "bytes", "vision.local.0")
    assert flops == 249_566_330_880
    assert flops == 4 * mm_flops(S, W, W) + 2 * mm_flops(S, W, S) + 2 * mm_flops(S, W, F)
    assert nbytes == 271_810_560
    assert nbytes == 4 * mm_bytes(S, W, W) + S * W * 4 * BF16_BYTES + 2 * mm_bytes(S, W, F)


def test_every_line_of_the_per_op_breakdown(graph: Graph) -> None:
    t = seed_tables(graph)
    flops = {r["op"]: r["flops"] for r in t["per_op"]["flops"]}
    assert flops == {
        "wq": 4128 * 1280 * 1280 * 2,
        "wk": 4128 * 1280 * 1280 * 2,
        "wv": 4128 * 1280 * 1280 * 2,
        "wq @ wk": 4128 * 1280 * 4128 * 2,
        "scores @ wv": 4128 * 4128 * 1280 * 2,
        "wo": 4128 * 1280 * 1280 * 2,
        "c_fc": 4128 * 1280 * 5120 * 2,
        "c_proj": 4128 * 5120 * 1280 * 2,
    }
    assert flops["wq"] == 13_526_630_400
    assert flops["wq @ wk"] == 43_623_383_040
    assert flops["c_fc"] == 54_106_521_600
    nbytes = {r["op"]: r["bytes"] for r in t["per_op"]["bytes"]}
    assert nbytes == {
        "wq": (4128 * 1280 + 1280 * 1280 + 4128 * 1280) * 2,
        "wk": (4128 * 1280 + 1280 * 1280 + 4128 * 1280) * 2,
        "wv": (4128 * 1280 + 1280 * 1280 + 4128 * 1280) * 2,
        "attn_out": (4128 * 1280) * 4 * 2,
        "wo": (4128 * 1280 + 1280 * 1280 + 4128 * 1280) * 2,
        "c_fc": (4128 * 1280 + 1280 * 5120 + 4128 * 5120) * 2,
        "c_proj": (4128 * 5120 + 5120 * 1280 + 4128 * 1280) * 2,
    }
    assert nbytes["wq"] == 24_412_160
    assert nbytes["attn_out"] == 42_270_720
    assert nbytes["c_fc"] == 65_945_600
    assert t["per_op"]["flops_total"] == 249_566_330_880
    assert t["per_op"]["bytes_total"] == 271_810_560


def test_forty_layers_and_the_n300_table(graph: Graph) -> None:
    t = seed_tables(graph)
    one, forty = t["layers"]
    assert (one["n_layers"], one["gflops"], one["mb"]) == (1, 249, 271)
    assert forty["n_layers"] == 40
    assert forty["flops"] == 9_982_653_235_200 == 40 * 249_566_330_880
    assert forty["bytes"] == 10_872_422_400 == 40 * 271_810_560
    assert (forty["gflops"], forty["mb"]) == (9_982, 10_872)
    n300 = t["n300"]
    assert round(n300["compute_ms"], 1) == 21.4  # 9.98 TFLOP / 466 TFLOP/s
    assert round(n300["memory_ms"], 1) == 18.9  # 10.87 GB / 576 GB/s
    assert round(n300["total_ms"], 1) == 21.4
    assert n300["compute_ms"] == pytest.approx(9_982_653_235_200 / 466e12 * 1e3)
    assert n300["memory_ms"] == pytest.approx(10_872_422_400 / 576e9 * 1e3)


def test_parameters(graph: Graph) -> None:
    assert block_sum(graph, ParamCount, "params", "vision.local.0") == 19_672_320
    assert block_sum(graph, ParamCount, "params", "vision.global.7") == 19_672_322
    assert 4 * W * W + (W * F + F) + (F * W + W) + 2 * (2 * W) == 19_672_320
    g560 = irperf.run(irperf.lower("llama-3.2-90b-vision", part="vision"), "params")
    assert block_sum(g560, ParamCount, "params", "vision") == 863_567_379
    assert block_sum(graph, ParamCount, "params", "vision") == 836_288_019
    # Projector: Linear(7680, D) with bias.
    assert block_sum(g560, ParamCount, "params", "projector") == 7680 * 8192 + 8192
