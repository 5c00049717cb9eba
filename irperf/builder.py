"""The builder: the only way lowering creates nodes, with hierarchical name scopes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from attrs import frozen

from irperf.checks import show
from irperf.dtypes import DType
from irperf.errors import VerifyError
from irperf.graph import Graph
from irperf.ops import Constant, Input, Op, Weight
from irperf.roles import Role
from irperf.types import TensorType


@frozen
class Value:
    """A handle on a node's result, as lowering code passes it around."""

    name: str
    type: TensorType

    @property
    def shape(self) -> tuple[int, ...]:
        return self.type.shape


class Builder:
    """Adds nodes to a graph under the current name scope, stage and block.

    ``with b.scope("attn"): b.add(MatMul(), x, w, name="wq")`` creates ``<outer>.attn.wq``.
    ``block`` is a scope that also records a repeated block and its kind (``vision.local``), which
    reports group by and pictures collapse.
    """

    def __init__(self, graph: Graph | None = None) -> None:
        if graph is not None and not isinstance(graph, Graph):
            raise VerifyError(f"a Builder builds an irperf Graph, got {show(graph)}")
        self.graph = graph if graph is not None else Graph()
        self._scopes: list[str] = []
        self._stage: str | None = None
        self._block: str | None = None
        self._role: Role = Role.OTHER

    def qualify(self, name: str) -> str:
        return ".".join([*self._scopes, name]) if self._scopes else name

    @contextmanager
    def scope(self, name: str) -> Iterator[None]:
        if not isinstance(name, str) or not name:
            raise VerifyError(f"a scope name must be a non-empty string, got {show(name)}")
        self._scopes.append(name)
        try:
            yield
        finally:
            self._scopes.pop()

    @contextmanager
    def block(self, name: str, kind: str) -> Iterator[None]:
        full = self.qualify(name)
        self.graph.blocks[full] = kind
        outer = self._block
        self._block = full
        try:
            with self.scope(name):
                yield
        finally:
            self._block = outer

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        outer = self._stage
        self._stage = name
        try:
            yield
        finally:
            self._stage = outer

    @contextmanager
    def role(self, role: Role) -> Iterator[None]:
        """Nodes added inside take ``role`` unless ``add`` names another."""
        outer = self._role
        self._role = role
        try:
            yield
        finally:
            self._role = outer

    def add(self, op: Op, *operands: Value, name: str, role: Role | None = None) -> Value:
        node = self.graph.add(
            self.qualify(name),
            op,
            [v.name for v in operands],
            stage=self._stage,
            block=self._block,
            role=role or self._role,
        )
        return Value(node.name, node.type)

    def input(
        self, name: str, shape: tuple[int, ...], dtype: DType, *, role: Role | None = None
    ) -> Value:
        return self.add(Input(type=TensorType(shape, dtype)), name=name, role=role)

    def weight(
        self, name: str, shape: tuple[int, ...], dtype: DType, *, role: Role | None = None
    ) -> Value:
        return self.add(Weight(type=TensorType(shape, dtype)), name=name, role=role)

    def constant(self, name: str, value: float, shape: tuple[int, ...], dtype: DType) -> Value:
        return self.add(Constant(type=TensorType(shape, dtype), value=value), name=name)
