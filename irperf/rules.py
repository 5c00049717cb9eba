"""Per-op rule tables: a registry keyed by op class, looked up along the class hierarchy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from irperf.errors import PassError
from irperf.graph import Node
from irperf.ops.base import Op

F = TypeVar("F", bound=Callable[..., object])


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
