"""Fusion groups as a union-find over the graph's nodes that refuses merges creating a cycle.

Merging two groups is legal when no path leads from one to the other through a third group
(else the condensed group graph would have a cycle). To check that in near-linear time the
partition keeps a topological order of the groups (``ord``): a path from A to B (``ord`` A <
``ord`` B) only visits groups ordered between them, so the search stays local. After a merge the
order is repaired as in Pearce and Kelly's dynamic topological sort: the groups that reach B
come first, then the merged group, then the groups A reaches.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from irperf.graph import Graph
from irperf.ops import Collective, MemoryMove, Source

ALONE = (Source, Collective, MemoryMove)


class Partition:
    """Groups of node indices (the graph's topological order). Sources always stay alone, and
    so do collectives and the placement's copies: a fused kernel runs on one chip, so no group
    spans chips, and a spill or reshard is a move between homes, not work to fuse."""

    def __init__(self, graph: Graph) -> None:
        nodes = list(graph)
        self.names = [n.name for n in nodes]
        self.index = {name: i for i, name in enumerate(self.names)}
        self.source = [isinstance(n.op, ALONE) for n in nodes]
        self.preds = [tuple(dict.fromkeys(self.index[o] for o in n.operands)) for n in nodes]
        succs: list[list[int]] = [[] for _ in nodes]
        for i, ps in enumerate(self.preds):
            for p in ps:
                succs[p].append(i)
        self.succs = [tuple(s) for s in succs]
        self._parent = list(range(len(nodes)))
        self.members: list[list[int]] = [[i] for i in range(len(nodes))]
        self.tags: list[set[str]] = [set() for _ in nodes]
        self._ord = list(range(len(nodes)))

    def __len__(self) -> int:
        return len(self.names)

    def find(self, i: int) -> int:
        parent = self._parent
        root = i
        while parent[root] != root:
            root = parent[root]
        while parent[i] != root:
            parent[i], i = root, parent[i]
        return root

    def _search(self, a: int, b: int, edges: Sequence[tuple[int, ...]], bound: int) -> set[int]:
        """Groups reachable from group ``a`` along ``edges`` whose order is strictly between
        ``ord[a]`` and ``bound``, ``b`` excluded; ``-1`` in the result means a path from ``a``
        reaches ``b`` through another group."""
        ordr, seen, stack = self._ord, set(), [a]
        ahead = bound > ordr[a]
        while stack:
            g = stack.pop()
            for m in self.members[g]:
                for nxt in edges[m]:
                    h = self.find(nxt)
                    if h in (g, a) or h in seen:
                        continue
                    if h == b:
                        if g != a:
                            return {-1}
                        continue
                    if (ordr[h] < bound) if ahead else (ordr[h] > bound):
                        seen.add(h)
                        stack.append(h)
        return seen

    def _pair(self, x: int, y: int) -> tuple[int, int] | bool:
        """The groups of ``x`` and ``y`` in topological order, or the answer when it is already
        known: True (one group already), False (a source never fuses)."""
        a, b = self.find(x), self.find(y)
        if a == b:
            return True
        if self.source[a] or self.source[b]:
            return False
        return (a, b) if self._ord[a] <= self._ord[b] else (b, a)

    def legal(self, x: int, y: int) -> bool:
        """Whether the groups of nodes ``x`` and ``y`` may be merged."""
        pair = self._pair(x, y)
        if isinstance(pair, bool):
            return pair
        a, b = pair
        return -1 not in self._search(a, b, self.succs, self._ord[b])

    def merge(self, x: int, y: int, tag: str | None = None) -> bool:
        """Merge the groups of ``x`` and ``y`` if legal; whether they are (now) one group."""
        pair = self._pair(x, y)
        if isinstance(pair, bool):
            return pair
        a, b = pair
        ordr = self._ord
        forward = self._search(a, b, self.succs, ordr[b])
        if -1 in forward:
            return False
        backward = self._search(b, a, self.preds, ordr[a])
        slots = sorted(ordr[g] for g in (*backward, a, b, *forward))
        big, small = (a, b) if len(self.members[a]) >= len(self.members[b]) else (b, a)
        # Groups reaching B take the lowest slots, those A reaches the highest: their orders
        # only fall (rise), so every edge leaving (entering) the pool stays ordered.
        nb = len(backward)
        for g, slot in zip(sorted(backward, key=ordr.__getitem__), slots[:nb], strict=True):
            ordr[g] = slot
        ordr[big] = slots[nb]
        for g, slot in zip(sorted(forward, key=ordr.__getitem__), slots[nb + 2 :], strict=True):
            ordr[g] = slot
        self._parent[small] = big
        self.members[big].extend(self.members[small])
        self.members[small] = []
        self.tags[big] |= self.tags[small]
        if tag is not None:
            self.tags[big].add(tag)
        return True

    def merge_names(self, pairs: Iterable[tuple[str, str, str]], sweeps: int = 4) -> None:
        """Merge ``(tag, a, b)`` pairs in order, sweeping again while a sweep merged anything
        (an earlier refusal can become legal once the path's middle joins a group)."""
        todo = [(tag, self.index[a], self.index[b]) for tag, a, b in pairs]
        for _ in range(sweeps):
            changed = False
            for tag, a, b in todo:
                if self.find(a) != self.find(b) and self.merge(a, b, tag):
                    changed = True
            if not changed:
                return

    def groups(self) -> list[list[int]]:
        """Every group's members, sorted; groups in order of their first member."""
        roots = sorted({self.find(i) for i in range(len(self))}, key=lambda r: min(self.members[r]))
        return [sorted(self.members[r]) for r in roots]

    def group_of(self) -> list[int]:
        """For every node, the index of its group's first member."""
        out = [0] * len(self)
        for members in self.groups():
            for m in members:
                out[m] = members[0]
        return out
