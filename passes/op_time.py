"""The ``op-time`` pass: each op's time on the target, in seconds, by resource (``docs/time.md``).

Tenstorrent targets (a calibration named in the target file, ``targets/calibration.py``):

- **compute**: a matmul-like op's padded FLOPs on its slowest core (``tiles``: the padded FLOPs
  times the imbalance over the cores used) at one core's rate for its format and fidelity, the
  ideal time, through the kernel model fitted to the measured GEMM table
  (``fixed_s + ideal / e_max``), or to a profile where the target's ``[fit]`` has one. A
  product of fewer than 32 live rows costs its rows rounded up to the matrix engine's 8-row
  face (``small_m_rows``), not the whole 32-row tile: one row costs
  8, so it runs at 1/8 of the rate in useful FLOPs, as wormhole.md says. Other ops' FLOPs
  (``full`` convention) run on every core: adds and subtractions at the FPU's ELWADD rate,
  multiplications and divisions at ELWMUL, everything else (exp, GELU, SiLU, norms, softmax,
  RoPE) on the SFPU.
- **dram**: DRAM bytes (``placed-bytes`` under ``full`` when the graph is placed, else the
  ``bytes`` pass's exact ``full`` counts) at the measured bandwidth of the access pattern: an op
  reading a DRAM-sharded operand at the DRAM-sharded matmuls' rate, another matmul-like op at the
  interleaved matmuls' rate, any other op at the read microbenchmark's; each scaled by the
  target's rated DRAM bandwidth over the 288 GB/s they were measured on (so a sweep over the
  rating moves them). A target's ``[fit]`` (``irperf calibrate``, ``targets/fitted.py``) gives
  an op class its own rate and a floor: ``fixed_s + bytes / rate``.
- **noc**: NoC bytes at ``cores x noc_bandwidth_bytes_per_s_per_core``.
- **link**: a collective's time from the model fitted to the measured collective table (a floor,
  a per-chip term, bytes at the achieved rate), never the line rate; a mesh split is local.
- **dispatch**: per device op (views move nothing and dispatch nothing), traced or eager:
  ``dispatch=auto`` (default) as tt-metal runs, decode traced, the vision encoder and prefill
  eager; ``trace``, ``eager`` or ``off`` for every op.

Targets without a calibration (GPUs, the idealised ``n300-seed``) use simple rules: logical
FLOPs at the peak of the op's format times ``gemm_efficiency`` (matmul-like ops; others at peak),
DRAM bytes at the datasheet bandwidth, a launch of ``dispatch_overhead_s`` per op unless
``dispatch=off``, and links at their bandwidth. ``efficiency=false`` takes every efficiency as 1
(a roofline per op). ``bound`` names the largest of compute, dram, noc, link and dispatch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar, Literal

from attrs import field, frozen

from irperf.errors import PassError
from irperf.graph import Graph, Node
from irperf.homes import Home
from irperf.ops import Add, Binary, Collective, MeshSplit, Source, Sub
from irperf.ops.taxonomy import CONTRACTIONS, VIEWS, op_class
from irperf.pass_manager import AnalysisPass, one_of, register_pass
from passes.bytes import Traffic, count_bytes
from passes.flops import count_flops
from passes.placement import Placement, graph_traffic
from passes.precision import node_phase
from passes.roofline import compute_dtype
from passes.tiles import TileWork, tile_work
from targets import Target
from targets.calibration import (
    Calibration,
    dispatch_gaps,
    gemm_models,
    link_models,
    load_calibration,
    model_for,
)
from targets.loader import default_target, load_target

Dispatch = Literal["auto", "trace", "eager", "off"]
DISPATCHES = ("auto", "trace", "eager", "off")
BOUNDS = ("compute", "dram", "noc", "link", "dispatch")
GPU_GEMM_EFFICIENCY = 0.7
"""Large GEMMs reach 60-80% of a GPU's datasheet peak (wormhole.md, GPU targets): the middle."""


@frozen(kw_only=True)
class OpTime:
    """One op's time per resource, in seconds, and the resource that bounds it."""

    compute_s: float = 0.0
    dram_s: float = 0.0
    noc_s: float = 0.0
    link_s: float = 0.0
    dispatch_s: float = 0.0
    bound: str = "dispatch"

    def __add__(self, other: OpTime) -> OpTime:
        """Each resource's time summed (the bound of the sum: where the time goes)."""
        return with_bound(
            OpTime(
                compute_s=self.compute_s + other.compute_s,
                dram_s=self.dram_s + other.dram_s,
                noc_s=self.noc_s + other.noc_s,
                link_s=self.link_s + other.link_s,
                dispatch_s=self.dispatch_s + other.dispatch_s,
            )
        )

    @classmethod
    def zero(cls) -> OpTime:
        return cls()

    def latency_s(self, overlap: float = 1.0) -> float:
        """Compute and data movement overlapped by ``overlap`` (1: the largest of compute, DRAM
        and NoC; 0: their sum), then the link and the dispatch gap after them."""
        parts = (self.compute_s, self.dram_s, self.noc_s)
        inner = overlap * max(parts) + (1 - overlap) * sum(parts)
        return inner + self.link_s + self.dispatch_s


