"""Fusion strategies on the 11B vision encoder: groups, traffic by formula, FLOPs unchanged."""

from __future__ import annotations

from collections import defaultdict

import pytest

import irperf
from irperf import BF16, Builder, Graph
from irperf.errors import PassError, UnknownNameError
from irperf.ops import MatMul, Rope
from passes.bytes import Traffic, dram_traffic
from passes.flops import FlopCount
from passes.fusion import BytesByKind, FusionGroup, fused_traffic, plan_fusion
from passes.fusion_report import StrategyRun, compare, grouped_times, layer_bytes, run_strategy
from passes.fusion_rules import (
    ALL,
    EPILOGUE,
    NORM,
    QKV,
    FusionRule,
    Strategy,
    get_strategy,
    match_pairs,
    register_strategy,
)
from passes.roofline import RooflineTime

MODEL = "llama-3.2-11b-vision"
S, H, D, F = 4128, 16, 1280, 5120  # tokens, heads, width, MLP width of the 11B vision encoder
E = 2  # bf16 bytes
SD, SF = S * D * E, S * F * E  # one activation of width D / F
SCORES = H * S * S * E  # one score tensor [1, 16, 4128, 4128]
LAYERS = 32 + 8
STRATEGIES = ["none", "flash-attention", "epilogue", "qkv", "norm", "all", "greedy"]


@pytest.fixture(scope="module")
def vision() -> Graph:
    return irperf.lower(MODEL, part="vision")


@pytest.fixture(scope="module")
def runs(vision: Graph) -> dict[str, StrategyRun]:
    return {s: run_strategy(vision, s, target="n300") for s in STRATEGIES}


def total_bytes(run: StrategyRun) -> int:
    return sum(t.bytes for t in dram_traffic(run.graph).values())


def scope_bytes(run: StrategyRun, scope: str) -> int:
    traffic = dram_traffic(run.graph)
    return sum(traffic[n.name].bytes for n in run.graph.scope(scope))


def groups_of(run: StrategyRun, scope: str) -> set[frozenset[str]]:
    """The fused groups (2+ members) of the nodes under ``scope``, as local names."""
    records = run.graph.records(FusionGroup)
    members: dict[str, set[str]] = defaultdict(set)
    for n in run.graph.scope(scope):
        if records[n.name].size > 1:
            members[records[n.name].fusion_group].add(n.name.removeprefix(scope + "."))
    return {frozenset(m) for m in members.values()}


def test_flops_identical_across_strategies(runs: dict[str, StrategyRun]) -> None:
    totals = {
        s: sum((f for f in r.graph.records(FlopCount).values()), FlopCount.zero())
        for s, r in runs.items()
    }
    assert len(set(totals.values())) == 1


def test_none_to_flash_attention_saves_the_score_traffic(runs: dict[str, StrategyRun]) -> None:
    # Decomposed: q k^T writes S; scale reads and writes S (its factor is a literal); softmax
    # reads and writes S; p v reads S. Six score-tensor transfers per layer, none when fused.
    layer = 6 * SCORES
    for scope in ("vision.local.0", "vision.local.17", "vision.global.3"):
        saved = scope_bytes(runs["none"], scope) - scope_bytes(runs["flash-attention"], scope)
        assert saved == layer
    assert total_bytes(runs["none"]) - total_bytes(runs["flash-attention"]) == LAYERS * layer
    kinds = runs["none"].graph.records(BytesByKind)
    scores = sum(kinds[n.name].scores_bytes for n in runs["none"].graph.scope("vision.local.0"))
    assert scores == layer


def test_none_is_the_bytes_pass_on_the_decomposed_graph(runs: dict[str, StrategyRun]) -> None:
    g = runs["none"].graph
    plain = irperf.run(g.copy(), "bytes{convention=full}").records(Traffic)
    assert dict(dram_traffic(g)) == dict(plain)
    assert all(r.size == 1 for r in g.records(FusionGroup).values())


def test_flash_attention_is_the_bytes_pass(vision: Graph, runs: dict[str, StrategyRun]) -> None:
    plain = irperf.run(vision.copy(), "bytes{convention=full}").records(Traffic)
    assert dict(dram_traffic(runs["flash-attention"].graph)) == dict(plain)


