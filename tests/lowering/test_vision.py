"""The vision encoder and projector graph: structure, shapes and scaling, from the reference."""

from __future__ import annotations

import pytest

import irperf
from irperf.errors import ConfigError
from irperf.graph import Graph
from irperf.ops import SDPA, Concat, Conv2d, Weight
from passes.flops import FlopCount


@pytest.fixture(scope="module")
def g448() -> Graph:
    return irperf.lower("llama-3.2-11b-vision", part="vision")


def test_scopes_and_blocks(g448: Graph) -> None:
    kinds = list(g448.blocks.items())
    assert kinds[:32] == [(f"vision.local.{i}", "vision.local") for i in range(32)]
    assert kinds[32:] == [(f"vision.global.{i}", "vision.global") for i in range(8)]
    assert all(n.name.startswith(("vision.", "projector.")) for n in g448)
    irperf.verify(g448)


def test_shapes_follow_the_reference(g448: Graph) -> None:
    n, padded, tiles, w = 32 * 32 + 1, 1032, 4, 1280
    conv = g448.node("vision.patch_embedding.conv")
    assert isinstance(conv.op, Conv2d) and conv.type.shape == (tiles, w, 32, 32)
    assert g448.node("vision.pad").type.shape == (1, tiles, padded, w)
    sdpa = g448.node("vision.local.0.attn.sdpa")
    assert isinstance(sdpa.op, SDPA)
    assert (sdpa.op.heads, sdpa.op.head_dim, sdpa.op.causal) == (16, 80, False)
    assert sdpa.type.shape == (1, tiles * padded, w)
    # Global output + 5 saved intermediates -> 7680 channels, padding dropped.
    concat = g448.node("vision.output.concat")
    assert isinstance(concat.op, Concat)
    entering = [f"vision.local.{i - 1}.mlp_residual" for i in (3, 7, 15, 23, 30)]
    assert concat.operands == ("vision.global.7.mlp_residual", *entering)
    assert g448.node("vision.output.flatten").type.shape == (1, tiles * n, 7680)
    assert g448.node("projector.proj").type.shape == (1, tiles * n, 4096)


def test_weights_are_sources_with_hf_layout(g448: Graph) -> None:
    weights = {n.name: n.type.shape for n in g448 if isinstance(n.op, Weight)}
    assert weights["vision.patch_embedding.weight"] == (1280, 3, 14, 14)
    assert weights["vision.gated_positional_embedding.tile_embedding.weight"] == (
        9,
        4 * 1025 * 1280,
    )
    assert weights["vision.pre_tile_positional_embedding.embedding.weight"] == (9, 4 * 1280)
    assert weights["vision.global.0.gate_attn"] == (1,)
    assert weights["vision.local.0.mlp.fc1.bias"] == (5120,)
    assert "vision.local.0.attn.wq.bias" not in weights  # attention projections have no bias


def total_flops(g: Graph) -> int:
    g = irperf.run(g, "flops")
    return sum(r.flops for r in g.records(FlopCount).values())


def test_batch_and_images_scale_linearly(g448: Graph) -> None:
    one = total_flops(g448)
    assert total_flops(irperf.lower("llama-3.2-11b-vision", "vision", batch=2)) == 2 * one
    assert total_flops(irperf.lower("llama-3.2-11b-vision", "vision", images=3)) == 3 * one
    # Fewer real tiles change nothing: the encoder always runs all four.
    assert total_flops(irperf.lower("llama-3.2-11b-vision", "vision", tiles=1)) == one


def test_bad_lowering_options() -> None:
    for kw in ({"batch": 0}, {"images": -1}, {"tiles": 5}, {"tiles": 0}):
        with pytest.raises(ConfigError):
            irperf.lower("llama-3.2-11b-vision", "vision", **kw)
    with pytest.raises(ConfigError, match="part"):
        irperf.lower("llama-3.2-11b-vision", "audio")


def test_meta_layout_has_smaller_tile_tables_and_the_same_flops() -> None:
    from passes.params import ParamCount

    hf = irperf.run(irperf.lower("llama-3.2-90b-vision", "vision"), "params,flops")
    meta = irperf.run(irperf.lower("llama-3.2-90b-vision", "vision", layout="meta"), "params,flops")
    n, w, tiles = 1601, 1280, 4

    def total(g: Graph, kind: type, attr: str) -> int:
        return sum(getattr(r, attr) for r in g.records(kind).values())

    # HF: one row per aspect ratio (9) of 4 tiles; Meta: (4, 4, ...) tables.
    hf_tables = 9 * tiles * n * w + 2 * 9 * tiles * w
    meta_tables = tiles * tiles * n * w + 2 * tiles * tiles * w
    assert total(hf, ParamCount, "params") - total(meta, ParamCount, "params") == (
        hf_tables - meta_tables
    )
    assert total(meta, ParamCount, "params") == 863_567_379 - hf_tables + meta_tables + (
        7680 * 8192 + 8192
    )
    assert total(hf, FlopCount, "flops") == total(meta, FlopCount, "flops")
    with pytest.raises(ConfigError, match="unknown layout"):
        irperf.lower("llama-3.2-90b-vision", "vision", layout="onnx")
