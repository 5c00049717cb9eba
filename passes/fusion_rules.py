"""Fusion rule tables: one ``FusionRule`` per line; a table is a list and tables compose with ``+``.

A vertical rule fuses a consumer into its producer's group; a ``sibling`` rule fuses together the
consumers of one producer (horizontal fusion: the shared input is read once). A condition returns
True to match, False or None not to (tinygrad style). Whether a merge is legal (it must not create
a cycle between groups) is the partitioner's business, not the rule's.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeAlias

from attrs import Attribute, field, frozen

from irperf.checks import show
from irperf.errors import PassError, PluginError, UnknownNameError
from irperf.graph import Graph, Node
from irperf.ops import (
    Add,
    AttentionScores,
    AttentionValues,
    Binary,
    Conv2d,
    MatMul,
    Mul,
    Norm,
    Op,
    Rope,
    Source,
    Unary,
)
from irperf.pass_manager import failures_note, load_entry_points
from irperf.plugins import describe

Pattern: TypeAlias = type[Op] | tuple[type[Op], ...]
"""Op classes a node's op must be an instance of (a family base class matches the family)."""


class RuleContext:
    """What conditions ask about the graph, computed once per graph."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self._index = {n.name: i for i, n in enumerate(graph)}
        self._epilogue: dict[str, bool] | None = None

    def node(self, name: str) -> Node:
        return self.graph.node(name)

    def users(self, name: str) -> list[str]:
        """Readers of ``name`` in topological order."""
        return sorted(self.graph.users(name), key=self._index.__getitem__)

    def single_use(self, node: Node) -> bool:
        return len(self.graph.users(node.name)) == 1

    def is_source(self, name: str) -> bool:
        return isinstance(self.graph.node(name).op, Source)

    def others(self, consumer: Node, producer: Node) -> list[Node]:
        """The consumer's operands other than ``producer``."""
        return [self.node(o) for o in consumer.operands if o != producer.name]

    def in_epilogue(self, node: Node) -> bool:
        """A matmul-like op, or an elementwise op fed by a single-use epilogue node."""
        if self._epilogue is None:
            memo: dict[str, bool] = {}
            for n in self.graph:
                memo[n.name] = isinstance(n.op, MATMUL_LIKE) or (
                    isinstance(n.op, ELEMENTWISE)
                    and any(memo[o] and self.single_use(self.node(o)) for o in n.operands)
                )
            self._epilogue = memo
        return self._epilogue[node.name]


Condition: TypeAlias = Callable[[RuleContext, Node, Node], bool | None]


