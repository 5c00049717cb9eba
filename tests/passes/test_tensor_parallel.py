"""The tensor-parallel transform: exact per-chip splits, unchanged totals, tt-metal's collectives.

Every expected number is a formula or a fact from the reference (tt-metal-llama-vision.md), never
irperf's own output.
"""

from __future__ import annotations

import pytest

import irperf
from irperf.errors import PassError
from irperf.graph import Graph
from irperf.ops import Conv2d, MatMul, Weight
from irperf.roles import Role
from passes.bytes import count_bytes
from passes.flops import count_flops
from passes.params import count_params
from passes.tensor_parallel import COLUMN, ROW, tensor_parallel

INSTRUCT = "llama-3.2-11b-vision-instruct"
B11 = "llama-3.2-11b-vision"
B90 = "llama-3.2-90b-vision"


def _count(graph: Graph, kind: str, prefix: str = "") -> int:
    return sum(1 for n in graph if n.op.kind == kind and n.name.startswith(prefix))


@pytest.mark.parametrize("chips", [2, 8])
def test_split_matmul_weights_hold_one_share_per_chip(chips: int) -> None:
    g = irperf.lower(INSTRUCT, phase="prefill")
    tp = tensor_parallel(g, chips)
    split = [n for n in g if isinstance(n.op, Weight) and n.role in COLUMN | ROW]
    assert len(split) > 0
    for n in split:
        if n.type.rank == 2:  # the matrices; biases of row-parallel layers stay whole
            assert tp.node(n.name).type.nbytes * chips == n.type.nbytes, n.name
    # BF16 weights: per-chip bytes are exactly 2 bytes per element of one chip's share.
    wq = tp.node("text.0.attn.wq.weight").type
    assert wq.shape == (4096, 4096 // chips) and wq.nbytes == 2 * 4096 * 4096 // chips
    wo = tp.node("text.0.attn.wo.weight").type
    assert wo.shape == (4096 // chips, 4096)


@pytest.mark.parametrize("chips", [2, 8])
def test_the_global_parameter_count_is_unchanged(chips: int) -> None:
    tp = tensor_parallel(irperf.lower(INSTRUCT, phase="prefill"), chips)
    assert sum(p.params for p in count_params(tp).values()) == 10_670_220_835


def distinct_matmul_flops(graph: Graph) -> int:
    """Matmul-only FLOPs of the distinct work: a split op's per-chip count times its chips, a
    replicated op's once (every chip computes the same: the patch convolution, which tt-metal
    replicates)."""
    flops = count_flops(graph, "matmul-only")
    total = 0
    for n in graph:
        layout = n.type.layout
        total += flops[n.name].flops * (1 if layout.replicated else layout.parts)
    return total


@pytest.mark.parametrize("model", [B11, B90])
@pytest.mark.parametrize("phase", ["prefill", "decode"])
@pytest.mark.parametrize("chips", [2, 8])
def test_flops_summed_over_chips_equal_the_unsplit_graphs(
    model: str, phase: str, chips: int
) -> None:
    g = irperf.lower(model, phase=phase)
    tp = tensor_parallel(g, chips)
    unsplit = sum(f.flops for f in count_flops(g, "matmul-only").values())
    assert distinct_matmul_flops(tp) == unsplit
    # Only the patch convolution is replicated work (prefill only), so the per-chip sum adds
    # (chips - 1) copies of its 2 * outputs * 3 * 14 * 14 FLOPs.
    per_chip = sum(f.flops for f in count_flops(tp, "matmul-only").values()) * chips
    conv = [n for n in tp if isinstance(n.op, Conv2d)]
    conv_flops = sum(2 * n.type.numel * 3 * 14 * 14 for n in conv)
    replicated = sum(
        count_flops(tp, "matmul-only")[n.name].flops for n in tp if n.type.layout.replicated
    )
    assert replicated == conv_flops
    assert per_chip - (chips - 1) * replicated == unsplit


def test_vision_all_reduces_twice_per_layer() -> None:
    tp = tensor_parallel(irperf.lower(B11, phase="prefill"), 2)
    assert _count(tp, "all_reduce", "vision.") == 2 * (32 + 8)
    for layer in ("vision.local.0", "vision.global.7"):
        names = {n.name for n in tp.scope(layer) if n.role is Role.COLLECTIVE}
        assert names == {f"{layer}.attn.wo.all_reduce", f"{layer}.mlp.fc2.all_reduce"}
    # The fc2 bias is added once, after the reduction.
    assert tp.node("vision.local.0.mlp.fc2.bias_add").operands[0] == (
        "vision.local.0.mlp.fc2.all_reduce"
    )


@pytest.mark.parametrize("layer", ["text.0", "text.3"])  # a self and a cross layer (11B)
def test_text_layers_fractured_and_all_reduce(layer: str) -> None:
    g = irperf.lower(B11, phase="prefill")
    fractured = tensor_parallel(g, 2, "fractured")
    kinds = [n.op.kind for n in fractured.scope(layer) if n.role is Role.COLLECTIVE]
    assert sorted(kinds) == ["all_gather"] * 2 + ["reduce_scatter"] * 2
    assert fractured.node(f"{layer}.attn_norm.all_gather").op.kind == "all_gather"
    reduced = tensor_parallel(g, 2, "all-reduce")
    kinds = [n.op.kind for n in reduced.scope(layer) if n.role is Role.COLLECTIVE]
    assert kinds == ["all_reduce"] * 2


def test_projection_and_lm_head_are_gathered() -> None:
    tp = tensor_parallel(irperf.lower(B11, phase="prefill"), 2)
    tokens = 4 * ((448 // 14) ** 2 + 1)  # 4 tiles of 448 px, 14 px patches, and the CLS token
    assert tp.node("projector.proj.bias_add.all_gather").type.shape == (1, tokens, 4096)
    logits = tp.node("text.lm_head.all_gather").type
    assert logits.shape == (1, 1, 128_256) and logits.layout.replicated


def test_decode_all_reduce_link_bytes_by_formula() -> None:
    # One decode-step all-reduce of the [1, 1, 4096] BF16 residual on 2 chips (a ring of N = 2):
    # reduce-scatter then all-gather, each sending (N-1)/N of T = 4096 * 2 bytes.
    tp = tensor_parallel(irperf.lower(B11, phase="decode"), 2, "all-reduce")
    node = "text.0.attn.wo.all_reduce"
    assert tp.node(node).type.shape == (1, 1, 4096)
    t_bytes, n = 4096 * 2, 2
    assert count_bytes(tp, "matmul-only")[node].link_bytes == 2 * (n - 1) * t_bytes // n


def test_attention_runs_each_chips_heads_and_caches_split() -> None:
    tp = tensor_parallel(irperf.lower(B11, phase="decode"), 8)
    sdpa = tp.node("text.0.attn.sdpa").op
    assert (sdpa.heads, sdpa.kv_heads) == (32 // 8, 8 // 8)  # type: ignore[attr-defined]
    cache = tp.node("text.0.attn.k_cache").type
    assert cache.shape[-1] == 8 * 128 // 8 and cache.global_shape[-1] == 8 * 128
    assert tp.kv_cache == irperf.lower(B11, phase="decode").kv_cache


def test_heads_that_do_not_divide_are_a_clear_error() -> None:
    g = irperf.lower(B11, phase="decode")
    with pytest.raises(PassError, match="3 chips do not divide"):
        tensor_parallel(g, 3)


def test_the_pass_verifies_and_one_chip_is_the_graph() -> None:
    g = irperf.lower(B11, part="vision")
    out = irperf.run(g, "tensor-parallel{chips=2},flops,bytes")
    assert out.meta["tensor_parallel"] == {"chips": 2, "pattern": "fractured"}
    same = irperf.run(g, "tensor-parallel{chips=1},flops")
    assert len(same) == len(g)
    with pytest.raises(PassError, match="already split"):
        irperf.run(out, "tensor-parallel{chips=2}")


def test_every_split_matmul_reads_a_split_weight() -> None:
    tp = tensor_parallel(irperf.lower(B90, phase="decode"), 8)
    for n in tp:
        if isinstance(n.op, MatMul) and n.role in COLUMN | ROW:
            w = tp.node(n.operands[1]).type
            assert w.layout.sharded, n.name
