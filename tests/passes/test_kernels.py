"""The kernel graph: fusion groups outlined into kernels, read by the schedule and the report."""

from __future__ import annotations

import json
from typing import Any

import pytest

import irperf
from irperf.builder import Builder
from irperf.cli import main
from irperf.dtypes import BF16
from irperf.ops import Add, Gelu, MatMul, Source
from passes.kernels import kernel_graph
from passes.op_time import OpTime
from passes.schedule import Schedule, Slot


def _mlp() -> irperf.Graph:
    b = Builder()
    x = b.input("x", (64, 256), BF16)
    h = b.add(MatMul(), x, b.weight("w", (256, 256), BF16), name="mm")
    h = b.add(Add(), h, b.weight("bias", (256,), BF16), name="bias_add")
    g = b.add(Gelu(), h, name="gelu")
    b.add(Add(), g, x, name="residual")
    return b.graph


def test_groups_become_kernels_with_their_external_edges() -> None:
    g = irperf.run(_mlp(), "fuse{strategy=epilogue}")
    kg = kernel_graph(g)
    fused = next(k for k in kg.kernels if len(k.members) > 1)
    assert fused.members[0] == "mm" and "bias_add" in fused.members
    assert set(fused.inputs) >= {"x", "w", "bias"}  # from outside, weights included
    assert fused.outputs == (fused.members[-1],)  # only its last result leaves the kernel
    ops = [n.name for n in g if not isinstance(n.op, Source)]
    assert sorted(m for k in kg.kernels for m in k.members) == sorted(ops)  # each op once
    seen: set[str] = set()
    for k in kg.kernels:  # program order: a kernel after every kernel it reads
        assert set(kg.deps(k)) - {k.name} <= seen
        seen.add(k.name)
    plain = kernel_graph(_mlp())  # no fusion records: one kernel per op
    assert [k.members for k in plain.kernels] == [(n,) for n in ops]


def test_a_fused_kernel_dispatches_once_and_moves_what_fusion_leaves() -> None:
    base = irperf.run(_mlp(), "op-time{target=n300,dispatch=eager}")
    fused = irperf.run(
        _mlp(),
        "flops{convention=full},fuse{strategy=epilogue},fused-bytes{convention=full},"
        "op-time{target=n300,dispatch=eager},schedule",
    )
    kg = kernel_graph(fused)
    kernel = next(k for k in kg.kernels if len(k.members) > 1)
    slots = fused.records(Slot)
    assert {slots[m].kernel for m in kernel.members} == {kernel.name}
    assert len({slots[m] for m in kernel.members}) == 1  # the members share one slot
    # Dispatch: one 29 us gap per kernel, not per op.
    host = fused.graph_record(Schedule).busy_s["host"]
    assert host == pytest.approx(29e-6 * len(kg.kernels))
    assert fused.graph_record(Schedule).kernels == len(kg.kernels) < len(base.records(OpTime))


def test_schedule_with_a_fusion_strategy(capsys: Any) -> None:
    def run(*extra: str) -> dict[str, Any]:
        argv = ["schedule", "llama-3.2-11b-vision", "--phase", "decode", *extra, "--json"]
        assert main(argv) == 0
        return json.loads(capsys.readouterr().out)

    plain, greedy = run(), run("--fusion", "greedy")
    ops = plain["phases"]["decode"]["ops"]
    kernels = greedy["phases"]["decode"]["ops"]
    assert sum(k["members"] for k in kernels) == sum(o["members"] for o in ops)
    assert len(kernels) < len(ops) and any(k["kind"] == "kernel" for k in kernels)
    assert greedy["tpot_ms"] <= plain["tpot_ms"]  # fewer dispatches, fewer DRAM bytes
