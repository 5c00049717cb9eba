"""Tiles, padded FLOPs and core grids, by formula (wormhole.md: everything is computed in 32x32
tiles; per_core_M = ceil(Mt / grid_y), per_core_N = ceil(Nt / grid_x); the 8x8 compute grid)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import irperf
from irperf.contraction import Contraction, padded, tiles_of
from passes.flops import count_flops
from passes.tiles import TileWork, on_grid

B11 = "llama-3.2-11b-vision"
B90 = "llama-3.2-90b-vision"  # 560 px tiles: 1601 tokens, 1608 with HF's padding


def test_padding_to_whole_tiles() -> None:
    assert (padded(4100), tiles_of(4100)) == (4128, 129)
    assert (padded(1), tiles_of(1)) == (32, 1)
    assert padded(80) == 96  # the vision head size, padded inside attention


def _work(phase: str = "prefill", model: str = B11) -> dict[str, TileWork]:
    g = irperf.run(irperf.lower(model, phase=phase), "tiles")
    return dict(g.records(TileWork))


def test_cross_kv_projection_of_4100_vision_tokens() -> None:
    t = _work()["text.3.attn.wk"]  # 1 image x 4 tiles x (32^2 + 1) tokens at 448 px: 4100 rows
    assert t.padded_mkn == (4128, 4096, 1024)
    assert t.padded_flops == 2 * 4128 * 4096 * 1024


def test_decode_rows_pad_to_a_tile() -> None:
    t = _work("decode")["text.0.attn.wq"]
    assert t.padded_mkn == (32, 4096, 4096)
    assert t.padded_flops == 2 * 32 * 4096 * 4096
    assert t.grid == (1, 8)  # one row of tiles: one grid row
    assert t.per_core_tiles == 4096 // 32 // 8


def test_imbalance_of_a_vision_fc1_on_the_8x8_grid() -> None:
    # 4 tiles x 1608 rows (HF's padding) = 6432 x 1280 x 5120.
    t = _work(model=B90)["vision.local.0.mlp.fc1"]
    mt, nt = 6432 // 32, 5120 // 32  # 201 x 160 output tiles
    slowest = math.ceil(mt / 8) * math.ceil(nt / 8)
    assert t.padded_mkn == (6432, 1280, 5120) and t.grid == (8, 8)
    assert t.per_core_tiles == slowest == 26 * 20
    assert t.imbalance == pytest.approx(slowest / (mt * nt / 64))


def test_attention_pads_the_head_size_and_spreads_heads() -> None:
    t = _work(model=B90)["vision.local.0.attn.sdpa"]
    q_rows, heads = 6432, 16
    assert t.padded_mkn in {(6432, 96, 6432), (6432, 6432, 96)}  # the larger of its 2 products
    qk = 2 * heads * padded(q_rows) * padded(80) * padded(q_rows)
    assert t.padded_flops == 2 * qk  # both products, padded alike
    blocks = heads * 6432 // 32
    assert t.per_core_tiles == math.ceil(blocks / 64) * (6432 // 32)


def test_logical_flops_do_not_move() -> None:
    g = irperf.lower(B90, part="vision")
    flops = count_flops(g)
    work = irperf.run(g, "tiles").records(TileWork)
    # The flops record stays logical: fc1's 2 * 6432 * 1280 * 5120, never the padded count.
    assert flops["vision.local.0.mlp.fc1"].flops == 2 * 6432 * 1280 * 5120
    assert all(work[n].padded_flops >= flops[n].flops for n in flops)


def test_small_work_takes_a_smaller_grid() -> None:
    shape, slowest, imbalance = on_grid(Contraction(1, 64, 64, 96), (8, 8))
    assert shape == (2, 3) and slowest == 1 and imbalance == 1.0


def test_dram_sharded_decode_matmuls_are_width_sharded() -> None:
    g = irperf.run(
        irperf.lower(B11, phase="decode"),
        "tensor-parallel{chips=2},precision{policy=tt-accuracy},place{strategy=tt-metal},tiles",
    )
    work = g.records(TileWork)
    # Per chip of 2: wq N = 4096 / 2 = 2048 (64 tiles) over all 64 cores, one tile each; wk
    # N = 1024 / 2 = 512 (16 tiles) over 16 cores; w1 N = 14336 / 2 = 7168 (224 tiles): 56 is the
    # most cores that divide 224 (= 7 x 32), 4 tiles each. M is one tile row.
    for name, cores, grid in (("wq", 64, (8, 8)), ("wk", 16, (2, 8)), ("w1", 56, (7, 8))):
        node = f"text.0.attn.{name}" if name != "w1" else "text.0.mlp.w1"
        t = work[node]
        assert t.program == "dram_sharded", node
        nt = {"wq": 2048, "wk": 512, "w1": 7168}[name] // 32
        assert t.per_core_tiles == 1 * nt // cores and t.grid == grid and t.imbalance == 1.0
    # Without a placement the same matmul is a 2D-multicast one: one row of 8 cores.
    plain = irperf.run(irperf.lower(B11, phase="decode"), "tensor-parallel{chips=2},tiles")
    t = plain.records(TileWork)["text.0.attn.wq"]
    assert t.program == "2d_multicast" and t.grid == (1, 8) and t.per_core_tiles == 64 // 8


@pytest.mark.parametrize(
    ("phase", "batch", "divisor"),
    [("decode", 1, 8), ("decode", 4, 8), ("decode", 8, 1), ("prefill", 1, 1)],
)
def test_small_m_runs_at_an_eighth(phase: str, batch: int, divisor: int) -> None:
    # wormhole.md: inputs with fewer than 8 rows run at 1/8 of the rate (decode: one row per user)
    g = irperf.run(irperf.lower(B11, phase=phase, batch=batch, part="text"), "tiles")
    assert g.records(TileWork)["text.0.attn.wq"].rate_divisor == divisor


def test_grids_per_kind_and_phase_from_a_policy(tmp_path: Path) -> None:
    path = tmp_path / "grids.toml"
    path.write_text(
        "[kind.matmul]\ngrid = [2, 2]\n"
        "[phase.prefill.kind.matmul]\ngrid = [4, 8]\n"
        "[role.ff1]\ngrid = [8, 4]\n"
    )
    tiles = irperf.get_pass("tiles")(overrides=str(path))
    prompt = irperf.lower(B11, phase="prefill", seq_len=1024)  # 32 row tiles: no grid clipped
    work = irperf.run(prompt, [tiles]).records(TileWork)
    assert work["vision.local.0.attn.wq"].grid == (2, 2)  # the vision phase: the kind's grid
    assert work["text.0.attn.wq"].grid == (4, 8)  # prefill: the phase's kind grid
    assert work["text.0.mlp.w1"].grid == (8, 4)  # a role wins over a kind
    assert work["text.0.attn.sdpa"].grid == (8, 8)  # another kind: the target's grid
