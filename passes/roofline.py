"""The ``roofline`` pass: per-node compute, DRAM and link time on a target, and two latency views.

Each op computes at the target's peak for its format (its narrowest block-format operand, else
its result's) at ``fidelity`` if given, else the fidelity a precision policy chose for the node
(``Node.fidelity``), else the one the target pairs with that format.

Aggregate roofline (the seed's method): ``max(sum F / peak, sum B / bandwidth, sum L / link)``.
Per-op roofline: ``sum max(F_i / peak, B_i / bandwidth, L_i / link)``. ``mfu`` and ``mbu`` scale
the peak and the bandwidth (0.4 = kernels reach 40% of peak). ``L`` is the bytes a chip sends in
a collective, at the target's link bandwidth times its usable links.

Rates: a graph split over chips (``tensor-parallel``) counts one chip's share per node, so it runs
at one chip's peak and DRAM bandwidth; an unsplit graph runs on the pooled machine (every chip's
cores and bandwidth as one), the seed's method (``chips_pooled``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from attrs import field, frozen

from irperf.checks import range_validator, show
from irperf.dtypes import DType
from irperf.errors import PassError, TargetError
from irperf.graph import Graph, Node
from irperf.pass_manager import AnalysisPass, register_pass
from passes.bytes import FusedTraffic, PlacedTraffic, Traffic, dram_traffic
from passes.flops import FlopCount
from targets import Target
from targets.loader import default_target, load_target
from targets.target import FIDELITIES, NO_FIDELITY


@frozen(kw_only=True)
class RooflineTime:
    """A node's compute, DRAM and link time; its roofline latency is the largest."""

    compute_s: float = 0.0
    memory_s: float = 0.0
    link_s: float = 0.0

    @property
    def latency_s(self) -> float:
        return max(self.compute_s, self.memory_s, self.link_s)


MIN_FRACTION = 1e-3
"""The smallest ``mfu``/``mbu``: kernels below 0.1% of peak are a typo (``5e-324`` made every
latency infinite), not a machine."""

_fraction = range_validator(
    MIN_FRACTION,
    1.0,
    integer=False,
    error=PassError,
    where=lambda inst, attribute: f"pass 'roofline': option {attribute.name}",
)


MATH_FIDELITIES = tuple(f for f in FIDELITIES if f != NO_FIDELITY)
"""What ``fidelity`` may ask for: ``none`` marks a rate without fidelity phases, not a choice."""


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def _optional_fidelity(inst: object, attribute: object, value: str | None) -> None:
    if value is not None and value not in MATH_FIDELITIES:
        valid = ", ".join(MATH_FIDELITIES)
        raise PassError(f"pass 'roofline': fidelity={show(value)}; valid: {valid}")


def compute_dtype(graph: Graph, node: Node) -> DType:
    """The format a node computes in: its narrowest block-format operand, else its result's."""
    blocks = [t.dtype for t in graph.operand_types(node) if t.dtype.is_block]
    return min(blocks, key=lambda d: d.tile_bytes) if blocks else node.type.dtype


def chips_pooled(graph: Graph, target: Target) -> int:
    """How many chips' rates one count in ``graph`` runs at: a graph split over chips counts one
    chip's share per node, so its nodes run at one chip's rates; an unsplit graph is costed on a
    pooled machine (every chip's cores and bandwidth as one: the seed's method)."""
    return 1 if graph.meta.get("tensor_parallel") else target.chips


def peak_for(
    target: Target,
    dt: DType,
    fidelity: str | None,
    cache: dict[tuple[str, str | None], float],
    node: Node,
    chips: int = 1,
) -> float:
    """Peak FLOP/s of ``chips`` chips for format ``dt`` at ``fidelity`` (None: the target's
    pairing for ``dt``).

    A format the target has no rate for is an error naming the node: never a silent fallback.
    """
    key = (dt.name, fidelity)
    peak = cache.get(key)
    if peak is None:
        try:
            peak = chips * target.peak_flops_per_s_per_chip(dt.name, fidelity)
        except TargetError as e:
            raise PassError(f"node '{node.name}' computes in {dt.name}: {e}") from None
        cache[key] = peak
    return peak


