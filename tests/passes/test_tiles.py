"""Tiles, padded FLOPs and core grids, by formula (wormhole.md: everything is computed in 32x32
tiles; per_core_M = ceil(Mt / grid_y), per_core_N = ceil(Nt / grid_x); the 8x8 compute grid)."""

from __future__ import annotations

import math

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