def test_rule_groups_of_one_layer(runs: dict[str, StrategyRun]) -> None:
    local, gated = "vision.local.4", "vision.global.2"
    assert groups_of(runs["epilogue"], local) == {
        frozenset({"mlp.fc1", "mlp.fc1.bias_add", "mlp.gelu"}),
        frozenset({"mlp.fc2", "mlp.fc2.bias_add", "mlp_residual"}),
        frozenset({"attn.wo", "attn_residual"}),
    }
    assert groups_of(runs["epilogue"], gated) == {
        frozenset({"mlp.fc1", "mlp.fc1.bias_add", "mlp.gelu"}),
        frozenset({"mlp.fc2", "mlp.fc2.bias_add", "gate_ffn.mul", "mlp_residual"}),
        frozenset({"attn.wo", "gate_attn.mul", "attn_residual"}),
    }
    assert groups_of(runs["qkv"], local) == {frozenset({"attn.wq", "attn.wk", "attn.wv"})}
    assert groups_of(runs["norm"], local) == {
        frozenset({"ln_1", "attn.wq", "attn.wk", "attn.wv"}),
        frozenset({"ln_2", "mlp.fc1"}),
    }
    assert groups_of(runs["all"], local) == {
        frozenset({"ln_1", "attn.wq", "attn.wk", "attn.wv"}),
        frozenset({"ln_2", "mlp.fc1", "mlp.fc1.bias_add", "mlp.gelu"}),
        frozenset({"mlp.fc2", "mlp.fc2.bias_add", "mlp_residual"}),
        frozenset({"attn.wo", "attn_residual"}),
    }
    rules = runs["all"].graph.records(FusionGroup)[f"{local}.attn.wk"].rules
    assert rules == ("norm", "qkv")


def test_all_traffic_of_one_layer_by_formula(runs: dict[str, StrategyRun]) -> None:
    w = E  # bytes per weight element
    ln_qkv = SD + 2 * D * w + 3 * D * D * w + 3 * SD  # reads x, ln, Wq/Wk/Wv; writes q, k, v
    sdpa = 3 * SD + SD  # reads q, k, v; writes o
    wo_res = SD + D * D * w + SD + SD  # reads o, Wo, x; writes x + o
    ln_fc1 = SD + 2 * D * w + D * F * w + F * w + SF  # reads x, ln, W1, b1; writes gelu
    fc2_res = SF + F * D * w + D * w + SD + SD  # reads gelu, W2, b2, x; writes x + mlp
    assert scope_bytes(runs["all"], "vision.local.9") == ln_qkv + sdpa + wo_res + ln_fc1 + fc2_res


def test_bytes_never_increase_when_a_rule_is_added(vision: Graph) -> None:
    def fused(rules: list[FusionRule]) -> int:
        plan = plan_fusion(vision, Strategy(name="rules", rules=tuple(rules)))
        return sum(t.bytes for t in fused_traffic(vision, plan.groups, "full").values())

    prefix_bytes = [fused(ALL[:i]) for i in range(len(ALL) + 1)]
    assert prefix_bytes == sorted(prefix_bytes, reverse=True)
    assert prefix_bytes[-1] < prefix_bytes[0]
    for table in (EPILOGUE, QKV, NORM, [ALL[0]], [ALL[3]]):
        assert fused(ALL) <= fused(table) <= prefix_bytes[0]


def test_grouped_per_op_roofline(runs: dict[str, StrategyRun]) -> None:
    g = runs["all"].graph
    times = g.records(RooflineTime)
    records = g.records(FusionGroup)
    members = [n.name for n in g.scope("vision.local.0.mlp")] + ["vision.local.0.ln_2"]
    group = records["vision.local.0.mlp.fc1"].fusion_group
    inside = [m for m in members if records[m].fusion_group == group]
    assert len(inside) == 4
    compute = sum(times[m].compute_s for m in inside)
    memory = sum(times[m].memory_s for m in inside)
    assert grouped_times(g)[group].latency_s == pytest.approx(max(compute, memory))
    # Treating the group as one op can only lower the per-op sum.
    assert grouped_times(g)[group].latency_s <= sum(times[m].latency_s for m in inside)


