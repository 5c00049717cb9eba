"""Folding: a graph whose repeated blocks appear once, for sweeps that cost each distinct block
once and scale.

``find_repeats`` finds runs of structurally identical blocks (the 11B's 32 local and 8 global
vision layers; its 40 text layers as (self, self, self, cross, self) eight times). ``fold`` keeps
the first period of each run and drops the others; what read the last period reads the first.
Every node keeps its name, so the passes run on the folded graph unchanged, and each node of a
kept period stands for ``times`` nodes of the whole graph (``Folded.times_of``).

A run is first cut after every instance that something outside it reads (the vision encoder's
intermediate layers 3, 7, 15, 23 and 30 of 32), so that what follows a run reads its last
instance only. A run folds only where that is provably the same as the whole walk, checked
here:

- each instance of the run is contiguous in graph order and its nodes are named under their
  block, so instance ``j`` of a node is its name with the block renamed;
- what an instance reads from outside itself is either the previous instance (the *carry*: the
  residual stream) or one node every instance reads (rope tables, the projector's output). The
  first instance reads, in the carry's place, a node ``P`` before the run; inside the run only
  the first instance reads ``P``, and it has the carried tensor's type, so every instance holds
  the same live memory (a ``P`` also read after the run, a tapped layer, stays live through
  the run: ``passes/folding.footprint`` counts the carry each later instance holds beside it);
- what follows the run reads its last instance only.

Per node, what a local pass computes (FLOPs, bytes, homes, tiles, op times) is then the same
for every instance. The schedule is not local: ``passes/folding.py`` replays it over the whole
program from the folded steps, and ``tests/test_folding.py`` holds every folded figure equal
to the whole walk's.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import attrs
from attrs import frozen

from irperf.graph import Graph, KVCache, Node
from irperf.repeats import block_members, find_repeats, relative_name


@frozen
class FoldedRun:
    """A run kept as its first period."""

    blocks: tuple[str, ...]
    """The kept period's block scopes."""
    times: int
    """How many periods the whole graph has."""
    carry: Mapping[str, str]
    """``P`` -> ``E``: where the first period reads ``P`` (before the run), period ``j`` reads
    period ``j - 1``'s ``E`` (a node of the kept period)."""


@frozen
class Folded:
    graph: Graph
    runs: tuple[FoldedRun, ...]

    def run_of(self) -> dict[str | None, int]:
        """Each kept block scope's run (its index in ``runs``)."""
        return {b: i for i, r in enumerate(self.runs) for b in r.blocks}

    def times_of(self, node: Node) -> int:
        """How many nodes of the whole graph ``node`` stands for."""
        for r in self.runs:
            if node.block in r.blocks:
                return r.times
        return 1


def _rename(name: str, scope: str, to: str) -> str:
    return to + "." + relative_name(name, scope)


def fold(graph: Graph) -> Folded | None:
    """``graph`` with each run of repeated blocks kept once; None where no run folds. A run is
    cut after every instance that something outside it reads (the vision encoder's
    intermediate layers), and a run that breaks a rule of the module docstring is kept whole."""
    members = block_members(graph)
    order = {n.name: i for i, n in enumerate(graph)}
    readers: dict[str, list[str]] = {}
    for n in graph:
        for o in n.operands:
            readers.setdefault(o, []).append(n.name)
    drop: dict[str, str] = {}  # a dropped node -> its first-period equivalent
    runs: list[FoldedRun] = []
    for r in find_repeats(graph):
        period = r.period
        instances = [r.blocks[j * period : (j + 1) * period] for j in range(r.times)]
        inside = {n.name for s in r.blocks for n in members[s]}
        tapped = [
            j
            for j, scopes in enumerate(instances)
            if any(
                u not in inside for s in scopes for n in members[s] for u in readers.get(n.name, ())
            )
        ]
        cuts = sorted({j + 1 for j in tapped if j + 1 < r.times} | {0, r.times})
        for a, b in itertools.pairwise(cuts):
            if b - a >= 2:
                got = _fold_run(graph, members, order, readers, instances[a:b])
                if got is not None:
                    runs.append(got[0])
                    drop.update(got[1])
    if not runs:
        return None
    runs = [  # a carry from a run before, folded itself, is read from its kept instance
        attrs.evolve(r, carry={drop.get(p, p): e for p, e in r.carry.items()}) for r in runs
    ]
    nodes = []
    for n in graph:
        if n.name in drop:
            continue
        ops = tuple(drop.get(o, o) for o in n.operands)
        nodes.append(attrs.evolve(n, operands=ops) if ops != n.operands else n)
    folded = Graph.from_nodes(nodes, like=graph)
    kept = {n.block for n in nodes}
    folded.blocks = {k: v for k, v in graph.blocks.items() if k in kept}
    kv = graph.kv_cache
    folded.kv_cache = KVCache(
        tuple(t for t in kv.tensors if t not in drop),
        tuple(t for t in kv.appends if t not in drop),
    )
    return Folded(folded, tuple(runs))


def _fold_run(
    graph: Graph,
    members: Mapping[str, list[Node]],
    order: Mapping[str, int],
    readers: Mapping[str, list[str]],
    instances: list[tuple[str, ...]],
) -> tuple[FoldedRun, dict[str, str]] | None:
    """One run (instances of a period, only the last read from outside) folded: its record and
    the nodes it drops, each to its first-instance equivalent; None where a rule fails."""
    inst_of: dict[str, int] = {}
    rel: dict[str, tuple[int, str]] = {}  # node -> (position in period, name in block)
    for j, scopes in enumerate(instances):
        for pos, scope in enumerate(scopes):
            for n in members[scope]:
                if not n.name.startswith(scope + "."):
                    return None
                inst_of[n.name] = j
                rel[n.name] = (pos, relative_name(n.name, scope))
    spots = sorted(order[name] for name in inst_of)
    if spots[-1] - spots[0] + 1 != len(spots):
        return None  # another node sits inside the run
    firsts = [min(order[n.name] for s in scopes for n in members[s]) for scopes in instances]
    if firsts != sorted(firsts):
        return None
    first = instances[0]
    carry: dict[str, str] = {}
    for j in range(1, len(instances)):
        for pos, scope in enumerate(instances[j]):
            for n in members[scope]:
                twin = graph.node(_rename(n.name, scope, first[pos]))
                for o, o0 in zip(n.operands, twin.operands, strict=True):
                    at = inst_of.get(o)
                    if at == j:
                        continue  # inside the instance: the signature matched it
                    if at is None:
                        if o != o0:
                            return None  # an outside node, but not the same for all
                    elif at == j - 1 and o0 not in inst_of:
                        p_pos, p_rel = rel[o]
                        if carry.setdefault(o0, first[p_pos] + "." + p_rel) != carry[o0]:
                            return None
                        if carry[o0] != first[p_pos] + "." + p_rel:
                            return None
                    else:
                        return None
    for p, e in carry.items():
        if any(inst_of.get(u, 0) != 0 for u in readers.get(p, ())):
            return None  # P is read inside the run beyond the first instance
        if graph.node(p).type != graph.node(e).type:
            return None
    last = len(instances) - 1
    for name, j in inst_of.items():
        if j != last and any(u not in inst_of for u in readers.get(name, ())):
            return None  # what follows reads an instance other than the last
    drop = {}
    for name, j in inst_of.items():
        if j:
            pos, rname = rel[name]
            drop[name] = first[pos] + "." + rname
    return FoldedRun(tuple(first), len(instances), carry), drop
