"""Properties of every strategy over random small DAGs built with irperf's Builder.

Each node is in exactly one group; the graph of groups is acyclic; bytes are conserved at group
boundaries (an external tensor is written once by its group and read once by each group reading
it, checked against a reference written here); FLOPs never change; adding rules never adds bytes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

import networkx as nx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import irperf
from irperf import BF16, Builder, Graph, Value
from irperf.ops import (
    SDPA,
    Add,
    Constant,
    Gelu,
    LayerNorm,
    MatMul,
    Mul,
    Op,
    Reshape,
    RMSNorm,
    Rope,
    Silu,
    Slice,
    Source,
    Tanh,
)
from passes.bytes import Traffic
from passes.flops import FlopCount, count_flops
from passes.fusion import FusionGroup, fused_traffic, plan_fusion
from passes.fusion_rules import ALL, Strategy
from passes.fusion_traffic import TrafficModel

SHAPE, WIDTH = (1, 4, 8), 8
UNARY: list[Callable[[], Op]] = [Gelu, Silu, Tanh]
KINDS = ["matmul", "matmul", "add", "bias", "mul", "unary", "rope", "norm", "view", "attention"]
STRATEGIES = ["none", "flash-attention", "epilogue", "qkv", "norm", "all", "greedy"]
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def dags(draw: st.DrawFn) -> Graph:
    """A random DAG of matmuls, elementwise ops, norms, views and attention over [1, 4, 8]."""
    b = Builder()
    values = [b.input(f"x{i}", SHAPE, BF16) for i in range(draw(st.integers(1, 3)))]
    tables: list[Value] = []  # RoPE's cos and sin [S, head_dim], shared like a model's

    def pick() -> int:
        return draw(st.integers(0, len(values) - 1))

    for i in range(draw(st.integers(1, 16))):
        kind = draw(st.sampled_from(KINDS))
        a = values[pick()]
        if kind == "matmul":
            v = b.add(MatMul(), a, b.weight(f"n{i}.w", (WIDTH, WIDTH), BF16), name=f"n{i}")
        elif kind in ("add", "mul"):
            op = Add() if kind == "add" else Mul()
            v = b.add(op, a, values[pick()], name=f"n{i}")
        elif kind == "bias":
            v = b.add(Add(), a, b.weight(f"n{i}.b", (WIDTH,), BF16), name=f"n{i}")
        elif kind == "unary":
            v = b.add(draw(st.sampled_from(UNARY))(), a, name=f"n{i}")
        elif kind == "rope":
            tables = tables or [b.input(t, (SHAPE[1], 4), BF16) for t in ("cos", "sin")]
            v = b.add(Rope(head_dim=4), a, *tables, name=f"n{i}")
        elif kind == "norm":
            w = b.weight(f"n{i}.w", (WIDTH,), BF16)
            if draw(st.booleans()):
                v = b.add(RMSNorm(), a, w, name=f"n{i}")
            else:
                v = b.add(LayerNorm(), a, w, b.weight(f"n{i}.b", (WIDTH,), BF16), name=f"n{i}")
        elif kind == "view":
            flat = b.add(Reshape(shape=(4 * WIDTH,)), a, name=f"n{i}.flat")
            v = b.add(Reshape(shape=SHAPE), flat, name=f"n{i}")
        else:
            sdpa = SDPA(heads=2, kv_heads=draw(st.sampled_from([1, 2])), head_dim=4, causal=True)
            kv = values[pick()]
            if sdpa.kv_heads == 1:  # grouped-query: one 4-wide kv head for two query heads
                kv = b.add(Slice(axis=2, start=0, stop=4), kv, name=f"n{i}.kv")
            v = b.add(sdpa, a, kv, kv, name=f"n{i}")
        values.append(v)
    return b.graph


def graph_for(g: Graph, strategy: str) -> Graph:
    g = irperf.run(g, "decompose-attention") if strategy == "none" else g.copy()
    return irperf.run(g, "flops{convention=full}")


def reference_bytes(g: Graph, group: dict[str, str]) -> dict[str, int]:
    """DRAM bytes per group, from first principles: views alias what they view; a result is
    written if read outside its group (or by nobody); each group reads each outside tensor once,
    except literals (constants), which kernels take as arguments."""
    nodes = {n.name: n for n in g}
    readers: dict[str, set[str]] = defaultdict(set)
    for n in g:
        for o in n.operands:
            readers[o].add(n.name)

    def is_view(name: str) -> bool:
        return isinstance(nodes[name].op, Reshape)

    def storage(name: str) -> str:
        return storage(nodes[name].operands[0]) if is_view(name) else name

    def real_readers(name: str) -> set[str | None]:
        """Readers through views; None: read after the graph (a result, or a view of one)."""
        out: set[str | None] = set() if readers[name] else {None}
        for r in readers[name]:
            out |= real_readers(r) if is_view(r) else {r}
        return out

    out: dict[str, int] = defaultdict(int)
    for n in g:
        if isinstance(n.op, Source) or is_view(n.name):
            continue
        if any(r is None or group[r] != group[n.name] for r in real_readers(n.name)):
            out[group[n.name]] += n.type.nbytes
    # Each group reads each outside tensor once, as much of it as its most demanding member
    # does: a slice reads only the part it keeps, every other op here its whole operand.
    reads: dict[tuple[str, str], int] = {}
    for n in g:
        if isinstance(n.op, Source) or is_view(n.name):
            continue
        for o in n.operands:
            if group[storage(o)] == group[n.name] or isinstance(nodes[o].op, Constant):
                continue
            size = n.type.nbytes if isinstance(n.op, Slice) else nodes[o].type.nbytes
            key = (group[n.name], storage(o))
            reads[key] = max(reads.get(key, 0), size)
    for (grp, _), size in reads.items():
        out[grp] += size
    return out


def check_groups(g: Graph, records: dict[str, FusionGroup]) -> None:
    assert set(records) == {n.name for n in g}
    members: dict[str, list[str]] = defaultdict(list)
    for name, r in records.items():
        members[r.fusion_group].append(name)
    for grp, names in members.items():
        assert grp in names
        assert all(records[n].size == len(names) for n in names)
        if len(names) > 1:
            assert not any(isinstance(g.node(n).op, Source) for n in names)
    condensed = nx.DiGraph()
    condensed.add_nodes_from(members)
    for n in g:
        for o in n.operands:
            a, b = records[o].fusion_group, records[n.name].fusion_group
            if a != b:
                condensed.add_edge(a, b)
    assert nx.is_directed_acyclic_graph(condensed)


def total(traffic: dict[str, Traffic]) -> int:
    return sum(t.bytes for t in traffic.values())


@PROPERTY
@given(dags())
def test_every_strategy_is_legal_and_conserves_bytes(g: Graph) -> None:
    flops = sum(count_flops(g, "full").values(), FlopCount.zero())
    for strategy in STRATEGIES:
        sg = graph_for(g, strategy)
        plan = plan_fusion(sg, strategy, target="n300", convention="full")
        records = dict(plan.groups)
        check_groups(sg, records)
        traffic = fused_traffic(sg, records, "full")
        expected = reference_bytes(sg, {k: r.fusion_group for k, r in records.items()})
        got: dict[str, int] = defaultdict(int)
        for name, t in traffic.items():
            got[records[name].fusion_group] += t.bytes
        assert {k: v for k, v in got.items() if v} == {k: v for k, v in expected.items() if v}
        assert sum(sg.records(FlopCount).values(), FlopCount.zero()) == flops


@PROPERTY
@given(dags(), st.lists(st.sampled_from(range(len(ALL))), unique=True))
def test_more_rules_never_more_bytes(g: Graph, subset: list[int]) -> None:
    def fused(rules: list[int]) -> int:
        s = Strategy(name="subset", rules=tuple(ALL[i] for i in rules))
        return total(fused_traffic(g, plan_fusion(g, s).groups, "full"))

    assert fused(list(range(len(ALL)))) <= fused(subset) <= fused([])
    for i in range(len(ALL)):  # appending a rule to a table
        assert fused(list(range(i + 1))) <= fused(list(range(i)))


@PROPERTY
@given(dags(), st.integers(0, 2_000))
def test_greedy_respects_capacity(g: Graph, capacity: int) -> None:
    sg = graph_for(g, "greedy")
    plan = plan_fusion(sg, "greedy", target="n300", convention="full", capacity=capacity)
    check_groups(sg, dict(plan.groups))
    model = TrafficModel(sg, "full")
    index = {n.name: i for i, n in enumerate(sg)}
    members: dict[str, list[int]] = defaultdict(list)
    for name, r in plan.groups.items():
        members[r.fusion_group].append(index[name])
    for m in members.values():
        assert model.group_bytes(m)[1] <= capacity
    assert len(plan.log) == sum(len(m) - 1 for m in members.values())


@PROPERTY
@given(dags())
def test_singletons_are_the_bytes_pass(g: Graph) -> None:
    sg = graph_for(g, "none")

    def storage(name: str) -> str:
        node = sg.node(name)
        return storage(node.operands[0]) if isinstance(node.op, Reshape) else name

    if any(len({storage(o) for o in n.operands}) < len(n.operands) for n in sg):
        return  # x * x: a kernel reads x once, the bytes pass counts two reads
    plain = irperf.run(sg.copy(), "bytes{convention=full}").records(Traffic)
    assert dict(fused_traffic(sg, plan_fusion(sg, "none").groups, "full")) == dict(plain)


@PROPERTY
@given(dags(), st.data())
def test_merged_group_traffic_is_the_groups_bytes(g: Graph, data: st.DataObject) -> None:
    """Greedy keeps each group's traffic as groups merge (``TrafficModel.merged``): after any
    sequence of merges it is ``group_bytes`` of the merged members, both conventions."""
    from passes.fusion_traffic import TrafficModel

    for convention in ("full", "matmul-only"):
        model = TrafficModel(g, convention)
        groups = [model.alone(i) for i in range(len(model))]
        for grp in groups:
            assert (grp.dram_bytes, grp.working) == model.group_bytes(grp.members)
        while len(groups) > 1:
            i = data.draw(st.integers(0, len(groups) - 1))
            j = data.draw(st.integers(0, len(groups) - 2))
            j += j >= i
            both = model.merged(groups[i], groups[j])
            assert both.members == groups[i].members | groups[j].members
            assert (both.dram_bytes, both.working) == model.group_bytes(both.members)
            groups = [grp for k, grp in enumerate(groups) if k not in (i, j)] + [both]
