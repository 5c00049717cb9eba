"""The ``tensor-parallel`` transform: one-dimensional tensor parallelism over ``chips`` chips.

A rule table keyed by role (never by node name) says how each weight is split; op layouts then
follow by inference (``irperf.ops.spmd``), and the transform inserts the collectives tt-metal
runs for Llama 3.2 Vision on a 1xN mesh (``docs/machine.md``):

- column-parallel (weight split on its output columns): q, k, v, ff1, ff3, fc1, cross_q,
  cross_kv, the vision projection and lm_head; their biases split alike;
- row-parallel (weight split on its input rows, each chip's product a partial sum): o, ff2, fc2,
  cross_o; their biases stay whole and are added after the reduction;
- attention on each chip's own heads (query and KV heads divided; a clear error when they do
  not divide); KV caches split on their heads; norms, embeddings, gates and inputs replicated;
- the vision encoder all-reduces after each row-parallel matmul (2 per layer);
- text and cross-attention layers under ``pattern=fractured`` (the default) keep the residual
  stream split on its width: an all-gather before each norm that reads it, a reduce-scatter
  after each row-parallel matmul (2 + 2 per layer); under ``pattern=all-reduce`` the residual
  is whole and each row-parallel matmul is followed by an all-reduce;
- an all-gather after the vision projection and after the lm_head.

Node names, stages, blocks and the KV-cache record carry over; inserted collectives are named
after the node they follow (``text.0.attn.wo.reduce_scatter``) or, before a norm, after the
norm (``text.0.attn_norm.all_gather``).
"""

from __future__ import annotations

from typing import ClassVar, Literal

import attrs
from attrs import field, frozen

from irperf.checks import in_range
from irperf.errors import PassError, TypeInferenceError
from irperf.graph import Graph, Node
from irperf.layout import MAX_CHIPS, Layout, sharded
from irperf.ops import (
    AllGather,
    AllReduce,
    Attention,
    Input,
    MatMul,
    MeshSplit,
    Norm,
    Op,
    ReduceScatter,
    Reshape,
    Source,
    Weight,
)
from irperf.pass_manager import Pass, PassResult, one_of, register_pass
from irperf.roles import LINEAR_ROLES, Role
from irperf.types import TensorType

Pattern = Literal["fractured", "all-reduce"]
PATTERNS: tuple[str, ...] = ("fractured", "all-reduce")

ROW: frozenset[Role] = frozenset({Role.O, Role.FF2, Role.FC2, Role.CROSS_O})
"""Roles whose weight is split on its input rows (the product is a partial sum)."""
COLUMN: frozenset[Role] = LINEAR_ROLES - ROW
"""Roles whose weight is split on its output columns: every other linear layer."""
GATHERED: frozenset[Role] = frozenset({Role.PROJECTOR, Role.LM_HEAD})
"""Column-parallel roles whose result is all-gathered (the next consumer needs all of it)."""
SPLIT_ON_HEADS: frozenset[Role] = frozenset({Role.KV_CACHE})
"""Inputs split on their last (packed heads) dimension."""
VISION_STAGES = frozenset({"vision", "projector"})
"""Stages that always all-reduce (the vision encoder keeps a whole residual stream)."""


def _source_layout(node: Node, chips: int) -> tuple[tuple[int, ...], Layout] | None:
    """The per-chip shape and layout of a split source, or None to keep it whole."""
    op, shape = node.op, node.type.shape
    role = node.role
    dim: int | None = None
    if isinstance(op, Weight) and role in COLUMN:
        dim = len(shape) - 1  # [K, N] on N; a bias [N] on N
    elif isinstance(op, Weight) and role in ROW and len(shape) == 2:
        dim = 0  # [K, N] on K; a row-parallel bias stays whole
    elif isinstance(op, Input) and role in SPLIT_ON_HEADS:
        dim = len(shape) - 1
    if dim is None:
        return None
    if shape[dim] % chips:
        raise PassError(
            f"pass 'tensor-parallel': {chips} chips do not divide dimension {dim} "
            f"({shape[dim]:,}) of '{node.name}' ({role.value if role else 'no role'})"
        )
    per_chip = list(shape)
    per_chip[dim] //= chips
    return tuple(per_chip), sharded(dim, chips)


