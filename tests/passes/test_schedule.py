"""The list schedule: dependencies, resources, bounds and determinism (passes/schedule.py)."""

from __future__ import annotations

import itertools

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import irperf
from irperf.ops import Collective, MeshSplit, Source
from passes.op_time import OpTime
from passes.schedule import DRAM, LINK, Schedule, Slot, duration_s, schedule
from passes.tiles import TileWork
from tests.passes.test_fusion_properties import dags

PROPERTY = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
times_st = st.floats(0, 1e-3, allow_nan=False, allow_infinity=False)


@PROPERTY
@given(g=dags(), data=st.data())
def test_dependencies_and_resources_are_respected(g: irperf.Graph, data: st.DataObject) -> None:
    cores = data.draw(st.sampled_from([1, 4, 64]))
    overlap = data.draw(st.sampled_from([0.0, 0.5, 1.0]))
    times: dict[str, OpTime] = {}
    work: dict[str, TileWork] = {}
    for n in g:
        times[n.name] = OpTime(
            compute_s=data.draw(times_st),
            dram_s=data.draw(times_st),
            link_s=data.draw(times_st) if data.draw(st.booleans()) else 0.0,
            dispatch_s=data.draw(st.sampled_from([0.0, 1e-6, 29e-6])),
        )
        k = data.draw(st.integers(1, cores))
        work[n.name] = TileWork(grid=(1, k), cores=k, padded_mkn=(32, 32, 32))
    slots, whole = schedule(g, times, cores, work, overlap, async_ccl=True)
    ops = [n for n in g if not isinstance(n.op, Source)]
    for n in ops:
        s = slots[n.name]
        assert s.start_s >= max((slots[o].end_s for o in n.operands), default=0.0)
        assert s.start_s >= s.dispatch_start_s + times[n.name].dispatch_s - 1e-15
        assert abs(s.end_s - s.start_s - duration_s(times[n.name], overlap)) < 1e-12 or (
            n.op.kind == "reshape" and s.end_s == s.start_s
        )
    # Exclusive resources: no two holders overlap; the host dispatches one op at a time.
    for r in (DRAM, LINK):
        spans = sorted(
            (slots[n.name].start_s, slots[n.name].end_s)
            for n in ops
            if r in slots[n.name].resources
        )
        assert all(a[1] <= b[0] + 1e-15 for a, b in itertools.pairwise(spans))
    gaps = [(slots[n.name].dispatch_start_s, times[n.name].dispatch_s) for n in ops]
    assert all(a[0] + a[1] <= b[0] + 1e-15 for a, b in itertools.pairwise(gaps))
    # Cores: at every op's start, the cores in use are at most the grid's.
    for n in ops:
        t = slots[n.name].start_s
        used = sum(
            slots[m.name].cores for m in ops if slots[m.name].start_s <= t < slots[m.name].end_s
        )
        assert used <= cores
    # Bounds: no faster than any one resource's work, no slower than everything in a row.
    total = sum(duration_s(times[n.name], overlap) + times[n.name].dispatch_s for n in ops)
    assert max(whole.busy_s.values(), default=0.0) <= whole.makespan_s + 1e-12
    assert whole.makespan_s <= total + 1e-12


def _decode() -> irperf.Graph:
    g = irperf.lower("llama-3.2-11b-vision", phase="decode")
    return irperf.run(
        g,
        "tensor-parallel{chips=2},precision{policy=tt-accuracy},place{strategy=tt-metal},"
        "tiles{target=n300},op-time{target=n300}",
    )


def test_real_decode_bounds_and_determinism() -> None:
    g = _decode()
    a = irperf.run(g, "schedule{target=n300}")
    b = irperf.run(g, "schedule{target=n300}")
    assert repr(dict(a.records(Slot))) == repr(dict(b.records(Slot)))  # byte for byte
    whole = a.graph_record(Schedule)
    times = a.records(OpTime)
    # The aggregate roofline of these times: each resource's total alone.
    per_resource = [sum(getattr(t, f) for t in times.values()) for f in ("compute_s", "dram_s")]
    assert whole.makespan_s >= max(per_resource)
    assert whole.makespan_s <= sum(t.latency_s() for t in times.values())
    # The critical path ends at the last op and runs through dependencies or resources.
    path = whole.critical_path
    assert a.records(Slot)[path[-1]].end_s == whole.makespan_s
    assert len(path) > 100


def test_collectives_hold_the_link_and_cores_only_when_synchronous() -> None:
    g = _decode()
    on = irperf.run(g, "schedule{target=n300,async_ccl=true}").records(Slot)
    off = irperf.run(g, "schedule{target=n300,async_ccl=false}").records(Slot)
    ccl = [n.name for n in g if isinstance(n.op, Collective) and not isinstance(n.op, MeshSplit)]
    assert ccl
    for name in ccl:
        assert on[name].resources[-1] == LINK and on[name].cores == 0
        assert off[name].cores == 64


def test_overlap_zero_sums_each_ops_parts() -> None:
    t = OpTime(compute_s=3e-6, dram_s=2e-6, noc_s=1e-6, link_s=0.0)
    assert duration_s(t, 0.0) == pytest.approx(6e-6) and duration_s(t, 1.0) == 3e-6
    both = 0.5 * 3e-6 + 0.5 * 6e-6 + 1e-6
    assert duration_s(attrs.evolve(t, link_s=1e-6), 0.5) == pytest.approx(both)


def test_the_seed_encoder_between_its_roofline_and_the_per_op_sum() -> None:
    # n300-seed with dispatch and efficiency off (and no link: the graph is unsplit): every op
    # holds the whole grid, so at overlap 1 the schedule is the per-op roofline under the full
    # convention (every op as the device runs it), at least the seed's 21.4 ms.
    from passes.roofline import RooflineTime, per_op_roofline_s

    g = irperf.lower("llama-3.2-11b-vision", part="vision")
    timed = "op-time{target=n300-seed,dispatch=off,efficiency=false}"
    full = irperf.run(g, "flops{convention=full},bytes{convention=full},roofline{target=n300-seed}")
    per_op = per_op_roofline_s(full.records(RooflineTime).values())
    for overlap, expect in ((1.0, per_op), (0.0, None)):
        r = irperf.run(g, f"{timed},schedule{{target=n300-seed,overlap={overlap}}}")
        makespan = r.graph_record(Schedule).makespan_s
        assert makespan >= 21.4e-3
        if expect is not None:
            assert makespan == pytest.approx(expect, rel=1e-9)
        else:  # nothing hides: each op's compute and DRAM time in a row
            times = r.records(OpTime).values()
            assert makespan == pytest.approx(sum(t.compute_s + t.dram_s for t in times))


def test_the_schedule_shares_op_times_target() -> None:
    g = irperf.lower("llama-3.2-11b-vision", part="text", phase="decode")
    with pytest.raises(irperf.PassError, match="op-time timed the ops on 'n300'"):
        irperf.run(g, "op-time{target=n300},schedule{target=h100}")
    r = irperf.run(g, "op-time{target=h100},schedule")  # the default: op-time's target
    assert max(s.cores for s in r.records(Slot).values()) == 132  # the H100's SMs
