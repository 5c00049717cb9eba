"""The graph: named, typed nodes over a networkx DiGraph, with explicit operand order."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import frozen

from irperf.checks import show
from irperf.errors import PassError, TypeInferenceError, VerifyError
from irperf.ops.base import Op
from irperf.roles import Role
from irperf.types import TensorType

if TYPE_CHECKING:
    import networkx as nx

R = TypeVar("R")


@frozen
class Node:
    """One op application. ``operands`` names the producing nodes, in order (``x * x`` is legal).

    ``stage`` says what the node does in the model (``vision``, ``projector``, ``cross_kv``...);
    ``block`` is the scope of the repeated block it belongs to (``vision.local.3``), if any;
    ``role`` what it is for (``Role.Q``...), which policies and rules key on; ``fidelity`` the
    math fidelity a precision policy chose for it (None: the target's pairing for its format).
    """

    name: str
    op: Op
    operands: tuple[str, ...]
    type: TensorType
    stage: str | None = None
    block: str | None = None
    role: Role | None = None
    fidelity: str | None = None


@frozen
class KVCache:
    """Which tensors of a graph are KV cache: ``tensors`` hold a cache (prefill's K and V
    results, decode's cache inputs, the cross-attention K/V), ``appends`` write a new token's
    rows into one in place. Results of the graph even when read inside it. ``verify`` checks
    that every name is a node, so a transform that renames or drops one must keep this in step.
    """

    tensors: tuple[str, ...] = ()
    appends: tuple[str, ...] = ()

    def with_tensors(self, *names: str) -> KVCache:
        return KVCache((*self.tensors, *names), self.appends)

    def with_appends(self, *names: str) -> KVCache:
        return KVCache(self.tensors, (*self.appends, *names))

    @property
    def names(self) -> tuple[str, ...]:
        return (*self.tensors, *self.appends)


class Graph:
    """A DAG of ``Node`` records keyed by hierarchical name.

    The networkx graph holds dependency edges for traversal; each node's ``operands`` tuple is the
    truth for operand order and multiplicity. Nodes are kept in insertion order, which ``add``
    keeps topological (an operand must exist before its user). Analysis records are stored by
    record type and dropped by ``copy``, so a transform never sees stale annotations.
    """

    def __init__(self, name: str = "graph") -> None:
        self.name = name
        self.meta: dict[str, Any] = {}
        self.blocks: dict[str, str] = {}
        self.kv_cache = KVCache()
        self._nx: nx.DiGraph | None = None  # built when first asked for, then kept in step
        self._nx_shared = False  # a clone shares the view until one of the two inserts
        self._nodes: dict[str, Node] = {}
        self._records: dict[type, Any] = {}  # node records: a mapping; graph records: one value
        self._depends: dict[type, tuple[type, ...]] = {}
        self._whole: set[type] = set()  # kinds that are graph-level records
        self._memo: dict[Any, Any] = {}  # derived tables, kept while nodes and records stand

    # ---- construction -------------------------------------------------------------------
    def add(
        self,
        name: str,
        op: Op,
        operands: Iterable[str] = (),
        *,
        stage: str | None = None,
        block: str | None = None,
        role: Role | None = None,
        fidelity: str | None = None,
    ) -> Node:
        """Add a node, inferring its type from its operands'."""
        if not isinstance(name, str) or not name:
            raise VerifyError(f"a node name must be a non-empty string, got {show(name)}")
        if not isinstance(op, Op):
            raise VerifyError(f"node {show(name)}: its op must be an irperf Op, got {show(op)}")
        if name in self._nodes:
            raise VerifyError(f"node '{name}': rule unique-names: name already used")
        ops = tuple(operands)
        types = []
        for o in ops:
            node = self._nodes.get(o)
            if node is None:
                raise VerifyError(f"node '{name}': operand '{o}' is not defined before it")
            types.append(node.type)
        try:
            out = op.infer(types)
        except TypeInferenceError as e:
            raise TypeInferenceError(f"node '{name}': {e}") from None
        node = Node(name, op, ops, out, stage, block, role, fidelity)
        self.insert(node)
        return node

    def insert(self, node: Node) -> None:
        """Insert a prebuilt node; only the name is checked here (transforms use this, then
        ``verify``)."""
        if node.name in self._nodes:
            raise VerifyError(f"node '{node.name}': rule unique-names: name already used")
        self._nodes[node.name] = node
        self._memo = {}
        if self._nx_shared:  # another graph reads this view: this one starts its own
            self._nx, self._nx_shared = None, False
        if self._nx is not None:
            self._nx.add_node(node.name)
            for o in node.operands:
                self._nx.add_edge(o, node.name)

    @classmethod
    def from_nodes(cls, nodes: Iterable[Node], *, like: Graph | None = None) -> Graph:
        """A new graph from nodes (in topological order), taking name/meta/blocks from ``like``."""
        g = cls(like.name if like else "graph")
        if like is not None:
            g.meta = dict(like.meta)
            g.blocks = dict(like.blocks)
            g.kv_cache = like.kv_cache
        for n in nodes:
            g.insert(n)
        return g

    def copy(self) -> Graph:
        """A structural copy without analysis records."""
        return Graph.from_nodes(self._nodes.values(), like=self)

    def clone(self) -> Graph:
        """A copy with the same nodes and records (records are immutable, so shared): what a
        pipeline runs on, so that the caller's graph never changes. The networkx view is
        shared until either graph inserts a node."""
        g = Graph(self.name)
        g.meta = dict(self.meta)
        g.blocks = dict(self.blocks)
        g.kv_cache = self.kv_cache
        g._nodes = dict(self._nodes)
        g._nx = self._nx
        self._nx_shared = g._nx_shared = self._nx is not None
        g._records = dict(self._records)
        g._depends = dict(self._depends)
        g._whole = set(self._whole)
        g._memo = dict(self._memo)
        return g

    # ---- queries ------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._nodes)

    def __contains__(self, name: object) -> bool:
        return name in self._nodes

    def __iter__(self) -> Iterator[Node]:
        """Nodes in topological (insertion) order."""
        return iter(self._nodes.values())

    def node(self, name: str) -> Node:
        try:
            return self._nodes[name]
        except KeyError:
            raise VerifyError(f"no node named '{name}'") from None

    def operand_types(self, node: Node) -> list[TensorType]:
        nodes = self._nodes
        return [nodes[o].type for o in node.operands]

    def users(self, name: str) -> list[str]:
        """Nodes that read ``name`` (each once, however many operands it fills)."""
        if name not in self._nodes:
            raise VerifyError(f"no node named {show(name)}")
        return list(self.nx.successors(name))

    def scope(self, prefix: str) -> list[Node]:
        """Nodes whose name is ``prefix`` or lies under it (``prefix.``...)."""
        dotted = prefix + "."
        return [n for n in self._nodes.values() if n.name == prefix or n.name.startswith(dotted)]

    def nx_view(self) -> nx.DiGraph | None:
        """The networkx graph if one was built, else None (building it costs an import)."""
        return self._nx

    @property
    def nx(self) -> nx.DiGraph:
        """The underlying networkx graph (read it; do not mutate it)."""
        if self._nx is None:
            import networkx as nx  # on first use: a CLI run that never traverses skips it

            g = nx.DiGraph()
            g.add_nodes_from(self._nodes)
            g.add_edges_from((o, n.name) for n in self._nodes.values() for o in n.operands)
            self._nx = g
        return self._nx

    # ---- analysis records ---------------------------------------------------------------
    def set_records(
        self, kind: type[R], records: Mapping[str, R], depends_on: tuple[type, ...] = ()
    ) -> None:
        """Store ``records`` under ``kind``, computed from the ``depends_on`` record kinds.

        Records computed from an earlier ``kind`` are stale once it is replaced (a roofline of
        matmul-only FLOPs after ``flops{convention=full}``): they are dropped, and so are those
        computed from them, never left to mix with the new ones."""
        self._store(kind, records, depends_on)
        self._whole.discard(kind)

    def set_graph_record(self, record: object, depends_on: tuple[type, ...] = ()) -> None:
        """Store one record about the whole graph (a memory footprint, later a schedule) under
        its type; the same staleness rule as ``set_records`` applies."""
        self._store(type(record), record, depends_on)
        self._whole.add(type(record))

    def memo(self, key: Any, make: Callable[[], R], depends: tuple[object, ...] = ()) -> R:
        """``make()``, computed once while the graph's nodes stay as they are and each object
        in ``depends`` (the records it reads) is the same object: a pure function of them,
        named by ``key`` (the traffic model several passes read)."""
        found = self._memo.get(key)
        if found is None or any(a is not b for a, b in zip(found[0], depends, strict=True)):
            found = (depends, make())
            self._memo[key] = found
        value: R = found[1]
        return value

    def memoized(self, key: Any) -> bool:
        """Whether ``memo`` holds ``key`` (a caller may derive from it rather than walk)."""
        return key in self._memo

    def _store(self, kind: type, value: Any, depends_on: tuple[type, ...]) -> None:
        stale = [kind]
        while stale:
            changed = stale.pop()
            for other, inputs in list(self._depends.items()):
                if changed in inputs and other in self._records and other is not kind:
                    del self._records[other]
                    del self._depends[other]
                    self._whole.discard(other)
                    stale.append(other)
        self._records[kind] = value
        self._depends[kind] = tuple(depends_on)

    def records(self, kind: type[R]) -> Mapping[str, R]:
        if kind in self._records and kind not in self._whole:
            found: Mapping[str, R] = self._records[kind]
            return found
        raise PassError(
            f"the graph has no {kind.__name__} records; run the pass that computes them first"
        )

    def graph_record(self, kind: type[R]) -> R:
        if kind in self._whole:
            found: R = self._records[kind]
            return found
        raise PassError(
            f"the graph has no {kind.__name__} record; run the pass that computes it first"
        )

    def has_records(self, kind: type) -> bool:
        return kind in self._records and kind not in self._whole

    def has_graph_record(self, kind: type) -> bool:
        return kind in self._whole

    def record_kinds(self) -> list[type[Any]]:
        """The kinds of per-node records the graph holds."""
        return [k for k in self._records if k not in self._whole]

    def graph_record_kinds(self) -> list[type[Any]]:
        """The kinds of graph-level records the graph holds."""
        return [k for k in self._records if k in self._whole]
