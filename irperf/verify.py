"""Structural checks every graph must pass; each failure names the node and the rule broken."""

from __future__ import annotations

from irperf.checks import show
from irperf.errors import TypeInferenceError, VerifyError
from irperf.graph import Graph


def verify(graph: Graph) -> None:
    """Raise VerifyError unless the graph is a well-typed DAG whose edges match its operands.

    Rules, in the order they are checked per node: ``defined-before-use`` (operands exist and
    precede their user, which makes the order topological and the graph acyclic), ``arity`` and
    ``type-inference`` (the stored type is what the op infers from its operand types), then
    ``edges`` (the networkx edges are exactly the operand set), ``kv-cache`` (every KV-cache
    name is a node) and ``acyclic``. The networkx rules check the view where one was built (it
    is built from the operands, so only a caller writing into it can break them); a graph never
    traversed with networkx does not import it.
    """
    if not isinstance(graph, Graph):
        raise VerifyError(f"verify checks an irperf Graph, got {show(graph)}")
    seen: set[str] = set()
    g = graph.nx_view()
    for node in graph:
        for o in node.operands:
            if o not in seen:
                rule = "unknown operand" if o not in graph else "operand defined after its user"
                raise VerifyError(f"node '{node.name}': rule defined-before-use ({rule} '{o}')")
        types = graph.operand_types(node)
        try:
            inferred = node.op.infer(types)
        except TypeInferenceError as e:
            raise VerifyError(f"node '{node.name}': rule type-inference: {e}") from None
        if inferred != node.type:
            raise VerifyError(
                f"node '{node.name}': rule type-inference: stored type {node.type} but "
                f"{node.op.kind} infers {inferred}"
            )
        if g is not None and set(g.predecessors(node.name)) != set(node.operands):
            raise VerifyError(f"node '{node.name}': rule edges: graph edges differ from operands")
        seen.add(node.name)
    for name in graph.kv_cache.names:
        if name not in seen:
            raise VerifyError(f"rule kv-cache: the KV cache names {show(name)}, not a node")
    if g is None:
        return
    import networkx as nx

    if g.number_of_nodes() != len(seen):
        extra = sorted(set(g.nodes) - seen)[:3]
        raise VerifyError(f"node '{extra[0]}': rule typed-node: a graph node has no op and type")
    if not nx.is_directed_acyclic_graph(g):
        cycle = nx.find_cycle(g)
        raise VerifyError(f"node '{cycle[0][0]}': rule acyclic: cycle {cycle}")