def roofline_times(
    graph: Graph,
    target: Target,
    *,
    mfu: float = 1.0,
    mbu: float = 1.0,
    fidelity: str | None = None,
) -> dict[str, RooflineTime]:
    flops = graph.records(FlopCount)
    traffic = dram_traffic(graph)
    split = graph.meta.get("tensor_parallel", {}).get("chips", 1)
    if split > target.chips:
        have = f"{target.chips} chip" + ("s" if target.chips > 1 else "")
        raise PassError(f"the graph is split over {split} chips; {target.label} has {have}")
    chips = chips_pooled(graph, target)
    bandwidth = chips * target.dram_bandwidth_bytes_per_s_per_chip * mbu
    link = target.link
    link_rate = link.bandwidth_bytes_per_s * link.count if link is not None else 0.0
    has_fidelities = any(c.fidelity != NO_FIDELITY for c in target.compute)
    peaks: dict[tuple[str, str | None], float] = {}
    out: dict[str, RooflineTime] = {}
    for node in graph:
        f = flops[node.name].flops
        b = traffic[node.name].bytes
        if f:
            chosen = fidelity or node.fidelity  # the pass option, else the precision policy's
            if chosen is not None and not has_fidelities:
                chosen = None  # a GPU has no fidelity phases: the policy's choice means nothing
            peak = peak_for(target, compute_dtype(graph, node), chosen, peaks, node, chips)
            compute = f / (peak * mfu)
        else:
            compute = 0.0
        sent = traffic[node.name].link_bytes
        if sent and not link_rate:
            raise PassError(
                f"node '{node.name}' sends {sent:,} B between chips, but {target.label} has no link"
            )
        out[node.name] = RooflineTime(
            compute_s=compute, memory_s=b / bandwidth, link_s=sent / link_rate if sent else 0.0
        )
    return out


def aggregate_roofline_s(times: Iterable[RooflineTime]) -> float:
    compute = memory = link = 0.0
    for t in times:
        compute += t.compute_s
        memory += t.memory_s
        link += t.link_s
    return max(compute, memory, link)


def per_op_roofline_s(times: Iterable[RooflineTime]) -> float:
    return sum(t.latency_s for t in times)


@register_pass
@frozen(kw_only=True)
class RooflinePass(AnalysisPass):
    """Compute and memory time per node on ``target``; needs flops and bytes records."""

    name: ClassVar[str] = "roofline"
    summary: ClassVar[str] = "roofline compute and memory time per node on a target"
    record_type: ClassVar[type] = RooflineTime
    requires: ClassVar[tuple[type, ...]] = (FlopCount,)  # and Traffic or FusedTraffic

    def reads(self, graph: Graph) -> tuple[type, ...]:
        return (FlopCount, Traffic, FusedTraffic, PlacedTraffic)  # whichever dram_traffic reads

    target: Target = field(factory=default_target, converter=load_target)
    mfu: float = field(default=1.0, validator=_fraction)
    mbu: float = field(default=1.0, validator=_fraction)
    fidelity: str | None = field(default=None, converter=_lower, validator=_optional_fidelity)
    """Math fidelity for every op (lofi, hifi2, hifi3, hifi4); None: the target's pairing per
    format (Wormhole: BF16 at HiFi4, BFP8 at HiFi2, BFP4 at LoFi)."""

    def analyze(self, graph: Graph) -> dict[str, RooflineTime]:
        target = self.target
        if self.fidelity is not None and all(c.fidelity == "none" for c in target.compute):
            raise PassError(
                f"{target.label} has no math fidelities; "
                f"fidelity={self.fidelity} means nothing there"
            )
        return roofline_times(graph, target, mfu=self.mfu, mbu=self.mbu, fidelity=self.fidelity)