def _bound(t: OpTime) -> str:
    values = (t.compute_s, t.dram_s, t.noc_s, t.link_s, t.dispatch_s)
    return BOUNDS[max(range(len(values)), key=values.__getitem__)]


def traffic_of(graph: Graph) -> Mapping[str, Traffic]:
    """What the device moves: every op's reads and writes (``full``), under the placement's
    homes and tiles where there is one."""
    if graph.has_records(Placement):
        return graph_traffic(graph, "full")
    return count_bytes(graph, "full")


def dispatch_for(graph: Graph, node: Node, mode: str, traced: float, eager: float) -> float:
    if mode == "off" or isinstance(node.op, (Source, *VIEWS)):
        return 0.0
    if mode == "auto":
        mode = "trace" if node_phase(graph, node) == "decode" else "eager"
    return traced if mode == "trace" else eager


def op_times(
    graph: Graph, target: Target, dispatch: str = "auto", efficiency: bool = True
) -> dict[str, OpTime]:
    if target.calibration is None:
        return _simple_times(graph, target, dispatch, efficiency)
    cal = load_calibration(target.calibration)
    links = link_models(target)
    traced_s, eager_s = dispatch_gaps(target)
    traffic = traffic_of(graph)
    homes = graph.records(Placement) if graph.has_records(Placement) else None
    noc = (target.noc_bandwidth_bytes_per_s_per_core or 0.0) * target.cores
    computes = compute_times(graph, target, efficiency)
    out: dict[str, OpTime] = {}
    for node in graph:
        if isinstance(node.op, Source):
            out[node.name] = OpTime()
            continue
        t = traffic[node.name]
        compute = computes[node.name]
        bw = dram_rate(node, homes[node.name].input_homes if homes is not None else (), cal, target)
        link = 0.0
        if isinstance(node.op, Collective) and not isinstance(node.op, MeshSplit):
            model = links.get(node.op.kind)
            if model is None:
                raise PassError(f"pass 'op-time': no measured {node.op.kind} for '{node.name}'")
            link = model.seconds(node.op.chips, t.link_bytes)
        if t.noc_bytes and not noc:
            raise PassError(
                f"pass 'op-time': '{node.name}' moves NoC bytes; {target.label} "
                f"has no noc_bandwidth_bytes_per_s_per_core"
            )
        record = OpTime(
            compute_s=compute,
            dram_s=t.bytes / bw + dram_fixed_s(node, target) if t.bytes else 0.0,
            noc_s=t.noc_bytes / noc if t.noc_bytes else 0.0,
            link_s=link,
            dispatch_s=dispatch_for(graph, node, dispatch, traced_s, eager_s),
        )
        out[node.name] = with_bound(record)
    return out


def compute_times(graph: Graph, target: Target, efficiency: bool = True) -> dict[str, float]:
    """Each op's compute time on a calibrated target (the module docstring's compute rule)."""
    models = gemm_models(target)
    flops = count_flops(graph, "full")
    work = graph.records(TileWork) if graph.has_records(TileWork) else tile_work(graph, target)
    out: dict[str, float] = {}
    for node in graph:
        compute = 0.0
        tiled = work[node.name]
        if isinstance(node.op, Source):
            pass
        elif tiled.grid is not None and tiled.padded_mkn is not None:
            dt = compute_dtype(graph, node).name
            fidelity = node.fidelity or target.fidelity_for(dt)
            ideal = matmul_ideal_s(tiled, target, dt, fidelity)
            compute = model_for(models, dt, fidelity).seconds(ideal) if efficiency else ideal
        elif flops[node.name].flops:
            compute = flops[node.name].flops / (target.cores * _vector_rate(node, target))
        out[node.name] = compute
    return out


def matmul_ideal_s(tiled: TileWork, target: Target, dtype: str, fidelity: str) -> float:
    """A matmul-like op's ideal time: its slowest core's padded FLOPs (rows rounded up to the
    matrix engine's face) at one core's rate for ``dtype`` at ``fidelity``."""
    slowest = tiled.padded_flops * tiled.imbalance / tiled.cores * face_fraction(tiled, target)
    return slowest / target.rate(dtype, fidelity).flops_per_s_per_core


def dram_rate(node: Node, input_homes: Sequence[Home], cal: Calibration, target: Target) -> float:
    """The measured DRAM rate of the op's access pattern (the module docstring's rule), scaled
    by the target's rated bandwidth over the one it was measured on."""
    fitted = target.fit.dram_for(op_class(node.op)) if target.fit is not None else None
    if fitted is not None:  # a profile's fit for the op's class
        rate = fitted.bytes_per_s
    elif Home.DRAM_SHARDED in input_homes:
        rate = cal.dram["sharded_matmul_bytes_per_s"]
    elif isinstance(node.op, CONTRACTIONS):
        rate = cal.dram["interleaved_matmul_bytes_per_s"]
    else:
        rate = cal.dram["read_bytes_per_s"]
    reference = cal.dram.get("reference_bytes_per_s", target.dram_bandwidth_bytes_per_s_per_chip)
    return rate * target.dram_bandwidth_bytes_per_s_per_chip / reference


