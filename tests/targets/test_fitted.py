"""A target's ``[fit]`` table: it loads, replaces what it covers, and round-trips through the
writer; the shipped targets' numbers never move."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from irperf.dtypes import BF16
from irperf.errors import TargetError
from irperf.graph import Node
from irperf.ops import Add
from irperf.types import TensorType
from passes.op_time import dram_rate
from targets import load_target
from targets.calibration import (
    KernelModel,
    dispatch_gaps,
    gemm_models,
    link_models,
    load_calibration,
)
from targets.fitted import CollectiveFit, DramFit, Fitted, KernelFit
from targets.loader import parse_target
from targets.target import Target
from targets.writer import target_toml

N300 = load_target("n300")
FIT = Fitted(
    profile="ops.csv",
    rows_used=7,
    kernels=(KernelFit(dtype="bf16", fidelity="hifi4", e_max=0.8, fixed_s=2e-6),),
    dram=(DramFit(op_class="binary", bytes_per_s=200e9, fixed_s=1e-6),),
    collectives=(CollectiveFit(kind="all_gather", latency_s=5e-6, s_per_byte=1e-10),),
    dispatch_traced_s=1.5e-6,
)


def fitted() -> Target:
    return attrs.evolve(N300, name="my-n300", fit=FIT)


def test_the_fit_replaces_what_it_covers_and_nothing_else() -> None:
    t = fitted()
    models, base = gemm_models(t), gemm_models(N300)
    assert models[("bf16", "hifi4")] == KernelModel(0.8, 2e-6)
    assert {k: m for k, m in models.items() if k != ("bf16", "hifi4")} == {
        k: m for k, m in base.items() if k != ("bf16", "hifi4")
    }
    cal = load_calibration("wormhole")
    assert dispatch_gaps(t) == (1.5e-6, cal.dispatch_eager_s)
    assert dispatch_gaps(N300) == (cal.dispatch_traced_s, cal.dispatch_eager_s)
    links, base_links = link_models(t), link_models(N300)
    assert links["all_gather"].latency_s == 5e-6 and links["all_gather"].s_per_byte == 1e-10
    assert links["all_gather"].hop_s == cal.hop_s["all_gather"]
    assert links["all_reduce"] == base_links["all_reduce"]
    add = Node("x", Add(), ("a", "b"), TensorType((32, 32), BF16))
    # n300 is rated 288 GB/s, the calibration's reference: the fitted rate as written
    assert dram_rate(add, (), cal, t) == pytest.approx(200e9, rel=1e-12)
    assert dram_rate(add, (), cal, N300) == pytest.approx(cal.dram["read_bytes_per_s"], rel=1e-12)


def test_the_writer_round_trips_every_shipped_target_and_a_fit() -> None:
    from targets import list_targets

    for t in [*list_targets(), fitted()]:
        assert parse_target(target_toml(t, ["a comment"]), "x.toml") == t


def test_a_fit_file_loads_and_its_errors_name_the_field(tmp_path: Path) -> None:
    path = tmp_path / "my.toml"
    path.write_text(target_toml(fitted()))
    assert load_target(str(path)).fit == FIT
    text = target_toml(fitted())
    cases = [
        ("e_max = 0.8", "e_max = 80", "fit.kernels[0]: e_max must be a number from 0.001 to 4"),
        ("e_max = 0.8", "e_max = 0.8, clock = 1", "unknown field 'fit.kernels[0].clock'"),
        ("bytes_per_s = 200000000000.0", "bytes_per_s = 2.0", "fit.dram[0]: bytes_per_s must be"),
        ('op_class = "binary"', 'op_class = "binery"', "op_class 'binery' is not one of"),
        ('kind = "all_gather"', 'kind = "gather"', "collective kind 'gather' is not one of"),
        ('calibration = "wormhole"\n', "", "a [fit] table needs a calibration"),
        ('fidelity = "hifi4", e_max', 'fidelity = "hifi9", e_max', "fidelity 'hifi9'"),
    ]
    for old, new, message in cases:
        assert old in text
        path.write_text(text.replace(old, new, 1))
        with pytest.raises(TargetError, match=message.replace("[", r"\[").replace("]", r"\]")):
            load_target(str(path))


def test_op_time_adds_a_fitted_floor_to_the_dram_time() -> None:
    import irperf
    from passes.op_time import OpTime

    g = irperf.lower("llama-3.2-1b", "text", phase="decode", context=16)
    name = "text.0.attn_residual"
    times = {}
    for t in (N300, fitted()):
        times[t.name] = irperf.run(g, [irperf.get_pass("op-time")(target=t)]).records(OpTime)[name]
    base, fit = times["n300"], times["my-n300"]
    # the fitted binary rate and floor: bytes / 200 GB/s + 1 us, against bytes / 267 GB/s
    moved = base.dram_s * load_calibration("wormhole").dram["read_bytes_per_s"]
    assert fit.dram_s == pytest.approx(moved / 200e9 + 1e-6, rel=1e-9)
    assert fit.compute_s == base.compute_s
