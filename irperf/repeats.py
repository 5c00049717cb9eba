"""Runs of repeated blocks (or sequences of blocks) in a graph, for pictures that collapse them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from attrs import frozen

from irperf.graph import Graph, Node

MAX_PERIOD = 8
"""The longest sequence of blocks ``find_repeats`` looks for repetitions of."""


@frozen
class Repeat:
    """A run of ``times`` back-to-back repetitions of a period of ``period`` blocks, position by
    position structurally identical; the first period, ``drawn``, is drawn."""

    blocks: tuple[str, ...]
    kinds: tuple[str | None, ...]
    """The kind of each block of one period."""

    @property
    def period(self) -> int:
        return len(self.kinds)

    @property
    def times(self) -> int:
        return len(self.blocks) // self.period

    @property
    def drawn(self) -> tuple[str, ...]:
        return self.blocks[: self.period]

    @property
    def kind(self) -> str | None:
        """The blocks' kind when a period holds one kind only."""
        return self.kinds[0] if len(set(self.kinds)) == 1 else None


def block_members(graph: Graph) -> dict[str, list[Node]]:
    """The nodes of each block, blocks in order of their first node, nodes in graph order."""
    members: dict[str, list[Node]] = {}
    for node in graph:
        if node.block is not None:
            members.setdefault(node.block, []).append(node)
    return members


def relative_name(name: str, scope: str) -> str:
    """``name`` relative to ``scope`` (``attn.wq`` in ``vision.local.3``), else unchanged."""
    dotted = scope + "."
    return name[len(dotted) :] if name.startswith(dotted) else name


def _signature(graph: Graph, scope: str, nodes: Sequence[Node]) -> tuple[Any, ...]:
    """What must agree for two blocks to be drawn as one: names relative to the block, ops, types,
    and operands (relative when inside the block, else only marked external)."""

    def operand(name: str) -> str | None:
        return relative_name(name, scope) if graph.node(name).block == scope else None

    return tuple(
        (relative_name(n.name, scope), n.op, n.type, tuple(operand(o) for o in n.operands))
        for n in nodes
    )


def find_repeats(graph: Graph, *, max_period: int = MAX_PERIOD) -> list[Repeat]:
    """Runs of two or more back-to-back repetitions of a period of 1 to ``max_period`` blocks.

    Blocks are compared by kind and signature. Scanning left to right, the run starting at a
    block that covers the most blocks is taken (ties: the shorter period), then the scan goes on
    after it. ``text.0 .. text.39`` of Llama 3.2 11B, cross layers at 3, 8, ..., 38, is one run:
    (self, self, self, cross, self) eight times.
    """
    members = block_members(graph)
    scopes = list(members)
    interned: dict[tuple[Any, ...], int] = {}  # signatures compared once, as small ints
    sigs = [
        interned.setdefault((graph.blocks.get(s), _signature(graph, s, members[s])), len(interned))
        for s in scopes
    ]
    n = len(sigs)
    # agree[p][i]: how many blocks from i on match the block p places after them, so the blocks
    # from i repeat with period p over agree[p][i] + p blocks.
    agree: dict[int, list[int]] = {}
    for p in range(1, max_period + 1):
        a = [0] * (n + 1)
        for i in range(n - p - 1, -1, -1):
            a[i] = a[i + 1] + 1 if sigs[i] == sigs[i + p] else 0
        agree[p] = a
    runs: list[Repeat] = []
    i = 0
    while i < n:
        covered, period = 0, 0
        for p in range(1, max_period + 1):
            times = (agree[p][i] + p) // p
            if times >= 2 and times * p > covered:
                covered, period = times * p, p
        if not covered:
            i += 1
            continue
        kinds = tuple(graph.blocks.get(s) for s in scopes[i : i + period])
        runs.append(Repeat(tuple(scopes[i : i + covered]), kinds))
        i += covered
    return runs