def dram_fixed_s(node: Node, target: Target) -> float:
    """The floor of a data-moving op's DRAM time a profile's fit found for its class (0 else)."""
    fitted = target.fit.dram_for(op_class(node.op)) if target.fit is not None else None
    return fitted.fixed_s if fitted is not None else 0.0


def face_fraction(tiled: TileWork, target: Target) -> float:
    """The share of a 32-row tile the matrix engine computes for a product of fewer live rows:
    its rows rounded up to the ``small_m_rows``-row face (1 for 32 rows and more)."""
    assert tiled.padded_mkn is not None
    rows = tiled.live_rows
    face = target.small_m_rows
    if not face or rows >= 32:
        return 1.0
    return min(32, -(-rows // face) * face) / 32


def with_bound(t: OpTime) -> OpTime:
    return OpTime(
        compute_s=t.compute_s,
        dram_s=t.dram_s,
        noc_s=t.noc_s,
        link_s=t.link_s,
        dispatch_s=t.dispatch_s,
        bound=_bound(t),
    )


def _vector_rate(node: Node, target: Target) -> float:
    """Per core: ELWADD for adds and subtractions, ELWMUL for other binary ops, else the SFPU."""
    if isinstance(node.op, Add | Sub):
        rate = target.eltwise_add_flops_per_s_per_core
    elif isinstance(node.op, Binary):
        rate = target.eltwise_mul_flops_per_s_per_core
    else:
        rate = target.sfpu_flops_per_s_per_core
    if rate is None:
        raise PassError(
            f"pass 'op-time': {target.label} has no vector rate for '{node.name}' ({node.op.kind})"
        )
    return rate


def _simple_times(
    graph: Graph, target: Target, dispatch: str, efficiency: bool
) -> dict[str, OpTime]:
    """Uncalibrated targets (the module docstring's simple rules)."""
    flops = count_flops(graph, "full")
    traffic = traffic_of(graph)
    link = target.link
    link_rate = link.bandwidth_bytes_per_s * link.count if link is not None else 0.0
    chips = 1 if graph.meta.get("tensor_parallel") else target.chips
    out: dict[str, OpTime] = {}
    for node in graph:
        if isinstance(node.op, Source):
            out[node.name] = OpTime()
            continue
        f = flops[node.name].flops
        compute = 0.0
        if f:
            dt = compute_dtype(graph, node).name
            fidelity = node.fidelity if any(c.fidelity != "none" for c in target.compute) else None
            peak = chips * target.peak_flops_per_s_per_chip(dt, fidelity)
            eff = GPU_GEMM_EFFICIENCY if efficiency and isinstance(node.op, CONTRACTIONS) else 1.0
            compute = f / (peak * eff)
        t = traffic[node.name]
        if t.link_bytes and not link_rate:
            raise PassError(
                f"pass 'op-time': '{node.name}' sends {t.link_bytes:,} B between chips, but "
                f"{target.label} has no link"
            )
        gap = 0.0 if dispatch == "off" or isinstance(node.op, VIEWS) else target.dispatch_overhead_s
        record = OpTime(
            compute_s=compute,
            dram_s=t.bytes / (chips * target.dram_bandwidth_bytes_per_s_per_chip),
            link_s=t.link_bytes / link_rate if t.link_bytes else 0.0,
            dispatch_s=gap,
        )
        out[node.name] = with_bound(record)
    return out


@frozen
class OpTimeSummary:
    """The graph-level record of ``op-time``: whose times they are."""

    target: str
    cores: int


@register_pass
@frozen(kw_only=True)
class OpTimePass(AnalysisPass):
    """Each op's time on the target by resource (see the module docstring)."""

    name: ClassVar[str] = "op-time"
    summary: ClassVar[str] = "per-op time on the target: compute, DRAM, NoC, link, dispatch"
    record_type: ClassVar[type] = OpTime
    target: Target = field(factory=default_target, converter=load_target)
    dispatch: Dispatch = field(default="auto", validator=one_of(*DISPATCHES))
    efficiency: bool = True

    def reads(self, graph: Graph) -> tuple[type, ...]:
        return tuple(k for k in (Placement, TileWork) if graph.has_records(k))

    def analyze(self, graph: Graph) -> dict[str, OpTime]:
        return op_times(graph, self.target, self.dispatch, self.efficiency)

    def summarize(self, graph: Graph, records: Mapping[str, OpTime]) -> OpTimeSummary:
        return OpTimeSummary(self.target.name, self.target.cores)
