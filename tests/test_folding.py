"""Folding (irperf/folding.py, passes/folding.py): every figure a folded walk gives equals the
whole walk's exactly, integers and floats alike, and what cannot fold is refused."""

from __future__ import annotations

from typing import Any

import pytest

import irperf
from irperf.folding import fold
from irperf.ops import Input, Weight
from irperf.types import TensorType
from passes.flops import count_flops
from passes.folding import check, expand, expanded, footprint
from passes.kernels import kernel_graph
from passes.memory import MemoryFootprint
from passes.op_time import OpTime, OpTimeSummary
from passes.placement import PlacePass
from passes.schedule import program
from passes.tiles import TilesPass, TileWork


def _placed(graph: irperf.Graph, tp: int, target: str) -> irperf.Graph:
    machine = f"tensor-parallel{{chips={tp}}}," if tp > 1 else ""
    return irperf.run(
        graph,
        f"{machine}precision{{policy=tt-accuracy}},place{{strategy=tt-metal,target={target}}},"
        f"tiles{{target={target}}},op-time{{target={target}}},memory",
    )


@pytest.mark.parametrize(
    ("model", "phase", "options"),
    [
        ("llama-3.2-11b-vision", "prefill", {"seq_len": 256, "vision_rows": "tile"}),
        ("llama-3.2-11b-vision", "decode", {"context": 2048, "batch": 4}),
        ("llama-3.1-8b", "prefill", {"seq_len": 512}),
    ],
)
def test_the_folded_graph_stands_for_the_whole(model: str, phase: str, options: Any) -> None:
    whole = irperf.lower(model, phase=phase, **options)
    folded = fold(whole)
    assert folded is not None
    g = folded.graph
    assert len(g) < len(whole) / 3
    assert sum(folded.times_of(n) for n in g) == len(whole)
    # FLOPs by the count each node stands for: exactly the whole graph's.
    for convention in ("matmul-only", "full"):
        per_node = count_flops(g, convention)
        total = sum(per_node[n.name].flops * folded.times_of(n) for n in g)
        assert total == sum(f.flops for f in count_flops(whole, convention).values())


@pytest.mark.parametrize(
    ("phase", "options", "tp", "target"),
    [
        ("prefill", {"seq_len": 300, "vision_rows": "tile"}, 2, "n300"),
        ("decode", {"context": 1024, "batch": 2}, 2, "n300"),
        ("decode", {"context": 4096}, 1, "n150"),
    ],
)
def test_the_program_and_memory_equal_the_whole_walks(
    phase: str, options: Any, tp: int, target: str
) -> None:
    whole = irperf.lower("llama-3.2-11b-vision", phase=phase, **options)
    folded = fold(whole)
    assert folded is not None
    full, part = _placed(whole, tp, target), _placed(folded.graph, tp, target)
    kg = kernel_graph(part)
    layout = check(folded, folded.graph, part, kg)
    assert layout is not None

    def steps(g: irperf.Graph) -> list[Any]:
        work = g.records(TileWork)
        return program(g, g.records(OpTime), g.graph_record(OpTimeSummary).cores, work)

    want = steps(full)
    got, deps = expand(folded, part, kg, steps(part), layout)
    assert len(got) == len(want)
    for i, (a, b) in enumerate(zip(got, want, strict=True)):
        assert (a.time, a.length_s, a.cores, a.dram, a.link) == (
            b.time,
            b.length_s,
            b.cores,
            b.dram,
            b.link,
        ), i
        assert deps[i] == b.deps, (i, a.name, b.name)
    assert expanded(list(steps(part)), layout.step_spans) == got
    assert footprint(folded, part, layout) == full.graph_record(MemoryFootprint)


SWEEP = [
    ("llama-3.2-11b-vision", "n300", "prefill", 128, 1, None, []),
    ("llama-3.2-11b-vision", "n300", "prefill", 2048, 4, "tt-performance", []),
    ("llama-3.2-11b-vision", "n300", "decode", 8192, 1, None, ["l1_usable_bytes_per_core=400000"]),
    ("llama-3.2-11b-vision", "n150", "decode", 512, 32, "bf16", []),
    ("llama-3.2-11b-vision", "t3000", "decode", 1024, 8, None, []),
    ("llama-3.2-11b-vision", "h100", "prefill", 512, 2, None, []),
    (
        "llama-3.2-11b-vision",
        "n300",
        "decode",
        2048,
        1,
        None,
        ["dram_bandwidth_bytes_per_s_per_chip=576e9"],
    ),
    ("llama-3.2-90b-vision", "t3000", "decode", 4096, 1, None, []),
    ("llama-3.1-8b", "n150", "prefill", 1024, 1, None, []),
    ("llama-3.2-1b", "n300", "decode", 128, 64, "tt-accuracy", []),
]


@pytest.mark.parametrize(("model", "target", "phase", "shape", "batch", "precision", "sets"), SWEEP)
def test_a_folded_sweep_row_is_the_schedule_commands_row(
    model: str,
    target: str,
    phase: str,
    shape: int,
    batch: int,
    precision: str | None,
    sets: list[str],
) -> None:
    from irperf.cli.sweep import row

    c = {
        "model": model,
        "target": target,
        "phase": phase,
        "seq_len": shape if phase == "prefill" else None,
        "context": shape if phase == "decode" else None,
        "batch": batch,
        "precision": precision,
        "tp": None,
        "fusion": None,
        "sets": dict(s.split("=") for s in sets),
    }
    import irperf.cli.sweep_fast as fast

    quick = fast.row_of(
        [
            "schedule",
            model,
            "--target",
            target,
            "--phase",
            phase,
            "--seq-len" if phase == "prefill" else "--context",
            str(shape),
            "--batch",
            str(batch),
            *(["--precision", precision] if precision else []),
            *(w for s in sets for w in ("--set", s)),
        ],
        phase,
    )
    assert quick is not None, "this row folds"
    assert row(c, fast=True) == row(c, fast=False)  # every cell, to the bit


