"""The ``fuse`` pass (fusion groups by strategy) and the group-aware traffic passes.

``fuse{strategy=S}`` stores a ``FusionGroup`` per node: the nodes of a group run as one kernel
whose intermediates stay on chip. ``fused-bytes`` then stores the group-aware count as
``FusedTraffic`` records beside the unfused ``Traffic`` (``roofline`` and the summaries read it
where it exists: ``passes.bytes.dram_traffic``); ``bytes-by-kind`` splits the
same transfers into weights, activations and attention scores. FLOPs never change under fusion.
Strategies and their rule tables are in ``fusion_rules``; ``docs/fusion.md`` explains them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import attrs
from attrs import field, frozen

from irperf.errors import IrperfError, PassError, PluginError
from irperf.graph import Graph
from irperf.ops import SDPA, AttentionScores, AttentionValues, Source, Weight
from irperf.pass_manager import AnalysisPass, one_of, register_pass
from irperf.plugins import describe
from irperf.rules import RuleContext
from passes.bytes import LINK, FusedTraffic
from passes.conventions import CONVENTIONS, Convention
from passes.flops import FlopCount
from passes.fusion_greedy import (
    FusionStep,
    capacity_bytes,
    capacity_option,
    check_capacity,
    compute_seconds,
    greedy_fusion,
)
from passes.fusion_partition import Partition
from passes.fusion_rules import MATMUL_LIKE, Strategy, get_strategy, match_pairs
from passes.fusion_traffic import (
    TrafficModel,
    Transfer,
    group_indices,
    traffic_model,
    transfers,
)
from passes.kernels import FusionGroup as FusionGroup  # the record fuse writes, kernels read
from passes.placement_walk import Placement
from targets import Target, load_target
from targets.loader import default_target


@frozen(kw_only=True)
class FusionPlan:
    """A strategy's groups on one graph, and for ``greedy`` the log of its steps."""

    strategy: str
    groups: Mapping[str, FusionGroup]
    log: tuple[FusionStep, ...] = ()


def resident_bytes(graph: Graph, target: Target) -> list[int]:
    """Per node, the chip's L1 a placement's live tensors hold at its step, which a fused group
    there cannot use (``Placement.resident_bytes_per_core`` on every core); empty when the graph
    is not placed."""
    if not graph.has_records(Placement):
        return []
    homes = graph.records(Placement)
    return [homes[n.name].resident_bytes_per_core * target.cores for n in graph]


def plan_fusion(
    graph: Graph,
    strategy: str | Strategy,
    *,
    target: str | Target = "n300-seed",
    convention: Convention = "matmul-only",
    capacity: int | None = None,
) -> FusionPlan:
    """Group ``graph``'s nodes by ``strategy`` (a registered name, or a Strategy not registered).
    ``greedy`` reads FlopCount records and costs on ``target`` with the ``convention``'s bytes;
    ``capacity`` overrides the target's on-chip limit."""
    s = get_strategy(strategy) if isinstance(strategy, str) else strategy
    check_capacity(capacity)
    if s.decompose_attention and any(isinstance(n.op, SDPA) for n in graph):
        raise PassError(
            f"strategy '{s.name}' works on decomposed attention; run decompose-attention first"
        )
    log: list[FusionStep] = []
    if s.greedy:
        t = load_target(target)
        model = traffic_model(graph, convention)
        compute = compute_seconds(graph, graph.records(FlopCount), t)
        limit = capacity_bytes(t) if capacity is None else capacity
        part, log = greedy_fusion(graph, model, compute, t, limit, resident_bytes(graph, t))
    else:
        part = Partition(graph)
        try:
            part.merge_names(match_pairs(graph, s.rules))
        except IrperfError:
            raise
        except Exception as e:  # a user's rule that, say, changed the graph it was matching
            raise PluginError(f"fusion strategy '{s.name}' failed: {describe(e)}") from e
    groups: dict[str, FusionGroup] = {}
    for members in part.groups():
        rules = tuple(sorted(part.tags[part.find(members[0])]))
        record = FusionGroup(
            fusion_group=part.names[members[0]], strategy=s.name, size=len(members), rules=rules
        )
        for m in members:
            groups[part.names[m]] = record
    return FusionPlan(strategy=s.name, groups=groups, log=tuple(log))


def _strategy(inst: Any, attribute: Any, value: str) -> None:
    try:
        get_strategy(value)
    except IrperfError as e:
        raise PassError(f"pass 'fuse': {e}") from None


@register_pass
@frozen(kw_only=True)
class FusePass(AnalysisPass):
    """Fusion groups per node by a registered strategy (``none``, ``all``, ``greedy``...).

    ``target``, ``convention`` and ``capacity_bytes`` are greedy's cost model (default: the
    seed's n300, ``matmul-only``, the target's on-chip memory); a rule table reads none of them,
    so giving one with a rule strategy is an error, not an option silently ignored.
    """

    name: ClassVar[str] = "fuse"
    summary: ClassVar[str] = "group ops into fused kernels by a strategy"
    record_type: ClassVar[type] = FusionGroup
    strategy: str = field(default="flash-attention", validator=_strategy)
    target: Target | None = field(default=None, converter=attrs.converters.optional(load_target))
    convention: Convention | None = field(
        default=None, validator=attrs.validators.optional(one_of(*CONVENTIONS))
    )
    capacity_bytes: int | None = field(default=None, validator=capacity_option)

    def __attrs_post_init__(self) -> None:
        given = [
            name
            for name in ("target", "convention", "capacity_bytes")
            if getattr(self, name) is not None
        ]
        if given and not get_strategy(self.strategy).greedy:
            raise PassError(
                f"pass 'fuse': option {given[0]} is for greedy's cost model; strategy "
                f"'{self.strategy}' is a rule table and never reads it"
            )

    def analyze(self, graph: Graph) -> Mapping[str, FusionGroup]:
        return plan_fusion(
            graph,
            self.strategy,
            target=default_target() if self.target is None else self.target,
            convention=self.convention or "matmul-only",
            capacity=self.capacity_bytes,
        ).groups


