"""DRAM traffic under fusion: intermediates of a group stay on chip.

Per node: an operand is read only if its producer is outside the node's group, and a given
tensor only once per group (weights too: read once by each group using them); the result is
written only if a reader is outside the group or it has none (a graph output). With every node
alone this is the ``bytes`` pass exactly (for nodes that list no operand twice). A reshape is a
view: it moves nothing, and its readers read the tensor it views, so views never hide a transfer.
A cache append aliases its cache the same way (its readers read the cache's storage, so fusing
attention with the append never makes the old rows free), but it reads its new rows and always
writes them in place: the cache outlives the step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

from attrs import frozen

from irperf.errors import PassError
from irperf.graph import Graph
from irperf.ops import (
    CacheAppend,
)
from irperf.ops.taxonomy import ALIASES, VIEWS
from irperf.rules import RuleContext
from passes.bytes import WRITES, literal_names, operand_reads
from passes.conventions import Convention, counts

OUTPUT = -1
"""A consumer standing for "read after the graph": always outside every group."""


@frozen
class NodeIO:
    """What one node moves, aliases resolved. ``reads``: (storage index, bytes) per operand;
    ``write``: bytes written when the result leaves its group; ``consumers``: real readers;
    ``alias``: the result lives in another node's storage (nothing of its own on chip)."""

    reads: tuple[tuple[int, int], ...]
    write: int
    consumers: tuple[int, ...]
    out_bytes: int
    counted: bool
    alias: bool


class TrafficModel:
    """Per-node transfers of a graph under a convention, computed once; groups vary."""

    def __init__(self, graph: Graph, convention: Convention) -> None:
        nodes = list(graph)
        index = {n.name: i for i, n in enumerate(nodes)}
        self.names = [n.name for n in nodes]
        view = [isinstance(n.op, VIEWS) for n in nodes]
        alias = [isinstance(n.op, ALIASES) for n in nodes]
        storage = list(range(len(nodes)))  # an alias reads through to the storage it lives in
        # readers[p]: (reader, whether it reads p through an alias: then its readers read p)
        readers: list[list[tuple[int, bool]]] = [[] for _ in nodes]
        for i, n in enumerate(nodes):
            if alias[i]:
                storage[i] = storage[index[n.operands[0]]]
            for k, o in enumerate(n.operands):
                readers[index[o]].append((i, alias[i] and k == 0))
        # KV caches are results of the graph even when read inside it: always written.
        results = {index[r] for r in graph.kv_cache.names if r in index}
        real: list[tuple[int, ...]] = [()] * len(nodes)
        for i in reversed(range(len(nodes))):
            out: list[int] = []
            for r, through in readers[i]:
                out.extend(real[r] if through else (r,))
            if not readers[i] or i in results or isinstance(nodes[i].op, CacheAppend):
                out.append(OUTPUT)  # a cache append writes storage that outlives the step
            real[i] = tuple(dict.fromkeys(out))
        literals = literal_names(graph)
        self.io: list[NodeIO] = []
        for i, n in enumerate(nodes):
            ctx = RuleContext.of(graph, n)
            split = operand_reads(graph, ctx, literals)
            reads = tuple((storage[index[o]], b) for o, b in zip(n.operands, split, strict=True))
            self.io.append(
                NodeIO(
                    reads=tuple(r for r in reads if r[1]),
                    write=0 if view[i] else WRITES.lookup(n)(ctx),
                    consumers=real[i],
                    out_bytes=n.type.nbytes,
                    counted=counts(convention, n.op),
                    alias=alias[i],
                )
            )

        self.producers: list[list[int]] = [[] for _ in nodes]  # consumers, the other way
        for i, io in enumerate(self.io):
            for c in io.consumers:
                if c != OUTPUT:
                    self.producers[c].append(i)

    def __len__(self) -> int:
        return len(self.io)

    def alone(self, i: int) -> GroupTraffic:
        """Node ``i`` as a group of its own (``group_bytes([i])``, kept for merging)."""
        io = self.io[i]
        reads: dict[int, int] = {}
        if io.counted:
            for p, b in io.reads:
                if p != i and b > reads.get(p, 0):
                    reads[p] = b
        writes = io.write if io.counted and io.write and self.leaves(i, {i}.__contains__) else 0
        working = io.out_bytes if not io.alias and i in io.consumers else 0
        return GroupTraffic({i}, reads, sum(reads.values()), writes, working)

    def merged(self, a: GroupTraffic, b: GroupTraffic) -> GroupTraffic:
        """``a`` and ``b`` as one group: ``group_bytes`` of their members, from the two groups'
        own figures and the edges between them (the smaller group's members are visited)."""
        small, big = (a, b) if len(a.members) <= len(b.members) else (b, a)
        members = big.members | small.members
        reads = dict(big.reads)
        for p, v in small.reads.items():
            if v > reads.get(p, 0):
                reads[p] = v
        for p in small.members:  # what the big group read of the small one is inside now
            reads.pop(p, None)
        for p in small.reads:
            if p in big.members:
                reads.pop(p, None)
        writes, working = a.writes + b.writes, a.working + b.working
        touched: set[int] = set()
        for i in small.members:
            if any(c in big.members for c in self.io[i].consumers):
                touched.add(i)
            touched.update(p for p in self.producers[i] if p in big.members)
        for i in touched:  # a member read by the other group: on chip now, maybe not written
            io = self.io[i]
            own = small.members if i in small.members else big.members
            if not io.alias and not any(c in own for c in io.consumers):
                working += io.out_bytes
            leaving = io.counted and io.write and self.leaves(i, own.__contains__)
            if leaving and not self.leaves(i, members.__contains__):
                writes -= io.write
        return GroupTraffic(members, reads, sum(reads.values()), writes, working)

    def leaves(self, i: int, inside: Callable[[int], bool]) -> bool:
        """Whether node ``i``'s result is read outside (``inside`` is group membership)."""
        return any(c == OUTPUT or not inside(c) for c in self.io[i].consumers)

    def group_bytes(self, members: Iterable[int]) -> tuple[int, int]:
        """DRAM bytes of a group of node indices, and its on-chip working set: the results
        that some other member reads (kept on chip whole: a documented, conservative estimate)."""
        inside = set(members)
        read: dict[int, int] = {}  # outside tensor -> the most any member reads of it
        total = working = 0
        for i in sorted(inside):
            io = self.io[i]
            if not io.alias and any(c in inside for c in io.consumers):
                working += io.out_bytes
            if not io.counted:
                continue
            for p, b in io.reads:
                if p not in inside and b > read.get(p, 0):
                    read[p] = b
            if io.write and self.leaves(i, inside.__contains__):
                total += io.write
        return total + sum(read.values()), working