def test_compare_rows(vision: Graph) -> None:
    rows = {r["strategy"]: r for r in compare(vision, STRATEGIES, target="n300")}
    assert list(rows) == STRATEGIES
    none, flash = rows["none"], rows["flash-attention"]
    assert flash["delta_vs_none"]["dram_bytes"] == -LAYERS * 6 * SCORES
    assert none["delta_vs_none"]["dram_bytes"] == 0
    for r in rows.values():
        assert r["flops"] == none["flops"]
        assert r["arithmetic_intensity"] == pytest.approx(r["flops"] / r["dram_bytes"])
        lat = r["latency_ms"]
        assert lat["per_op_roofline"] >= lat["aggregate_roofline"] * (1 - 1e-12)
        parts = r["weights_bytes"] + r["activations_bytes"] + r["scores_bytes"]
        assert parts == r["dram_bytes"] == sum(layer["dram_bytes"] for layer in r["layers"])
    assert "log" in rows["greedy"] and "log" not in rows["all"]
    local = next(x for x in rows["none"]["layers"] if x["group"] == "vision.local")
    assert local["layers"] == 32
    assert local["per_layer"]["scores_bytes"] == 6 * SCORES
    weights = 4 * D * D + 2 * D * F + F + D + 4 * D  # wq wk wv wo, fc1 fc2, biases, 2 norms
    assert local["per_layer"]["weights_bytes"] == weights * E


def test_layer_bytes_split(runs: dict[str, StrategyRun]) -> None:
    rows = {r["group"]: r for r in layer_bytes(runs["flash-attention"].graph)}
    assert rows["vision.global"]["layers"] == 8
    assert rows["vision.global"]["scores_bytes"] == 0
    assert "per_layer" not in rows["projector"]


def test_fuse_pass_in_a_pipeline(vision: Graph) -> None:
    pipeline = (
        "decompose-attention,flops{convention=full},fuse{strategy=none},"
        "fused-bytes{convention=full},roofline{target=n300}"
    )
    g = irperf.run(vision, pipeline)
    assert g.has_records(RooflineTime) and g.has_records(FusionGroup)
    with pytest.raises(PassError, match="decompose-attention first"):
        irperf.run(vision.copy(), "fuse{strategy=none}")
    with pytest.raises(PassError, match="unknown fusion strategy 'nope'; valid: none"):
        irperf.run(vision.copy(), "fuse{strategy=nope}")
    with pytest.raises(PassError, match="needs FusionGroup"):
        irperf.run(vision.copy(), "fused-bytes")


def test_stale_groups_are_refused(vision: Graph, runs: dict[str, StrategyRun]) -> None:
    groups = runs["all"].graph.records(FusionGroup)
    with pytest.raises(PassError, match="do not describe this graph"):
        fused_traffic(runs["none"].graph, groups, "full")  # the none graph has more nodes
    g = vision.copy()
    g.set_records(FusionGroup, {k: v for k, v in groups.items() if "local.3" not in k})
    with pytest.raises(PassError, match="no group for node 'vision.local.3"):
        irperf.run(g, "fused-bytes")


def test_strategy_registry() -> None:
    assert get_strategy("all").rules == tuple(ALL)
    assert get_strategy("none").decompose_attention
    with pytest.raises(UnknownNameError, match="valid: none, flash-attention, epilogue"):
        get_strategy("fastest")
    with pytest.raises(PassError, match="already registered"):
        register_strategy("all", EPILOGUE)
    with pytest.raises(PassError, match="is not a FusionRule"):
        register_strategy("broken", ["epilogue"])  # type: ignore[list-item]
    assert register_strategy("all", ALL, description=get_strategy("all").description)


def test_rope_is_an_epilogue_of_the_tensor_it_rotates_only() -> None:
    """``rope(x @ Wq, cos, sin)`` folds into the matmul; a matmul computing a table does not
    take the rope as its epilogue (the table is an operand it reads, not the one it rotates)."""
    b = Builder()
    x = b.input("x", (1, 4, 8), BF16)
    q = b.add(MatMul(), x, b.weight("wq", (8, 8), BF16), name="q")
    pos = b.input("pos", (4, 2), BF16)
    cos = b.add(MatMul(), pos, b.weight("wc", (2, 4), BF16), name="cos")
    sin = b.input("sin", (4, 4), BF16)
    b.add(Rope(head_dim=4), q, cos, sin, name="rope")
    assert list(match_pairs(b.graph, EPILOGUE)) == [("epilogue.rope", "q", "rope")]