def _transfers(
    graph: Graph, groups: Mapping[str, FusionGroup], convention: Convention
) -> tuple[TrafficModel, Iterator[Transfer]]:
    """The traffic model of ``graph`` and its DRAM transfers under ``groups``."""
    model = traffic_model(graph, convention)
    group_of = group_indices(graph, {k: g.fusion_group for k, g in groups.items()})
    return model, transfers(model, group_of)


def fused_traffic(
    graph: Graph, groups: Mapping[str, FusionGroup], convention: Convention
) -> dict[str, FusedTraffic]:
    """DRAM bytes per node when intermediates inside a group stay on chip."""
    model, moved = _transfers(graph, groups, convention)
    read = [0] * len(model)
    written = [0] * len(model)
    for t in moved:
        (written if t.write else read)[t.node] += t.bytes
    links = {n.name: LINK.lookup(n)(RuleContext.of(graph, n)) for n in graph}  # fusion-blind
    return {
        name: FusedTraffic(bytes_read=r, bytes_written=w, link_bytes=links.get(name, 0))
        for name, r, w in zip(model.names, read, written, strict=True)
    }


@register_pass
@frozen(kw_only=True)
class FusedBytesPass(AnalysisPass):
    """``FusedTraffic`` per node under the fusion groups (beside the ``bytes`` pass's records)."""

    name: ClassVar[str] = "fused-bytes"
    summary: ClassVar[str] = "DRAM bytes per node when fused groups keep intermediates on chip"
    record_type: ClassVar[type] = FusedTraffic
    requires: ClassVar[tuple[type, ...]] = (FusionGroup,)
    convention: Convention = field(default="matmul-only", validator=one_of(*CONVENTIONS))

    def analyze(self, graph: Graph) -> dict[str, FusedTraffic]:
        return fused_traffic(graph, graph.records(FusionGroup), self.convention)


WEIGHTS, ACTIVATIONS, SCORES = "weights", "activations", "scores"
KINDS = (WEIGHTS, ACTIVATIONS, SCORES)


def tensor_kinds(graph: Graph) -> list[str]:
    """Each node's result as ``weights``, ``scores`` (attention scores and what is computed from
    them up to the values matmul, plus sources only they read: scale, causal mask) or
    ``activations``."""
    nodes = list(graph)
    index = {n.name: i for i, n in enumerate(nodes)}
    kinds: list[str] = []
    for n in nodes:
        scores = isinstance(n.op, AttentionScores) or (
            not isinstance(n.op, (Source, AttentionValues, *MATMUL_LIKE))
            and any(kinds[index[o]] == SCORES for o in n.operands)
        )
        kinds.append(WEIGHTS if isinstance(n.op, Weight) else SCORES if scores else ACTIVATIONS)
    for i, n in enumerate(nodes):
        users = graph.users(n.name)
        only_scores = bool(users) and all(kinds[index[u]] == SCORES for u in users)
        if isinstance(n.op, Source) and kinds[i] != WEIGHTS and only_scores:
            kinds[i] = SCORES
    return kinds


@frozen(kw_only=True)
class BytesByKind:
    """A node's DRAM bytes by what the tensor moved is."""

    weights_bytes: int = 0
    activations_bytes: int = 0
    scores_bytes: int = 0

    def __add__(self, other: BytesByKind) -> BytesByKind:
        return BytesByKind(
            weights_bytes=self.weights_bytes + other.weights_bytes,
            activations_bytes=self.activations_bytes + other.activations_bytes,
            scores_bytes=self.scores_bytes + other.scores_bytes,
        )

    @classmethod
    def zero(cls) -> BytesByKind:
        return cls()


def bytes_by_kind(
    graph: Graph, groups: Mapping[str, FusionGroup], convention: Convention
) -> dict[str, BytesByKind]:
    model, moved = _transfers(graph, groups, convention)
    kinds = tensor_kinds(graph)
    sums = [dict.fromkeys(KINDS, 0) for _ in range(len(model))]
    for t in moved:
        sums[t.node][kinds[t.tensor]] += t.bytes
    return {
        name: BytesByKind(
            weights_bytes=s[WEIGHTS], activations_bytes=s[ACTIVATIONS], scores_bytes=s[SCORES]
        )
        for name, s in zip(model.names, sums, strict=True)
    }


@register_pass
@frozen(kw_only=True)
class BytesByKindPass(AnalysisPass):
    """The fused DRAM bytes per node split into weights, activations and attention scores."""

    name: ClassVar[str] = "bytes-by-kind"
    summary: ClassVar[str] = "fused DRAM bytes per node by weights / activations / scores"
    record_type: ClassVar[type] = BytesByKind
    requires: ClassVar[tuple[type, ...]] = (FusionGroup,)
    convention: Convention = field(default="matmul-only", validator=one_of(*CONVENTIONS))

    def analyze(self, graph: Graph) -> dict[str, BytesByKind]:
        return bytes_by_kind(graph, graph.records(FusionGroup), self.convention)
