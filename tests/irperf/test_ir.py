"""Dtypes, tensor types and op type inference."""

from __future__ import annotations

import pytest

from irperf.dtypes import BF16, BFP4_B, BFP8_B, FP32, INT32, dtype, tensor_bytes, tile_count
from irperf.errors import IrperfError, TypeInferenceError
from irperf.ops import (
    SDPA,
    Add,
    CacheAppend,
    Concat,
    Conv2d,
    Embedding,
    Expand,
    Gelu,
    LayerNorm,
    MatMul,
    Pad,
    Reshape,
    RMSNorm,
    Rope,
    Slice,
    Softmax,
    Transpose,
)
from irperf.types import TensorType


def t(*shape: int, dt=BF16) -> TensorType:
    return TensorType(shape, dt)


def test_scalar_dtype_bytes() -> None:
    assert tensor_bytes((4128, 1280), BF16) == 4128 * 1280 * 2
    assert tensor_bytes((3, 5), FP32) == 3 * 5 * 4


def test_block_formats_count_whole_tiles() -> None:
    # BFP8_b: 1024 mantissa bytes + 64 exponent bytes per 32x32 tile; BFP4_b: 512 + 64.
    assert BFP8_B.tile_bytes == 1088
    assert BFP4_B.tile_bytes == 576
    assert tensor_bytes((4096, 14336), BFP8_B) == (4096 // 32) * (14336 // 32) * 1088
    # 33 rows pad to 2 tiles of rows; a batch dimension multiplies.
    assert tile_count((2, 33, 64)) == 2 * 2 * 2
    assert tensor_bytes((2, 33, 64), BFP4_B) == 8 * 576
    # A vector is one row of tiles.
    assert tensor_bytes((1280,), BFP8_B) == 40 * 1088


def test_dtype_lookup() -> None:
    assert dtype("BF16") is BF16
    with pytest.raises(IrperfError, match="unknown dtype 'bf17'; valid: .*bf16"):
        dtype("bf17")


def test_tensor_type_rejects_bad_dims() -> None:
    with pytest.raises(TypeInferenceError):
        TensorType((0, 3), BF16)
    with pytest.raises(TypeInferenceError):
        TensorType((-1,), BF16)


def test_matmul_inference_and_broadcast() -> None:
    assert MatMul().infer([t(1, 4128, 1280), t(1280, 5120)]) == t(1, 4128, 5120)
    assert MatMul().infer([t(8, 1, 64, 32), t(3, 32, 16)]) == t(8, 3, 64, 16)
    assert MatMul(out_dtype=FP32).infer([t(2, 3), t(3, 4)]).dtype == FP32
    with pytest.raises(TypeInferenceError, match="contraction mismatch"):
        MatMul().infer([t(2, 3), t(4, 5)])
    with pytest.raises(TypeInferenceError, match="takes 2 operand"):
        MatMul().infer([t(2, 3)])


def test_conv2d_patch_embedding_shape() -> None:
    out = Conv2d(stride=14).infer([t(4, 3, 448, 448), t(1280, 3, 14, 14)])
    assert out == t(4, 1280, 448 // 14, 448 // 14)
    with pytest.raises(TypeInferenceError, match="channels"):
        Conv2d(stride=14).infer([t(4, 4, 448, 448), t(1280, 3, 14, 14)])
    with pytest.raises(TypeInferenceError):
        Conv2d(stride=0)


def test_sdpa_gqa_and_errors() -> None:
    op = SDPA(heads=32, kv_heads=8, head_dim=128, causal=True)
    assert op.infer([t(1, 7, 4096), t(1, 7, 1024), t(1, 7, 1024)]) == t(1, 7, 4096)
    with pytest.raises(TypeInferenceError, match="do not divide"):
        SDPA(heads=32, kv_heads=6, head_dim=128).infer([t(1, 7, 4096), t(1, 7, 768), t(1, 7, 768)])
    with pytest.raises(TypeInferenceError, match="k must be"):
        op.infer([t(1, 7, 4096), t(1, 7, 512), t(1, 7, 512)])
    with pytest.raises(TypeInferenceError, match="kv_len"):
        SDPA(heads=1, kv_heads=1, head_dim=4, kv_len=9).infer([t(1, 1, 4), t(1, 8, 4), t(1, 8, 4)])
    assert SDPA(heads=1, kv_heads=1, head_dim=4, kv_len=5).keys_attended(t(1, 8, 4)) == 5


def test_rope_reads_x_and_its_position_tables() -> None:
    """``x[B, S, heads*hd]`` with ``cos``/``sin`` ``[S, hd]``; the result is x's type."""
    assert Rope(head_dim=4).infer([t(2, 3, 8), t(3, 4), t(3, 4)]) == t(2, 3, 8)
    with pytest.raises(TypeInferenceError, match="takes 3 operand"):
        Rope(head_dim=4).infer([t(1, 3, 8)])
    with pytest.raises(TypeInferenceError, match="must be positive and even"):
        Rope(head_dim=3).infer([t(1, 3, 9), t(3, 3), t(3, 3)])
    with pytest.raises(TypeInferenceError, match=r"x must be \[B, S, heads\*4\]"):
        Rope(head_dim=4).infer([t(1, 3, 10), t(3, 4), t(3, 4)])
    with pytest.raises(TypeInferenceError, match=r"x must be"):
        Rope(head_dim=4).infer([t(3, 8), t(3, 4), t(3, 4)])
    with pytest.raises(TypeInferenceError, match=r"cos must be \[3, 4\]"):
        Rope(head_dim=4).infer([t(1, 3, 8), t(1, 4), t(3, 4)])
    with pytest.raises(TypeInferenceError, match=r"sin must be \[3, 4\]"):
        Rope(head_dim=4).infer([t(1, 3, 8), t(3, 4), t(3, 8)])


def test_elementwise_norm_and_movement() -> None:
    assert Add().infer([t(1, 4, 1, 8), t(4, 7, 8)]) == t(1, 4, 7, 8)
    with pytest.raises(TypeInferenceError, match="do not broadcast"):
        Add().infer([t(3, 4), t(5, 4)])
    assert Gelu().infer([t(2, 3)]) == t(2, 3)
    assert Softmax(axis=-1).infer([t(2, 3)]) == t(2, 3)
    with pytest.raises(TypeInferenceError, match="axis"):
        Softmax(axis=2).infer([t(2, 3)])
    assert LayerNorm().infer([t(5, 8), t(8), t(8)]) == t(5, 8)
    with pytest.raises(TypeInferenceError, match="does not match"):
        RMSNorm().infer([t(5, 8), t(7)])
    assert Reshape(shape=(6,)).infer([t(2, 3)]) == t(6)
    with pytest.raises(TypeInferenceError, match="cannot reshape"):
        Reshape(shape=(5,)).infer([t(2, 3)])
    assert Transpose(perm=(1, 0)).infer([t(2, 3)]) == t(3, 2)
    assert Slice(axis=1, start=0, stop=1025).infer([t(4, 1032, 8)]) == t(4, 1025, 8)
    assert Pad(axis=2, after=7).infer([t(1, 4, 1025, 8)]) == t(1, 4, 1032, 8)
    assert Concat(axis=-1).infer([t(2, 3), t(2, 5)]) == t(2, 8)
    with pytest.raises(TypeInferenceError, match="does not concatenate"):
        Concat(axis=0).infer([t(2, 3), t(2, 5)])
    with pytest.raises(TypeInferenceError, match="at least one"):
        Concat(axis=0).infer([])
    assert Expand(shape=(2, 4, 1, 8)).infer([t(8)]) == t(2, 4, 1, 8)
    assert CacheAppend().infer([t(2, 7, 16), t(2, 3, 16)]) == t(2, 7 + 3, 16)
    with pytest.raises(TypeInferenceError, match="cache_append: .*batch, width and dtype"):
        CacheAppend().infer([t(2, 7, 16), t(1, 1, 16)])  # another batch
    with pytest.raises(TypeInferenceError, match="batch, width and dtype"):
        CacheAppend().infer([t(2, 7, 16), t(2, 1, 8)])  # another width
    with pytest.raises(TypeInferenceError, match="batch, width and dtype"):
        CacheAppend().infer([t(2, 7, 16), t(2, 1, 16, dt=FP32)])
    with pytest.raises(TypeInferenceError, match=r"needs \[B, C, D\] and \[B, T, D\]"):
        CacheAppend().infer([t(2, 7, 16), t(2, 16)])
    with pytest.raises(TypeInferenceError, match="takes 2 operand"):
        CacheAppend().infer([t(2, 7, 16)])
    assert Embedding().infer([t(3, dt=INT32), t(9, 16)]) == t(3, 16)
    with pytest.raises(TypeInferenceError, match="integers"):
        Embedding().infer([t(3), t(9, 16)])


def test_equal_ops_are_equal_values_but_nodes_stay_distinct() -> None:
    # Frozen ops compare by value; the graph keys nodes by name, so two equal ops never merge.
    from irperf.builder import Builder

    assert Gelu() == Gelu()
    b = Builder()
    x = b.input("x", (2, 3), BF16)
    b.add(Gelu(), x, name="a")
    b.add(Gelu(), x, name="b")
    assert len(b.graph) == 3
