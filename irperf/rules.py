"""Per-op rule tables: a registry keyed by op class, looked up along the class hierarchy."""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from attrs import frozen

from irperf.dtypes import tile_count
from irperf.errors import PassError
from irperf.graph import Graph, Node
from irperf.ops.base import Op
from irperf.types import TensorType

F = TypeVar("F", bound=Callable[..., object])


NO_OPTIONS: Mapping[str, Any] = types.MappingProxyType({})


@frozen
class RuleContext:
    """What a per-op cost rule sees, in one frozen record (as JAX's roofline rule context): the
    node (its op, role and stage), its operand types and result type, each with its layout, the
    target (a ``targets.Target``, or None for target-free counts) and the pass's options. A rule
    that depends on where an operand lives reads it here, in one line."""

    node: Node
    inputs: tuple[TensorType, ...]
    target: Any = None
    options: Mapping[str, Any] = NO_OPTIONS

    @property
    def op(self) -> Op:
        return self.node.op

    def nbytes(self, t: TensorType) -> int:
        """``t``'s bytes as this cost counts them: exact by default; with the option
        ``tiled`` (a placement in TILE layout) whole 32x32 tiles, as the device stores a tensor
        (a decode row ``[1, 1, 4096]`` is 32 rows)."""
        if self.options.get("tiled"):
            return tile_count(t.shape) * t.dtype.tile_bytes
        return t.nbytes

    @property
    def output(self) -> TensorType:
        return self.node.type

    @classmethod
    def of(
        cls, graph: Graph, node: Node, target: Any = None, options: Mapping[str, Any] | None = None
    ) -> RuleContext:
        return cls(node, tuple(graph.operand_types(node)), target, options or NO_OPTIONS)


class RuleTable(Generic[F]):
    """Rules for one pass. ``@table.rule(MatMul)`` registers a rule; a rule registered on a family
    base class (``Unary``) covers every op of the family unless a subclass has its own.

    An op with no rule is an error naming the op, the node and the pass: never a silent zero.
    """

    def __init__(self, pass_name: str) -> None:
        self.pass_name = pass_name
        self._rules: dict[type[Op], F] = {}
        self._cache: dict[type[Op], F] = {}

    def rule(self, *op_classes: type[Op]) -> Callable[[F], F]:
        def register(fn: F) -> F:
            for cls in op_classes:
                self._rules[cls] = fn
            self._cache.clear()
            return fn

        return register

    def lookup(self, node: Node) -> F:
        cls = type(node.op)
        fn = self._cache.get(cls)
        if fn is not None:
            return fn
        for base in cls.__mro__:
            fn = self._rules.get(base)
            if fn is not None:
                self._cache[cls] = fn
                return fn
        raise PassError(
            f"pass '{self.pass_name}' has no rule for op '{node.op.kind}' "
            f"({cls.__name__}) at node '{node.name}'"
        )

    def covers(self, cls: type[Op]) -> bool:
        return any(base in self._rules for base in cls.__mro__)
