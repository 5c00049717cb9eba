"""Element formats: ``dtype`` for activations and every non-matmul tensor, ``weight_dtype`` for
the linear (matmul) weights, block formats allowed there only. Expected values by formula."""

from __future__ import annotations

from typing import Any

import pytest

import irperf
from irperf.dtypes import BF16, BFP4_B, BFP8_B, FP16, FP32, INT32
from irperf.errors import ConfigError, IrperfError
from irperf.graph import Graph
from irperf.ops import MatMul, Weight
from passes.memory import memory_footprint

INSTRUCT = "llama-3.2-11b-vision-instruct"
BASE = "llama-3.2-11b-vision"
D, H, KV, HD, F = 4096, 32, 8, 128, 14336  # the 11B text decoder
EMBED_ROWS, VOCAB = 128264, 128256
BFP8_TILE = 1024 + 64  # a 32x32 tile of bfp8_b: 8-bit mantissas and 64 shared exponents


def linear_weights(g: Graph) -> set[str]:
    """The weights read as a matmul's second operand."""
    return {
        n.operands[1]
        for n in g
        if isinstance(n.op, MatMul) and isinstance(g.node(n.operands[1]).op, Weight)
    }


def bfp8_bytes(k: int, n: int) -> int:
    assert k % 32 == 0 and n % 32 == 0
    return (k // 32) * (n // 32) * BFP8_TILE


@pytest.fixture(scope="module")
def full_bfp8() -> Graph:
    return irperf.lower(INSTRUCT, "full", seq_len=16, weight_dtype=BFP8_B)


def test_block_weights_leave_everything_else_bf16(full_bfp8: Graph) -> None:
    g = full_bfp8
    assert (g.meta["dtype"], g.meta["weight_dtype"]) == ("bf16", "bfp8_b")
    linear = linear_weights(g)
    # Vision: 40 blocks of wq, wk, wv, wo, fc1, fc2; the projector; text: 40 layers of wq, wk,
    # wv, wo, w1, w3, w2; lm_head.
    assert len(linear) == 40 * 6 + 1 + 40 * 7 + 1
    for name in linear:
        w = g.node(name)
        k, n = w.type.shape
        assert w.type.dtype == BFP8_B and w.type.nbytes == bfp8_bytes(k, n), name
    assert g.node("projector.proj.weight").type.nbytes == bfp8_bytes(7680, D)
    assert g.node("text.lm_head.weight").type.nbytes == bfp8_bytes(D, VOCAB)
    for n in g:  # tables, norms, biases, gates, inputs, caches, activations, logits
        if n.name not in linear and n.type.dtype != INT32:
            assert n.type.dtype == BF16, n.name
    table = g.node("vision.gated_positional_embedding.tile_embedding.weight")
    assert table.type.nbytes == 9 * 4 * 1601 * 1280 * 2  # not padded to 32-row tiles
    lookup = g.node("vision.gated_positional_embedding.tile_embedding.lookup")
    assert lookup.type.nbytes == 1 * 4 * 1601 * 1280 * 2


def test_resident_weights_take_the_weight_format() -> None:
    """Decode keeps the cross layers' vision K/V projections resident, unread: in bfp8_b too."""
    g = irperf.lower(INSTRUCT, "text", phase="decode", weight_dtype=BFP8_B)
    per_layer = (
        bfp8_bytes(D, H * HD)  # wq
        + 2 * bfp8_bytes(D, KV * HD)  # wk, wv
        + bfp8_bytes(H * HD, D)  # wo
        + 2 * bfp8_bytes(D, F)  # w1, w3
        + bfp8_bytes(F, D)  # w2
    )
    bf16_params = EMBED_ROWS * D + 40 * 2 * D + 8 * 258 + D  # embedding, norms, cross extras
    expected = 40 * per_layer + bfp8_bytes(D, VOCAB) + bf16_params * 2
    assert memory_footprint(g).weights_bytes == expected
    assert g.node("text.3.attn.wk.weight").type.dtype == BFP8_B
    assert not g.users("text.3.attn.wk.weight")


def test_vision_activation_peak_does_not_depend_on_the_weight_format() -> None:
    bf16 = memory_footprint(irperf.lower(BASE, "vision"))
    bfp8 = memory_footprint(irperf.lower(BASE, "vision", weight_dtype="bfp8_b"))
    assert bfp8.activation_peak_bytes == bf16.activation_peak_bytes
    assert bfp8.weights_bytes < bf16.weights_bytes


def test_weight_dtype_defaults_to_dtype() -> None:
    g = irperf.lower(INSTRUCT, "text", seq_len=8, dtype=FP32)
    assert (g.meta["dtype"], g.meta["weight_dtype"]) == ("fp32", "fp32")
    assert g.node("text.lm_head.weight").type.dtype == FP32
    assert g.node("text.0.attn.wq").type.dtype == FP32


def test_formats_by_name() -> None:
    g = irperf.lower(INSTRUCT, "text", seq_len=8, dtype="FP16", weight_dtype="bfp4_b")
    assert (g.meta["dtype"], g.meta["weight_dtype"]) == ("fp16", "bfp4_b")
    assert g.node("text.0.mlp.w1.weight").type.dtype == BFP4_B
    assert g.node("text.0.mlp.w1").type.dtype == FP16  # the matmul's result: an activation
    assert g.node("text.embed.weight").type.dtype == FP16


@pytest.mark.parametrize(
    ("opts", "error", "message"),
    [
        ({"dtype": "bfp8_b"}, ConfigError, r"dtype bfp8_b is a block format.*--weight-dtype"),
        ({"dtype": BFP4_B}, ConfigError, r"block format.*activations take bf16, fp16, fp32, fp8"),
        ({"dtype": INT32}, ConfigError, "dtype int32 is not a floating-point format"),
        ({"weight_dtype": "int32"}, ConfigError, "weight_dtype int32 is not a floating-point"),
        ({"dtype": "bf17"}, IrperfError, r"unknown dtype 'bf17'; valid: .*bf16"),
        ({"weight_dtype": "bfp9"}, IrperfError, r"unknown dtype 'bfp9'"),
        ({"dtype": 2}, ConfigError, "dtype must be a DType or a dtype name, got 2"),
    ],
)
def test_bad_formats(opts: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message) as info:
        irperf.lower(INSTRUCT, "text", **opts)
    assert "\n" not in str(info.value)