def _name(inst: object, attribute: Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value:
        raise PassError(f"a fusion rule's name must be a non-empty string, got {show(value)}")


def _pattern(inst: object, attribute: Attribute[Any], value: object) -> None:
    classes = value if isinstance(value, tuple) else (value,)
    if not classes or not all(isinstance(c, type) and issubclass(c, Op) for c in classes):
        raise PassError(
            f"fusion rule {show(getattr(inst, 'name', '?'))}: {attribute.name} must be an op "
            f"class or a tuple of them, got {show(value)}"
        )


def _condition(inst: object, attribute: Attribute[Any], value: object) -> None:
    if value is not None and not callable(value):
        raise PassError(
            f"fusion rule {show(getattr(inst, 'name', '?'))}: condition must be callable, "
            f"got {show(value)}"
        )


@frozen
class FusionRule:
    """Fuse ``consumer`` into ``producer``'s group when both patterns and ``condition`` match.

    With ``sibling=True`` the rule instead fuses every matching consumer of one producer with the
    others, and the producer stays out.
    """

    name: str = field(validator=_name)
    producer: Pattern = field(validator=_pattern)
    consumer: Pattern = field(validator=_pattern)
    condition: Condition | None = field(default=None, validator=_condition)
    sibling: bool = False

    def matches(self, ctx: RuleContext, producer: Node, consumer: Node) -> bool:
        if not (isinstance(producer.op, self.producer) and isinstance(consumer.op, self.consumer)):
            return False
        if self.condition is None:
            return True
        try:
            return bool(self.condition(ctx, producer, consumer))
        except KeyboardInterrupt:
            raise
        except BaseException as e:  # a user's rule: name it and the nodes it was asked about
            raise PluginError(
                f"fusion rule '{self.name}' failed on {producer.name} -> {consumer.name}: "
                f"{describe(e)}"
            ) from e


FusionRules: TypeAlias = list[FusionRule]

MATMUL_LIKE: tuple[type[Op], ...] = (MatMul, Conv2d, AttentionScores, AttentionValues)
ELEMENTWISE: tuple[type[Op], ...] = (Unary, Binary, Rope)
EPILOGUE_PRODUCERS: tuple[type[Op], ...] = (*MATMUL_LIKE, *ELEMENTWISE)


def epilogue(ctx: RuleContext, p: Node, c: Node) -> bool:
    """``p`` is a matmul or its epilogue so far, and ``c`` its only reader."""
    return ctx.single_use(p) and ctx.in_epilogue(p)


def bias(ctx: RuleContext, p: Node, c: Node) -> bool:
    """An epilogue add of a source (a bias, a mask): ``(x @ W) + b``."""
    others = ctx.others(c, p)
    return epilogue(ctx, p, c) and bool(others) and all(isinstance(o.op, Source) for o in others)


def residual(ctx: RuleContext, p: Node, c: Node) -> bool:
    """An epilogue add of a computed tensor: ``r + (x @ W)``."""
    return epilogue(ctx, p, c) and not bias(ctx, p, c)


def rotates(ctx: RuleContext, p: Node, c: Node) -> bool:
    """``rope(p, cos, sin)`` of an epilogue ``p``: the rotated operand, not a table."""
    return c.operands[0] == p.name and epilogue(ctx, p, c)


def reads_activation(ctx: RuleContext, p: Node, c: Node) -> bool:
    """``c = p @ W``: ``p`` is the matmul's activation operand, W a weight (a source)."""
    return c.operands[0] == p.name and ctx.is_source(c.operands[1])


# Epilogues: elementwise ops folded into the matmul that produces their input.
EPILOGUE: FusionRules = [
    FusionRule("epilogue.bias", EPILOGUE_PRODUCERS, Add, bias),  # (x @ W) + b
    FusionRule("epilogue.activation", EPILOGUE_PRODUCERS, Unary, epilogue),  # gelu(x @ W)
    FusionRule("epilogue.rope", EPILOGUE_PRODUCERS, Rope, rotates),  # rope(x @ Wq, cos, sin)
    FusionRule("epilogue.multiply", EPILOGUE_PRODUCERS, Mul, epilogue),  # silu(x W1) * (x W3)
    FusionRule("epilogue.residual", EPILOGUE_PRODUCERS, Add, residual),  # r + (x @ W)
]

# Horizontal: matmuls reading one activation (wq/wk/wv, w1/w3) read it once.
QKV: FusionRules = [
    FusionRule("qkv", Op, MatMul, reads_activation, sibling=True),  # x @ Wq | x @ Wk | x @ Wv
]

# Norms fused into the matmuls that read them: rows normalised as the matmul loads them.
NORM: FusionRules = [
    FusionRule("norm", Norm, MatMul, reads_activation),  # norm(x) @ W
]

ALL: FusionRules = EPILOGUE + QKV + NORM


def match_pairs(graph: Graph, rules: Sequence[FusionRule]) -> Iterator[tuple[str, str, str]]:
    """``(rule name, a, b)`` for every pair of nodes a rule asks to put in one group, rule by rule
    in table order; siblings are grouped per block. Sources are never fused: a weight is read
    from DRAM by each group using it."""
    ctx = RuleContext(graph)
    for rule in rules:
        if rule.sibling:
            for p in graph:
                by_block: dict[str | None, list[str]] = {}
                for user in ctx.users(p.name):
                    node = ctx.node(user)
                    if not isinstance(node.op, Source) and rule.matches(ctx, p, node):
                        by_block.setdefault(node.block, []).append(user)
                for siblings in by_block.values():  # one layer's wq/wk/wv, not every layer's
                    for other in siblings[1:]:
                        yield rule.name, siblings[0], other
            continue
        for consumer in graph:
            if isinstance(consumer.op, Source):
                continue
            for o in dict.fromkeys(consumer.operands):
                producer = ctx.node(o)
                if not isinstance(producer.op, Source) and rule.matches(ctx, producer, consumer):
                    yield rule.name, o, consumer.name


@frozen(kw_only=True)
class Strategy:
    """A named fusion strategy: a rule table, or the cost-driven greedy search.

    ``decompose_attention``: the strategy runs on the decomposed graph (``none``); every other
    built-in keeps the fused SDPA op (FlashAttention).
    """

    name: str
    rules: tuple[FusionRule, ...] = ()
    decompose_attention: bool = False
    greedy: bool = False
    description: str = ""


_STRATEGIES: dict[str, Strategy] = {}
_MODULES: dict[str, str] = {}


def register_strategy(
    name: str,
    rules: Sequence[FusionRule] = (),
    *,
    decompose_attention: bool = False,
    greedy: bool = False,
    description: str = "",
) -> Strategy:
    """Make a rule table available as ``fuse{strategy=name}`` and ``irperf fusion --compare``."""
    if not (isinstance(name, str) and re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", name)):
        raise PassError(f"fusion strategy name {show(name)} is not kebab-case")
    if not isinstance(rules, Sequence) or isinstance(rules, str):
        raise PassError(f"fusion strategy '{name}': rules must be a list of FusionRule")
    for r in rules:
        if not isinstance(r, FusionRule):
            raise PassError(f"fusion strategy '{name}': {show(r)} is not a FusionRule")
    s = Strategy(
        name=name,
        rules=tuple(rules),
        decompose_attention=decompose_attention,
        greedy=greedy,
        description=description,
    )
    existing = _STRATEGIES.get(name)
    if existing is not None and _definition(existing) != _definition(s):
        raise PassError(f"fusion strategy '{name}' is already registered")
    _STRATEGIES[name] = s  # a module loaded twice re-registers the same definition
    _MODULES[name] = sys._getframe(1).f_globals.get("__name__", "")  # who registered it
    return s


def _definition(s: Strategy) -> tuple[object, ...]:
    """What a strategy is, with conditions by qualified name (equal across module reloads)."""

    def cond(c: Condition | None) -> str | None:
        return None if c is None else f"{c.__module__}.{c.__qualname__}"

    rules = tuple((r.name, r.producer, r.consumer, cond(r.condition), r.sibling) for r in s.rules)
    return (rules, s.decompose_attention, s.greedy, s.description)


COMPOSE = "+"
"""``qkv+norm``: a strategy whose rule table is its parts' tables, in order."""


def get_strategy(name: str) -> Strategy:
    """A registered strategy, or a ``+`` composition of them (``qkv+norm``: both rule tables).

    A composition runs on decomposed attention if a part does (``none+epilogue``); ``greedy`` is
    a search, not a table, and composes with nothing; ``flash-attention`` (attention kept fused)
    contradicts a part that decomposes it. Names unknown to irperf are looked up in installed
    plugins before they are an error.
    """
    if not isinstance(name, str):
        raise PassError(f"a fusion strategy is a name, got {show(name)}")
    if COMPOSE in name:
        return _compose(name)
    found = _STRATEGIES.get(name.strip().lower())
    if found is None:
        load_entry_points()
        found = _STRATEGIES.get(name.strip().lower())
        if found is None:
            valid = ", ".join(_STRATEGIES)
            raise UnknownNameError(
                f"unknown fusion strategy {show(name)}; valid: {valid}, or several joined "
                f"with '{COMPOSE}'{failures_note()}"
            )
    return found


def _compose(name: str) -> Strategy:
    parts = [get_strategy(p) for p in dict.fromkeys(p.strip() for p in name.split(COMPOSE))]
    if len(parts) == 1:
        return parts[0]
    if any(p.greedy for p in parts):
        raise PassError(
            f"fusion strategy {show(name)}: greedy is a cost-driven search, not a rule table; "
            f"it does not compose with '{COMPOSE}'"
        )
    decomposes = [p.name for p in parts if p.decompose_attention]
    keeps = [p.name for p in parts if not p.decompose_attention and not p.rules]
    if decomposes and keeps:
        raise PassError(
            f"fusion strategy {show(name)}: '{decomposes[0]}' decomposes attention and "
            f"'{keeps[0]}' keeps it fused"
        )
    rules = tuple(dict.fromkeys(r for p in parts for r in p.rules))
    return Strategy(
        name=COMPOSE.join(p.name for p in parts),
        rules=rules,
        decompose_attention=bool(decomposes),
        description=" + ".join(p.name for p in parts),
    )


def strategy_modules() -> set[str]:
    """The modules that registered the strategies there are."""
    return set(_MODULES.values())


def strategy_names() -> list[str]:
    """Registered strategies, built-ins first, in registration order."""
    return list(_STRATEGIES)


register_strategy(
    "none", decompose_attention=True, description="nothing fused; attention decomposed"
)
register_strategy("flash-attention", description="attention as one fused op (the seed's)")
register_strategy("epilogue", EPILOGUE, description="elementwise ops folded into their matmul")
register_strategy("qkv", QKV, description="matmuls sharing an input read it once")
register_strategy("norm", NORM, description="norms fused into the matmuls reading them")
register_strategy("all", ALL, description="every rule: epilogue + qkv + norm")
register_strategy("greedy", greedy=True, description="cost-driven priority fusion (XLA style)")