def _layers(tap: int | None, rename: bool = False) -> irperf.Graph:
    """Four identical layers on a carried tensor; ``tap``: that layer's result is also read
    after the run; ``rename``: the last layer's nodes are not named under their block."""
    from irperf.dtypes import DTYPES
    from irperf.ops import Add, MatMul

    bf16 = DTYPES["bf16"]
    g = irperf.Graph("layers")
    x = g.add("x", Input(type=TensorType((1, 32, 64), bf16))).name
    outs = []
    for i in range(4):
        scope = f"layer.{i}"
        g.blocks[scope] = "layer"
        at = f"other.{i}" if rename and i == 3 else scope
        w = g.add(f"{at}.w", Weight(type=TensorType((64, 64), bf16)), block=scope).name
        y = g.add(f"{at}.mm", MatMul(), [x, w], block=scope).name
        x = g.add(f"{at}.out", Add(), [y, x], block=scope).name
        outs.append(x)
    if tap is not None:
        g.add("tap", Add(), [outs[tap], x])
    return g


def test_what_cannot_fold_is_refused_or_cut() -> None:
    plain = fold(_layers(None))
    assert plain is not None and [r.times for r in plain.runs] == [4]
    assert plain.runs[0].carry == {"x": "layer.0.out"}
    tapped = fold(_layers(1))  # layers 0-1 fold; 2-3 fold, carried from layer 1's result
    assert tapped is not None and [r.times for r in tapped.runs] == [2, 2]
    assert tapped.graph.node("tap").operands == ("layer.0.out", "layer.2.out")
    renamed = fold(_layers(None, rename=True))  # the last layer is another block: three fold
    assert renamed is not None and [r.times for r in renamed.runs] == [3]
    assert renamed.graph.node("other.3.mm").operands == ("layer.0.out", "other.3.w")


def test_an_instance_read_after_the_run_cuts_it() -> None:
    whole = irperf.lower("llama-3.2-11b-vision", phase="prefill", seq_len=128)
    folded = fold(whole)
    assert folded is not None
    # The encoder's intermediate layers (3, 7, 15, 23, 30 of 32) are read by the projector's
    # input: the run of local layers is cut after each, so each tapped layer is a last instance.
    local = [r for r in folded.runs if r.blocks[0].startswith("vision.local")]
    assert [r.times for r in local] == [3, 4, 8, 8, 7, 2]


def test_rows_that_share_a_placed_graph_are_still_their_own() -> None:
    """Rows that differ in rates or in an L1 size the walk decides the same under share one
    placed graph (irperf/cli/sweep_fast.py): each is still its own command's row."""
    from irperf.cli.sweep import row

    base = {
        "model": "llama-3.2-11b-vision",
        "target": "n300",
        "phase": "decode",
        "seq_len": None,
        "context": 4096,
        "batch": 8,
        "precision": None,
        "tp": None,
        "fusion": None,
    }
    import irperf.cli.sweep_fast as fast_path

    fast_path._placed.clear()
    seen = set()
    for l1 in ("200000", "700000", "1000000", "1400000"):
        for bw in ("192e9", "576e9"):
            c = base | {
                "sets": {"l1_usable_bytes_per_core": l1, "dram_bandwidth_bytes_per_s_per_chip": bw}
            }
            fast = row(c, fast=True)
            assert fast == row(c, fast=False)
            seen.add(fast["scheduled_ms"])
    assert len(seen) > 2  # the sizes and rates do change the answer
    placed = [g for found in fast_path._placed.values() for g in found]
    assert 1 < len(placed) < 4  # some L1 sizes decide alike, some do not


def test_the_rates_a_placed_graph_ignores_change_no_home_or_tile() -> None:
    import attrs

    from irperf.cli.sweep_fast import RATES
    from passes.placement import Placement
    from targets import load_target

    g = irperf.lower("llama-3.2-11b-vision", phase="decode", context=1024)
    g = irperf.run(g, "tensor-parallel{chips=2},precision{policy=tt-accuracy}")
    n300 = load_target("n300")

    def homes(target: Any) -> tuple[Any, Any]:
        placed = irperf.run(
            g,
            [
                PlacePass(strategy="tt-metal", target=target),
                TilesPass(target=target),
            ],
        )
        return dict(placed.records(Placement)), dict(placed.records(TileWork))

    want = homes(n300)
    changes = {
        "description": "another",
        "clock_hz": n300.clock_hz * 2,
        "dram_bandwidth_bytes_per_s_per_chip": n300.dram_bandwidth_bytes_per_s_per_chip * 3,
        "compute": tuple(
            attrs.evolve(c, flops_per_s_per_core=c.flops_per_s_per_core * 5) for c in n300.compute
        ),
        "link": attrs.evolve(n300.link, bandwidth_bytes_per_s=n300.link.bandwidth_bytes_per_s * 2)
        if n300.link
        else None,
        "dispatch_overhead_s": n300.dispatch_overhead_s * 4,
        "sfpu_flops_per_s_per_core": 1e9,
        "eltwise_add_flops_per_s_per_core": 1e9,
        "eltwise_mul_flops_per_s_per_core": 1e9,
        "noc_bandwidth_bytes_per_s_per_core": 1e9,
        "sources": ("elsewhere",),
        "origin": "test",
    }
    assert set(changes) == set(RATES)
    for key, value in changes.items():
        assert homes(attrs.evolve(n300, **{key: value})) == want, key
