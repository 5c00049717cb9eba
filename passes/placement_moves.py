"""The walk's spills and reshards as real ops in the graph (``irperf.ops.Spill``, ``Reshard``).

A spill of tensor ``t`` before node ``n`` becomes node ``t.spill`` (its operand ``t``, its home
DRAM), placed just before ``n``; every later reader of ``t`` reads ``t.spill`` instead, and a
view of ``t`` made before the spill and read after it is made again on the copy
(``v.spilled``, a view moves nothing). A reshard of operand ``k`` of ``n`` becomes
``n.reshard<k>`` (its home the layout ``n`` reads), read by ``n`` alone. Names that are taken get
a number. The new nodes keep the role, stage and block of the tensor they copy, so reports group
their bytes with it.
"""

from __future__ import annotations

import attrs

from irperf.graph import Graph, Node
from irperf.ops import Reshard, Spill
from irperf.ops.taxonomy import VIEWS
from passes.placement_walk import DRAM, Placement, Walk


def materialize(graph: Graph, walk: Walk) -> tuple[Graph, dict[str, Placement]]:
    """``graph`` with the walk's moves as nodes, and every node's placement (theirs too)."""
    before: dict[str, list[int]] = {}
    for k, m in enumerate(walk.moves):
        before.setdefault(m.before, []).append(k)
    new = Graph.from_nodes((), like=graph)
    records = dict(walk.placements)
    current: dict[str, str] = {}  # a tensor -> the node its later readers read
    spilled: set[str] = set()

    def fresh(name: str) -> str:
        k, candidate = 1, name
        while candidate in graph or candidate in new:
            k += 1
            candidate = f"{name}{k}"
        return candidate

    def readable(name: str) -> str:
        """What a reader reads for ``name`` now: itself, its spilled copy, or a view remade
        on the copy of its storage."""
        found = current.get(name)
        if found is not None:
            return found
        node = graph.node(name)
        if not spilled or not isinstance(node.op, VIEWS):
            return name
        base = readable(node.operands[0])
        if base == node.operands[0]:
            return name
        remade = fresh(f"{name}.spilled")
        operands = (base, *node.operands[1:])
        new.insert(attrs.evolve(node, name=remade, operands=operands))
        records[remade] = attrs.evolve(records[name], input_homes=(DRAM,) * len(operands))
        current[name] = remade
        return remade

    for node in graph:
        reshards: dict[int, str] = {}
        for k in before.get(node.name, ()):
            m = walk.moves[k]
            copied = graph.node(m.tensor)
            source = readable(m.tensor)
            op = Spill(home=m.home) if m.kind == "spill" else Reshard(home=m.home)
            suffix = ".spill" if m.kind == "spill" else f".reshard{m.operand}"
            name = fresh(f"{m.tensor if m.kind == 'spill' else node.name}{suffix}")
            new.insert(
                Node(
                    name,
                    op,
                    (source,),
                    copied.type,
                    copied.stage,
                    copied.block,
                    copied.role,
                )
            )
            records[name] = Placement(
                output_home=m.home,
                input_homes=(m.input_home,),
                l1_bytes_per_core=m.l1_bytes_per_core,
            )
            if m.kind == "spill":
                current[m.tensor] = name
                spilled.add(m.tensor)
            else:
                reshards[m.operand] = name
        operands = [readable(o) for o in node.operands]
        for k, name in reshards.items():
            first = node.operands[k]
            operands = [name if node.operands[j] == first else o for j, o in enumerate(operands)]
        kept = tuple(operands)
        if kept == node.operands:
            new.insert(node)
        else:
            new.insert(attrs.evolve(node, operands=kept))
            current[node.name] = node.name  # made on the copies already: read it as it is
    return new, records