class GroupTraffic:
    """A group's figures under ``TrafficModel``: its members, the most any member reads of each
    outside storage, and the DRAM bytes, writes and on-chip working set ``group_bytes`` gives."""

    __slots__ = ("members", "read_bytes", "reads", "working", "writes")

    def __init__(
        self, members: set[int], reads: dict[int, int], read_bytes: int, writes: int, working: int
    ) -> None:
        self.members, self.reads, self.read_bytes = members, reads, read_bytes
        self.writes, self.working = writes, working

    @property
    def dram_bytes(self) -> int:
        return self.writes + self.read_bytes


@frozen
class Transfer:
    """One DRAM transfer: ``node`` reads (or writes) the result of node ``tensor``."""

    node: int
    tensor: int
    bytes: int
    write: bool


def traffic_model(graph: Graph, convention: Convention) -> TrafficModel:
    """The graph's traffic model, built once while its nodes and KV caches stand: planning,
    fused bytes and bytes by kind read the same one."""
    return graph.memo(
        ("traffic-model", convention), lambda: TrafficModel(graph, convention), (graph.kv_cache,)
    )


def transfers(model: TrafficModel, group_of: Sequence[int]) -> Iterator[Transfer]:
    """Every DRAM transfer when node ``i`` is in group ``group_of[i]``.

    A group reads an outside tensor once: as much of it as its most demanding member reads (a
    slice or a partial cache read takes less than a whole-tensor reader), charged to that member.
    """
    reads: dict[tuple[int, int], tuple[int, int]] = {}  # (group, tensor) -> (bytes, reader)
    for i, io in enumerate(model.io):
        if not io.counted:
            continue
        g = group_of[i]
        for p, b in io.reads:
            if group_of[p] != g and b > reads.get((g, p), (0, i))[0]:
                reads[(g, p)] = (b, i)
        if io.write and any(c == OUTPUT or group_of[c] != g for c in io.consumers):
            yield Transfer(i, i, io.write, True)
    for (_, p), (b, i) in reads.items():
        yield Transfer(i, p, b, False)


def group_indices(graph: Graph, group_names: Mapping[str, str]) -> list[int]:
    """``group_of`` for ``transfers`` from per-node group names; fails on records of another
    graph (stale records would silently cost the wrong graph)."""
    ids: dict[str, int] = {}
    out: list[int] = []
    for n in graph:
        g = group_names.get(n.name)
        if g is None:
            raise PassError(
                f"the fusion groups do not describe this graph: no group for node "
                f"'{n.name}'; run fuse on this graph"
            )
        out.append(ids.setdefault(g, len(ids)))
    if len(group_names) != len(out):
        extra = next(k for k in group_names if k not in graph)
        raise PassError(
            f"the fusion groups do not describe this graph: node '{extra}' is not "
            "in it; run fuse on this graph"
        )
    return out
