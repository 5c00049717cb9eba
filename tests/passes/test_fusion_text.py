"""Fusion on the text decoder: causal GQA decomposed, SwiGLU epilogues, KV caches still written."""

from __future__ import annotations

from collections import defaultdict

import pytest

import irperf
from irperf import Graph
from irperf.ops import Add, Input
from passes.bytes import Traffic
from passes.flops import FlopCount
from passes.fusion import BytesByKind, FusionGroup
from passes.fusion_report import StrategyRun, run_strategy

SEQ, HEADS, KV_HEADS, HD, D = 128, 32, 8, 128, 4096  # 11B text decoder, a 128-token prompt
E = 2
LAYER = "text.0"  # a self-attention layer


@pytest.fixture(scope="module")
def text() -> Graph:
    return irperf.lower("llama-3.2-11b-vision", part="text", image=False, seq_len=SEQ)


@pytest.fixture(scope="module")
def runs(text: Graph) -> dict[str, StrategyRun]:
    names = ["none", "flash-attention", "epilogue", "qkv", "all", "greedy"]
    return {s: run_strategy(text, s, target="n150") for s in names}


def layer_groups(run: StrategyRun) -> set[frozenset[str]]:
    records = run.graph.records(FusionGroup)
    members: dict[str, set[str]] = defaultdict(set)
    for n in run.graph.scope(LAYER):
        if records[n.name].size > 1:
            members[records[n.name].fusion_group].add(n.name.removeprefix(LAYER + "."))
    return {frozenset(m) for m in members.values()}


def test_causal_gqa_decomposition(runs: dict[str, StrategyRun]) -> None:
    g = runs["none"].graph
    n = f"{LAYER}.attn.sdpa"
    assert g.node(f"{n}.scores").type.shape == (1, HEADS, SEQ, SEQ)
    mask = g.node(f"{n}.causal_mask")
    assert isinstance(mask.op, Input) and mask.type.shape == (1, 1, SEQ, SEQ)
    assert isinstance(g.node(f"{n}.mask").op, Add)
    kinds = g.records(BytesByKind)
    # Scores, reads and writes: q k^T writes; scale, mask, softmax read and write; p v reads;
    # plus the mask, read once (the scale factor is a literal, never read from DRAM).
    scores = HEADS * SEQ * SEQ * E
    expected = 8 * scores + SEQ * SEQ * E
    assert sum(kinds[x.name].scores_bytes for x in g.scope(n)) == expected
    saved = sum(t.bytes for t in g.records(Traffic).values()) - sum(
        t.bytes for t in runs["flash-attention"].graph.records(Traffic).values()
    )
    assert saved == 32 * expected  # 32 self layers; a text-only prompt skips the cross layers


def test_flops_unchanged(runs: dict[str, StrategyRun]) -> None:
    totals = {
        sum((f for f in r.graph.records(FlopCount).values()), FlopCount.zero())
        for r in runs.values()
    }
    assert len(totals) == 1


def test_swiglu_and_qkv_groups(runs: dict[str, StrategyRun]) -> None:
    assert layer_groups(runs["epilogue"]) == {
        frozenset({"attn.wq", "attn.rope_q"}),
        frozenset({"attn.wk", "attn.rope_k"}),
        frozenset({"attn.wo", "attn_residual"}),
        frozenset({"mlp.w1", "mlp.silu", "mlp.w3", "mlp.mul"}),  # silu(x W1) * (x W3)
        frozenset({"mlp.w2", "mlp_residual"}),
    }
    assert layer_groups(runs["qkv"]) == {
        frozenset({"attn.wq", "attn.wk", "attn.wv"}),
        frozenset({"mlp.w1", "mlp.w3"}),
    }


@pytest.mark.parametrize("strategy", ["all", "greedy"])
def test_kv_cache_is_still_written(runs: dict[str, StrategyRun], strategy: str) -> None:
    g = runs[strategy].graph
    records, traffic = g.records(FusionGroup), g.records(Traffic)
    k, v = f"{LAYER}.attn.rope_k", f"{LAYER}.attn.wv"
    assert records[k].size > 1  # fused with the k projection (and more) ...
    for name in (k, v):  # ... yet the cache tensors are results of the prefill
        assert traffic[name].bytes_written == SEQ * KV_HEADS * HD * E