def _split_op(node: Node, new_inputs: list[TensorType], chips: int) -> Op:
    """The op with its shape-carrying attributes rewritten for one chip's part."""
    op = node.op
    if isinstance(op, Attention) and new_inputs[0].layout.sharded:
        if op.heads % chips or op.kv_heads % chips:
            raise PassError(
                f"pass 'tensor-parallel': {chips} chips do not divide the {op.heads} query "
                f"heads and {op.kv_heads} KV heads of '{node.name}'"
            )
        return attrs.evolve(op, heads=op.heads // chips, kv_heads=op.kv_heads // chips)
    if isinstance(op, Reshape) and new_inputs[0].layout.sharded:
        x = new_inputs[0]
        assert x.layout.dim is not None
        before = _product(x.global_shape[: x.layout.dim])
        target = list(op.shape)
        for dim in range(len(target)):
            if _product(target[:dim]) == before and target[dim] > 1:
                if target[dim] % chips:
                    break
                target[dim] //= chips
                return Reshape(shape=tuple(target), split_dim=dim)
        raise PassError(
            f"pass 'tensor-parallel': cannot split the reshape '{node.name}' to {op.shape} "
            f"over {chips} chips"
        )
    return op


def _product(dims: list[int] | tuple[int, ...]) -> int:
    n = 1
    for d in dims:
        n *= d
    return n


class _Rewriter:
    def __init__(self, graph: Graph, chips: int, pattern: str) -> None:
        self.old = graph
        self.chips = chips
        self.pattern = pattern
        self.new = Graph.from_nodes((), like=graph)
        self.now: dict[str, str] = {}  # old name -> the name its users read in the new graph

    def fractured(self, node: Node) -> bool:
        return self.pattern == "fractured" and node.stage not in VISION_STAGES

    def add(self, name: str, op: Op, operands: list[str], like: Node) -> str:
        new, old = self.new, self.old
        same = name == like.name and op is like.op and operands == list(like.operands)
        if same and all(new.node(o).type == old.node(o).type for o in operands):
            new.insert(like)  # a whole op on whole operands: unchanged, no inference needed
        else:
            new.add(name, op, operands, stage=like.stage, block=like.block, role=like.role)
        return name

    def collective(self, name: str, op: Op, operand: str, like: Node) -> str:
        self.new.add(name, op, [operand], stage=like.stage, block=like.block, role=Role.COLLECTIVE)
        return name

    def run(self) -> Graph:
        for node in self.old:  # heads first: the clearest reason a split cannot work
            op = node.op
            if isinstance(op, Attention) and (op.heads % self.chips or op.kv_heads % self.chips):
                raise PassError(
                    f"pass 'tensor-parallel': {self.chips} chips do not divide the {op.heads} "
                    f"query heads and {op.kv_heads} KV heads of '{node.name}'"
                )
        try:
            for node in self.old:
                self.node(node)
        except TypeInferenceError as e:  # a width the chips do not divide, met on the way
            raise PassError(f"pass 'tensor-parallel': {self.chips} chips: {e}") from None
        self.new.meta["tensor_parallel"] = {"chips": self.chips, "pattern": self.pattern}
        return self.new

    def node(self, node: Node) -> None:
        if isinstance(node.op, Source):
            split = _source_layout(node, self.chips)
            op: Op = node.op
            if split is not None:
                shape, layout = split
                typed = TensorType(shape, node.type.dtype, layout)
                op = attrs.evolve(node.op, type=typed)
            self.now[node.name] = self.add(node.name, op, [], node)
            return
        operands = [self.now[o] for o in node.operands]
        if isinstance(node.op, Norm) and self.fractured(node):
            operands[0] = self.gathered(operands[0], node)
        ins = [self.new.node(o).type for o in operands]
        name = self.add(node.name, _split_op(node, ins, self.chips), operands, node)
        self.now[node.name] = self.after(node, name)

    def gathered(self, operand: str, norm: Node) -> str:
        """A norm reading the split residual stream reads it whole: all-gather it first."""
        t = self.new.node(operand).type
        if not (t.layout.sharded and t.layout.dim == t.rank - 1):
            return operand
        op = AllGather(chips=self.chips, dim=t.rank - 1)
        return self.collective(f"{norm.name}.all_gather", op, operand, norm)

    def after(self, node: Node, name: str) -> str:
        """The collective that follows a node, if any; its users read that instead."""
        t = self.new.node(name).type
        role = node.role
        if t.layout.partial and isinstance(node.op, MatMul) and role in ROW:
            if self.fractured(node):
                op: Op = ReduceScatter(chips=self.chips, dim=t.rank - 1)
                return self.collective(f"{name}.reduce_scatter", op, name, node)
            return self.collective(f"{name}.all_reduce", AllReduce(chips=self.chips), name, node)
        if role in GATHERED and t.layout.sharded and not self._continues(node):
            assert t.layout.dim is not None
            op = AllGather(chips=self.chips, dim=t.layout.dim)
            return self.collective(f"{name}.all_gather", op, name, node)
        starts_stream = role is Role.EMBED and node.stage == "text" and t.layout.replicated
        if starts_stream and self.fractured(node) and not isinstance(node.op, Source):
            op = MeshSplit(chips=self.chips, dim=t.rank - 1)
            return self.collective(f"{name}.split", op, name, node)
        return name

    def _continues(self, node: Node) -> bool:
        """Whether a user of ``node`` has its role (the layer goes on: a bias add)."""
        return any(self.old.node(u).role is node.role for u in self.old.users(node.name))


def tensor_parallel(graph: Graph, chips: int, pattern: str = "fractured") -> Graph:
    """``graph`` split over ``chips`` chips by the rule table of the module docstring."""
    if "tensor_parallel" in graph.meta or any(not n.type.layout.replicated for n in graph):
        raise PassError("pass 'tensor-parallel': the graph is already split over chips")
    return _Rewriter(graph, chips, pattern).run()


def _chips(inst: object, attribute: object, value: int) -> None:
    if not in_range(value, 1, MAX_CHIPS, integer=True):
        raise PassError(
            f"pass 'tensor-parallel': option chips={value!r}; an integer from 1 to {MAX_CHIPS:,}"
        )


@register_pass
@frozen(kw_only=True)
class TensorParallelPass(Pass):
    """Split the graph over ``chips`` chips (1: unchanged) by roles; see the module docstring."""

    name: ClassVar[str] = "tensor-parallel"
    summary: ClassVar[str] = "split weights by role over chips and insert the collectives"
    chips: int = field(default=2, validator=_chips)
    pattern: Pattern = field(default="fractured", validator=one_of(*PATTERNS))

    def run(self, graph: Graph) -> PassResult:
        if self.chips == 1:
            return PassResult(graph, modified=False)
        return PassResult(tensor_parallel(graph, self.chips, self.pattern), modified=True)
