"""decompose-attention: SDPA becomes scores, scale, [mask], softmax, values; FLOPs unchanged."""

from __future__ import annotations

import math

import pytest

import irperf
from irperf import BF16, Builder, Graph
from irperf.errors import TypeInferenceError
from irperf.ops import (
    SDPA,
    Add,
    AttentionScores,
    AttentionValues,
    Constant,
    Expand,
    Input,
    MatMul,
    Mul,
    Softmax,
    Transpose,
)
from irperf.types import TensorType
from passes.bytes import count_bytes
from passes.decompose import decompose_attention
from passes.flops import count_flops

S, H, HD, D = 4128, 16, 80, 1280  # one 11B vision layer: tokens, heads, head_dim, width
LAYER = "vision.local.0"


@pytest.fixture(scope="module")
def vision() -> Graph:
    return irperf.lower("llama-3.2-11b-vision", part="vision")


@pytest.fixture(scope="module")
def decomposed(vision: Graph) -> Graph:
    return irperf.run(vision, "decompose-attention")


def _attention(
    *, heads: int, kv_heads: int, hd: int, sq: int, skv: int, causal: bool, kv_len: int | None
) -> Graph:
    b = Builder()
    q = b.input("q", (2, sq, heads * hd), BF16)
    k = b.input("k", (2, skv, kv_heads * hd), BF16)
    v = b.input("v", (2, skv, kv_heads * hd), BF16)
    op = SDPA(heads=heads, kv_heads=kv_heads, head_dim=hd, causal=causal, kv_len=kv_len)
    with b.block("layer", "layer"), b.stage("attention"):
        a = b.add(op, q, k, v, name="sdpa")
    w = b.weight("wo.weight", (heads * hd, 8), BF16)
    b.add(MatMul(), a, w, name="wo")
    return b.graph


def test_parts_names_types_and_users(decomposed: Graph) -> None:
    n = f"{LAYER}.attn.sdpa"
    scores = decomposed.node(f"{n}.scores")
    assert isinstance(scores.op, AttentionScores)
    assert scores.operands == (f"{LAYER}.attn.wq", f"{LAYER}.attn.wk")
    assert scores.type == TensorType((1, H, S, S), BF16)
    scale = decomposed.node(f"{n}.scale")
    assert isinstance(scale.op, Mul) and scale.operands == (f"{n}.scores", f"{n}.scale_factor")
    factor = decomposed.node(f"{n}.scale_factor").op
    assert isinstance(factor, Constant) and factor.value == pytest.approx(1 / math.sqrt(HD))
    assert f"{n}.mask" not in decomposed  # the vision encoder is not causal
    softmax = decomposed.node(f"{n}.softmax")
    assert isinstance(softmax.op, Softmax) and softmax.operands == (f"{n}.scale",)
    out = decomposed.node(n)  # the values matmul takes over the SDPA's name
    assert isinstance(out.op, AttentionValues)
    assert out.operands == (f"{n}.softmax", f"{LAYER}.attn.wv")
    assert out.type == TensorType((1, S, H * HD), BF16)
    assert decomposed.node(f"{LAYER}.attn.wo").operands[0] == n
    for part in ("scores", "scale", "scale_factor", "softmax"):
        node = decomposed.node(f"{n}.{part}")
        assert (node.stage, node.block) == (out.stage, out.block) == ("vision", LAYER)
    # Head packing and GQA are indexed, never copied.
    assert not any(isinstance(x.op, SDPA | Transpose | Expand) for x in decomposed.scope(n))
    assert len(decomposed) == len(irperf.lower("llama-3.2-11b-vision", part="vision")) + 40 * 4


@pytest.mark.parametrize("convention", ["full", "matmul-only"])
def test_flops_equal_the_fused_sdpa(vision: Graph, decomposed: Graph, convention: str) -> None:
    fused, parts = count_flops(vision, convention), count_flops(decomposed, convention)  # type: ignore[arg-type]
    assert sum(f.flops for f in fused.values()) == sum(f.flops for f in parts.values())
    assert sum(f.transcendentals for f in fused.values()) == sum(
        f.transcendentals for f in parts.values()
    )
    n = f"{LAYER}.attn.sdpa"
    layer = sum((parts[x.name] for x in decomposed.scope(n)), type(parts[n]).zero())
    matmuls = 2 * (2 * H * S * S * HD)  # q k^T and p v
    per_score = 1 + 4 if convention == "full" else 0  # scale, softmax
    assert layer.flops == matmuls + per_score * H * S * S
    assert layer.transcendentals == (H * S * S if convention == "full" else 0)


@pytest.mark.parametrize(
    ("heads", "kv_heads", "causal", "kv_len"),
    [(4, 2, True, None), (4, 1, False, 10), (6, 6, True, 9), (4, 4, False, None)],
)
def test_gqa_causal_kv_len(heads: int, kv_heads: int, causal: bool, kv_len: int | None) -> None:
    sq, skv, hd = 8, 12, 16
    g = _attention(
        heads=heads, kv_heads=kv_heads, hd=hd, sq=sq, skv=skv, causal=causal, kv_len=kv_len
    )
    d, changed = decompose_attention(g)
    assert changed
    irperf.verify(d)
    keys = kv_len or skv
    assert d.node("layer.sdpa.scores").type.shape == (2, heads, sq, keys)
    assert d.node("layer.sdpa").type == g.node("layer.sdpa").type
    assert ("layer.sdpa.mask" in d) == causal
    if causal:
        mask = d.node("layer.sdpa.causal_mask")
        assert isinstance(mask.op, Input) and mask.type.shape == (1, 1, sq, keys)
        assert isinstance(d.node("layer.sdpa.mask").op, Add)
    for convention in ("full", "matmul-only"):
        a, b = count_flops(g, convention), count_flops(d, convention)  # type: ignore[arg-type]
        assert sum(f.flops for f in a.values()) == sum(f.flops for f in b.values())
        assert sum(f.transcendentals for f in a.values()) == sum(
            f.transcendentals for f in b.values()
        )
    # Bytes: each part reads its operands (k, v only the attended rows) and writes its result.
    t = count_bytes(d, "full")
    score_bytes = 2 * heads * sq * keys * 2
    qb, kvb = 2 * sq * heads * hd * 2, 2 * keys * kv_heads * hd * 2
    assert t["layer.sdpa.scores"].bytes_read == qb + kvb
    assert t["layer.sdpa.scores"].bytes_written == score_bytes
    assert t["layer.sdpa"].bytes_read == score_bytes + kvb
    assert t["layer.sdpa"].bytes_written == qb


def test_pass_is_registered_and_idempotent(decomposed: Graph) -> None:
    assert "decompose-attention" in irperf.pass_names()
    result = irperf.get_pass("decompose-attention")().run(decomposed)
    assert result.modified is False and result.graph is decomposed


def test_part_ops_reject_mismatched_operands() -> None:
    q = TensorType((1, 8, 64), BF16)
    with pytest.raises(TypeInferenceError, match="k must be"):
        AttentionScores(heads=4, kv_heads=2, head_dim=16).infer([q, TensorType((1, 8, 64), BF16)])
    with pytest.raises(TypeInferenceError, match="do not divide"):
        AttentionScores(heads=4, kv_heads=3, head_dim=16).infer([q, q])
    v = TensorType((1, 8, 32), BF16)
    with pytest.raises(TypeInferenceError, match="p must be"):
        AttentionValues(heads=4, kv_heads=2, head_dim=16).infer([TensorType((1, 4, 8, 7), BF16), v])
