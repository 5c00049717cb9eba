"""Fusion on the text decoder: causal GQA decomposed, SwiGLU epilogues, KV caches still written;
in decode, the in-place cache appends never let fusion hide the attention's read of the cache."""

from __future__ import annotations

from collections import defaultdict

import pytest

import irperf
from irperf import Graph
from irperf.ops import SDPA, Add, CacheAppend, Input, MatMul, Rope
from passes.bytes import Traffic, count_bytes, dram_traffic
from passes.flops import FlopCount
from passes.fusion import BytesByKind, FusionGroup, fused_traffic, plan_fusion
from passes.fusion_report import StrategyRun, run_strategy
from passes.fusion_rules import FusionRule, Strategy

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
    saved = sum(t.bytes for t in dram_traffic(g).values()) - sum(
        t.bytes for t in dram_traffic(runs["flash-attention"].graph).values()
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


def test_rope_tables_are_read_once_per_group(runs: dict[str, StrategyRun]) -> None:
    """RoPE as wq's and wk's epilogue: the cos/sin inputs are read by each group using them, once;
    with ``all`` wq|wk|wv and both ropes are one group, so one read of each table serves both."""
    tables = 2 * SEQ * HD * E  # cos and sin [S, head_dim]
    epilogue = dram_traffic(runs["epilogue"].graph)
    q_act, k_act = SEQ * HEADS * HD * E, SEQ * KV_HEADS * HD * E
    assert epilogue[f"{LAYER}.attn.rope_q"] == Traffic(bytes_read=tables, bytes_written=q_act)
    assert epilogue[f"{LAYER}.attn.rope_k"] == Traffic(bytes_read=tables, bytes_written=k_act)
    g = runs["all"].graph
    groups, traffic = g.records(FusionGroup), dram_traffic(g)
    q, k = f"{LAYER}.attn.rope_q", f"{LAYER}.attn.rope_k"
    assert groups[q].fusion_group == groups[k].fusion_group
    assert traffic[q].bytes_read + traffic[k].bytes_read == tables  # x comes from inside


@pytest.mark.parametrize("strategy", ["all", "greedy"])
def test_kv_cache_is_still_written(runs: dict[str, StrategyRun], strategy: str) -> None:
    g = runs[strategy].graph
    records, traffic = g.records(FusionGroup), dram_traffic(g)
    k, v = f"{LAYER}.attn.rope_k", f"{LAYER}.attn.wv"
    assert records[k].size > 1  # fused with the k projection (and more) ...
    for name in (k, v):  # ... yet the cache tensors are results of the prefill
        assert traffic[name].bytes_written == SEQ * KV_HEADS * HD * E


CONTEXT, BATCH = 64, 2  # decode: 64 cached positions, two sequences
ROW = BATCH * KV_HEADS * HD * E  # one position of K (or V) per sequence
Q = BATCH * HEADS * HD * E  # the new token's queries (and the attention's output)
TABLE = 1 * HD * E  # RoPE's cos (or sin) at the one new position, shared by the batch
ATTN = f"{LAYER}.attn"


@pytest.fixture(scope="module")
def decode() -> Graph:
    return irperf.lower(
        "llama-3.2-11b-vision", part="text", phase="decode", context=CONTEXT, batch=BATCH
    )


def test_decode_unfused_is_the_bytes_pass(decode: Graph) -> None:
    groups = plan_fusion(decode, "flash-attention").groups
    assert fused_traffic(decode, groups, "full") == count_bytes(decode, "full")


# The new k/v into their append, the appends into the attention: the whole cache update and
# the attention as one kernel.
APPEND_ATTENTION = Strategy(
    name="append-attention",
    rules=(
        FusionRule("new-kv", (Rope, MatMul), CacheAppend),
        FusionRule("append-attention", CacheAppend, SDPA),
    ),
)


def test_fusing_the_append_with_attention_still_reads_the_cache(decode: Graph) -> None:
    """The append's result is the cache buffer, so the attention reads its C + 1 rows from DRAM
    in any group; the append still writes its new row (the cache outlives the step), which
    nobody reads from DRAM when the producer of the new k/v is in its group."""
    groups = plan_fusion(decode, APPEND_ATTENTION).groups
    members = {"rope_k", "wv", "k_append", "v_append", "sdpa"}
    group = groups[f"{ATTN}.sdpa"].fusion_group
    assert {n.removeprefix(f"{ATTN}.") for n, r in groups.items() if r.fusion_group == group} == (
        members
    )
    traffic = fused_traffic(decode, groups, "full")
    assert traffic[f"{ATTN}.sdpa"] == Traffic(
        bytes_read=Q + 2 * (CONTEXT + 1) * ROW, bytes_written=Q
    )
    for name in ("k_append", "v_append"):
        assert traffic[f"{ATTN}.{name}"] == Traffic(bytes_read=0, bytes_written=ROW)
    # wk's k, and both RoPE tables (inputs, read once by the group)
    assert traffic[f"{ATTN}.rope_k"] == Traffic(bytes_read=ROW + 2 * TABLE, bytes_written=0)
    # Fusing the appends alone with the attention saves nothing: no read of the old rows to drop.
    alone = Strategy(name="append-only", rules=APPEND_ATTENTION.rules[1:])
    fused = fused_traffic(decode, plan_fusion(decode, alone).groups, "full")
    unfused = count_bytes(decode, "full")
    assert sum(t.bytes for t in fused.values()) == sum(t.bytes for t in unfused.values())


def test_greedy_decode_still_reads_the_cache(decode: Graph) -> None:
    """Greedy fuses whole decode layers; each self attention still reads the C + 1 cached rows
    of K and V (plus q when rope_q is in another group) and each append writes its new row."""
    run = run_strategy(decode, "greedy", target="n150")
    g = run.graph
    groups, traffic = g.records(FusionGroup), dram_traffic(g)
    self_layers = [b for b, kind in g.blocks.items() if kind == "text.self"]
    assert len(self_layers) == 32
    for layer in self_layers:
        a = f"{layer}.attn"
        sdpa = groups[f"{a}.sdpa"].fusion_group
        assert groups[f"{a}.k_append"].fusion_group == sdpa  # the append is fused ...
        q = 0 if groups[f"{a}.rope_q"].fusion_group == sdpa else Q
        # ... yet the cache is read in full: C old rows and the new one, of K and of V.
        assert traffic[f"{a}.sdpa"].bytes_read == q + 2 * (CONTEXT + 1) * ROW
        assert traffic[f"{a}.k_append"].bytes_written == ROW
        assert traffic[f"{a}.v_append"].bytes_written == ROW
