"""The ``memory`` pass: device memory by class (weights, KV cache, activations) and the live peak.

Rules, in the graph's (topological) order, one step per node:

- Storage: a ``Reshape`` result is a view of its operand's storage; a ``CacheAppend`` (decode's
  ``graph.kv_cache.appends``) grows its first operand's storage (a cache) in place by
  the rows it appends, of the same class, allocated at its step. Every other node owns its
  result's storage.
- Class of a storage: a ``Weight``'s is weight memory; one holding a tensor listed in
  ``graph.kv_cache.tensors`` is KV cache; every other one (inputs, constants, op results) is an
  activation. Weights and caches are reported apart and never count as activations.
- Lifetime of an activation: from the step of the node that produces it to the step of its
  last reader (through any view). A result nobody reads (a graph output, the logits) stays
  live to the end of the graph. While a node runs, its operands and its result are all live.

``kv_cache_bytes`` is the caches as held after the phase: each cache tensor, plus the rows an
append adds (decode's new token). Counts are exact integers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from attrs import frozen

from irperf.graph import Graph
from irperf.ops import CacheAppend, Weight
from irperf.ops.taxonomy import ALIASES
from irperf.pass_manager import AnalysisPass, register_pass


@frozen(kw_only=True)
class MemoryUse:
    """Storage a node allocates, by class, and the activation bytes live while it runs.

    Adding records sums the allocations and keeps the larger live figure, so the sum over a
    graph is its footprint (``activation_peak_bytes`` = the largest ``live_activation_bytes``).
    """

    weight_bytes: int = 0
    kv_cache_bytes: int = 0
    activation_bytes: int = 0
    live_activation_bytes: int = 0

    def __add__(self, other: MemoryUse) -> MemoryUse:
        return MemoryUse(
            weight_bytes=self.weight_bytes + other.weight_bytes,
            kv_cache_bytes=self.kv_cache_bytes + other.kv_cache_bytes,
            activation_bytes=self.activation_bytes + other.activation_bytes,
            live_activation_bytes=max(self.live_activation_bytes, other.live_activation_bytes),
        )

    @classmethod
    def zero(cls) -> MemoryUse:
        return cls()


@frozen(kw_only=True)
class MemoryFootprint:
    """What must fit in device memory for one run of the graph."""

    weights_bytes: int
    kv_cache_bytes: int
    activation_peak_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.kv_cache_bytes + self.activation_peak_bytes


def memory_uses(graph: Graph, keep_live: Mapping[str, int] | None = None) -> dict[str, MemoryUse]:
    """One ``MemoryUse`` per node, by the rules of the module docstring. Linear in graph size.
    ``keep_live``: tensors live at least to a step (a folded graph's shared inputs,
    ``passes/folding.py``)."""
    nodes = list(graph)
    root: dict[str, str] = {}  # node -> the node owning its storage
    last: dict[str, int] = {}  # storage owner -> step of its last reader
    end = len(nodes) - 1
    read = {o for node in nodes for o in node.operands}
    for i, node in enumerate(nodes):
        for o in node.operands:
            last[root[o]] = i
        aliases = isinstance(node.op, ALIASES)
        root[node.name] = root[node.operands[0]] if aliases else node.name
        if node.name not in read:
            last[root[node.name]] = end  # a graph output stays live to the end
    for name, step in (keep_live or {}).items():
        last[root[name]] = max(last.get(root[name], step), step)
    cache = {root[name] for name in graph.kv_cache.tensors}

    weights: dict[str, int] = {}
    caches: dict[str, int] = {}
    activations: dict[str, int] = {}
    delta = [0] * (len(nodes) + 1)
    for i, node in enumerate(nodes):
        owner = root[node.name]
        size = node.type.nbytes
        if isinstance(node.op, CacheAppend):  # the owner's storage grows by the appended rows
            size -= graph.node(node.operands[0]).type.nbytes
        elif owner != node.name:
            continue  # a view allocates nothing
        if isinstance(node.op, Weight):
            weights[node.name] = size
        elif owner in cache:
            caches[node.name] = size
        else:
            activations[node.name] = size
            delta[i] += size
            delta[last.get(owner, i) + 1] -= size

    out: dict[str, MemoryUse] = {}
    live = 0
    for i, node in enumerate(nodes):
        live += delta[i]
        name = node.name
        out[name] = MemoryUse(
            weight_bytes=weights.get(name, 0),
            kv_cache_bytes=caches.get(name, 0),
            activation_bytes=activations.get(name, 0),
            live_activation_bytes=live,
        )
    return out


def footprint(records: Mapping[str, MemoryUse]) -> MemoryFootprint:
    """The footprint from a graph's ``MemoryUse`` records."""
    total = sum(records.values(), MemoryUse.zero())
    return MemoryFootprint(
        weights_bytes=total.weight_bytes,
        kv_cache_bytes=total.kv_cache_bytes,
        activation_peak_bytes=total.live_activation_bytes,
    )


def memory_footprint(graph: Graph) -> MemoryFootprint:
    """Weights, KV cache and peak live activations of ``graph`` (its record if the pass ran)."""
    if graph.has_graph_record(MemoryFootprint):
        return graph.graph_record(MemoryFootprint)
    return footprint(memory_uses(graph))


def peak_node(records: Mapping[str, MemoryUse]) -> str | None:
    """The first node at which live activations peak (None for an empty graph)."""
    best: str | None = None
    peak = -1
    for name, use in records.items():
        if use.live_activation_bytes > peak:
            best, peak = name, use.live_activation_bytes
    return best


@register_pass
@frozen(kw_only=True)
class MemoryPass(AnalysisPass):
    """Device memory per node: weights, KV cache, activations and the live activation bytes."""

    name: ClassVar[str] = "memory"
    summary: ClassVar[str] = "weights, KV cache and peak live activation bytes"
    record_type: ClassVar[type] = MemoryUse

    def analyze(self, graph: Graph) -> dict[str, MemoryUse]:
        return memory_uses(graph)

    def summarize(self, graph: Graph, records: Mapping[str, MemoryUse]) -> MemoryFootprint:
        return footprint(records)  # the graph-level record: graph.graph_record(MemoryFootprint)
