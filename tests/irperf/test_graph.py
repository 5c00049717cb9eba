"""The graph, the builder's name scopes, and verify."""

from __future__ import annotations

import pytest

from irperf.builder import Builder
from irperf.dtypes import BF16
from irperf.errors import TypeInferenceError, VerifyError
from irperf.graph import Graph, Node
from irperf.ops import Add, Gelu, MatMul, Mul
from irperf.types import TensorType
from irperf.verify import verify


def small() -> Builder:
    b = Builder()
    with b.scope("m"):
        x = b.input("x", (4, 8), BF16)
        with b.block("layer.0", "layer"):
            w = b.weight("w", (8, 8), BF16)
            y = b.add(MatMul(), x, w, name="mm")
            b.add(Mul(), y, y, name="square")
    return b


def test_scoped_names_blocks_and_operand_order() -> None:
    g = small().graph
    assert [n.name for n in g] == ["m.x", "m.layer.0.w", "m.layer.0.mm", "m.layer.0.square"]
    assert g.blocks == {"m.layer.0": "layer"}
    sq = g.node("m.layer.0.square")
    # x * x keeps both operands even though the dependency edge is one.
    assert sq.operands == ("m.layer.0.mm", "m.layer.0.mm")
    assert sq.block == "m.layer.0"
    assert g.users("m.layer.0.mm") == ["m.layer.0.square"]
    assert [n.name for n in g.scope("m.layer.0")] == [
        "m.layer.0.w",
        "m.layer.0.mm",
        "m.layer.0.square",
    ]
    verify(g)


def test_add_rejects_duplicates_unknown_operands_and_bad_types() -> None:
    b = small()
    with pytest.raises(VerifyError, match="'m.x': rule unique-names"):
        b.graph.add("m.x", Gelu(), ["m.layer.0.mm"])
    with pytest.raises(VerifyError, match="operand 'nope' is not defined"):
        b.graph.add("z", Gelu(), ["nope"])
    with pytest.raises(TypeInferenceError, match="node 'bad': matmul: contraction"):
        b.graph.add("bad", MatMul(), ["m.x", "m.x"])


def _node(name: str, op, operands, shape=(4, 8)) -> Node:  # type: ignore[no-untyped-def]
    return Node(name, op, tuple(operands), TensorType(shape, BF16))


def test_verify_names_node_and_rule() -> None:
    g = small().graph
    nodes = list(g)
    # A stored type that inference disagrees with.
    bad = Graph.from_nodes([*nodes, _node("t", Gelu(), ["m.x"], shape=(4, 9))])
    with pytest.raises(VerifyError, match="node 't': rule type-inference"):
        verify(bad)
    # Wrong arity.
    bad = Graph.from_nodes([*nodes, _node("t", Add(), ["m.x"])])
    with pytest.raises(VerifyError, match="node 't': rule type-inference: add: takes 2"):
        verify(bad)
    # Use before definition (the order is the topological order).
    bad = Graph.from_nodes([_node("a", Gelu(), ["b"]), _node("b", Gelu(), ["a"])])
    with pytest.raises(VerifyError, match="node 'a': rule defined-before-use"):
        verify(bad)
    # An unknown operand.
    bad = Graph.from_nodes([*nodes, _node("t", Gelu(), ["ghost"])])
    with pytest.raises(VerifyError, match="unknown operand 'ghost'"):
        verify(bad)


def test_copy_drops_records() -> None:
    g = small().graph
    g.set_records(int, {"m.x": 1})
    assert g.has_records(int)
    c = g.copy()
    assert not c.has_records(int)
    assert [n.name for n in c] == [n.name for n in g]
    assert c.blocks == g.blocks


def test_duplicate_names_are_refused_when_nodes_are_inserted() -> None:
    g = small().graph
    with pytest.raises(VerifyError, match="node 'm.x': rule unique-names"):
        Graph.from_nodes([*g, g.node("m.x")])
