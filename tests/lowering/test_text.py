"""The text decoder graph: layers, caches and costs per phase, expected values by formula.

Notation as in the reference: D width, H heads, 8 kv heads of 128, F FFN width, S prompt tokens,
C cached positions, V = 4n vision tokens per image (6404 at 560 px, 4100 at 448 px).
"""

from __future__ import annotations

from collections import defaultdict

import pytest

import irperf
from irperf.errors import ConfigError
from irperf.graph import Graph
from irperf.ops import SDPA, CacheAppend, Input, Reshape, RMSNorm, Rope, Weight
from lowering.config import ModelConfig, TextConfig
from lowering.presets import PRESETS
from passes.bytes import Traffic, count_bytes
from passes.flops import count_flops
from passes.memory import memory_footprint
from passes.params import count_params

INSTRUCT = "llama-3.2-11b-vision-instruct"  # 560 px tiles
BASE = "llama-3.2-11b-vision"  # 448 px tiles
B90 = "llama-3.2-90b-vision"
HD, KV = 128, 8
VOCAB, EMBED_ROWS = 128256, 128264
SHAPES = {  # D, H, F, vision tokens per image
    INSTRUCT: (4096, 32, 14336, 4 * 1601),
    BASE: (4096, 32, 14336, 4 * 1025),
    B90: (8192, 64, 28672, 4 * 1601),
}
CROSS = {INSTRUCT: range(3, 40, 5), BASE: range(3, 40, 5), B90: range(3, 100, 5)}

SELF_OPS = (
    "attn_norm",
    "attn.wq",
    "attn.wk",
    "attn.wv",
    "attn.rope_q",
    "attn.rope_k",
    "attn.sdpa",
    "attn.wo",
    "attn_residual",
    "ffn_norm",
    "mlp.w1",
    "mlp.w3",
    "mlp.silu",
    "mlp.mul",
    "mlp.w2",
    "mlp_residual",
)
CROSS_OPS = (
    "attn_norm",
    "attn.wq",
    "attn.q_norm",
    "attn.wk",
    "attn.wv",
    "attn.k_norm",
    "attn.sdpa",
    "attn.wo",
    "gate_attn.mul",
    "attn_residual",
    "ffn_norm",
    "mlp.w1",
    "mlp.w3",
    "mlp.silu",
    "mlp.mul",
    "mlp.w2",
    "mlp.row_mask",
    "gate_ffn.mul",
    "mlp_residual",
)


def self_block_params(d: int, h: int, f: int) -> int:
    return 2 * d * h * HD + 2 * d * KV * HD + 3 * d * f + 2 * d


def self_layer_flops(model: str, s: int, batch: int = 1) -> int:
    """One self-attention layer over S prompt tokens, matmul-only (dense causal attention)."""
    d, h, f, _ = SHAPES[model]
    per_seq = (
        2 * s * d * h * HD  # wq
        + 2 * 2 * s * d * KV * HD  # wk, wv
        + 2 * 2 * s * s * h * HD  # q k^T, scores v
        + 2 * s * h * HD * d  # wo
        + 3 * 2 * s * d * f  # w1, w3, w2
    )
    return batch * per_seq


def cross_layer_flops(model: str, s: int, batch: int = 1, images: int = 1) -> int:
    """One cross-attention layer, its K/V projection of the vision tokens included."""
    d, h, f, v = SHAPES[model]
    v *= images
    per_seq = (
        2 * s * d * h * HD  # wq
        + 2 * 2 * v * d * KV * HD  # wk, wv over the vision tokens
        + 2 * 2 * s * v * h * HD  # q k^T, scores v
        + 2 * s * h * HD * d  # wo
        + 3 * 2 * s * d * f
    )
    return batch * per_seq


def by_block(graph: Graph, records: dict[str, int]) -> dict[str | None, int]:
    out: dict[str | None, int] = defaultdict(int)
    for n in graph:
        out[n.block] += records[n.name]
    return out


def block_flops(graph: Graph) -> dict[str | None, int]:
    return by_block(graph, {k: v.flops for k, v in count_flops(graph, "matmul-only").items()})


@pytest.fixture(scope="module")
def prefill() -> Graph:
    return irperf.lower(INSTRUCT, "text", seq_len=128)


def test_scopes_blocks_and_layer_names(prefill: Graph) -> None:
    blocks = {k: v for k, v in prefill.blocks.items() if k.startswith("text.")}
    assert list(blocks) == [f"text.{j}" for j in range(40)]
    assert [j for j in range(40) if blocks[f"text.{j}"] == "text.cross"] == list(range(3, 40, 5))
    assert sum(kind == "text.self" for kind in blocks.values()) == 32
    for j in (0, 39):
        for op in SELF_OPS:
            assert f"text.{j}.{op}" in prefill
    for op in CROSS_OPS:
        assert f"text.3.{op}" in prefill
    for name in ("text.embed.lookup", "text.embed.weight", "text.norm", "text.lm_head"):
        assert name in prefill
    assert prefill.node("text.embed.weight").type.shape == (EMBED_ROWS, 4096)
    assert prefill.node("text.lm_head.weight").type.shape == (4096, VOCAB)
    top = {n.name.split(".")[1] for n in prefill if n.name.startswith("text.")}
    assert top <= {"embed", "rope", "norm", "lm_head", "row_mask", "vision_tokens"} | {
        str(j) for j in range(40)
    }
    irperf.verify(prefill)


def test_90b_layers_and_block_params() -> None:
    g = irperf.lower(B90, "text", seq_len=16)
    kinds = {k: v for k, v in g.blocks.items() if k.startswith("text.")}
    assert len(kinds) == 100
    assert [j for j in range(100) if kinds[f"text.{j}"] == "text.cross"] == list(range(3, 100, 5))
    params = by_block(g, {k: v.params for k, v in count_params(g).items()})
    d, h, f, _ = SHAPES[B90]
    assert self_block_params(d, h, f) == 855_654_400
    assert params["text.0"] == 855_654_400
    assert params["text.3"] == 855_654_400 + 258


def test_block_params_11b(prefill: Graph) -> None:
    params = by_block(prefill, {k: v.params for k, v in count_params(prefill).items()})
    d, h, f, _ = SHAPES[INSTRUCT]
    assert self_block_params(d, h, f) == 218_112_000
    for j in range(40):
        extra = 258 if j in CROSS[INSTRUCT] else 0  # q_norm 128, k_norm 128, two gates
        assert params[f"text.{j}"] == 218_112_000 + extra


def test_self_layer_structure(prefill: Graph) -> None:
    sdpa = prefill.node("text.0.attn.sdpa")
    assert isinstance(sdpa.op, SDPA)
    assert (sdpa.op.heads, sdpa.op.kv_heads, sdpa.op.head_dim, sdpa.op.causal) == (32, 8, 128, True)
    assert sdpa.operands == ("text.0.attn.rope_q", "text.0.attn.rope_k", "text.0.attn.wv")
    assert isinstance(prefill.node("text.0.attn.rope_k").op, Rope)
    assert prefill.node("text.0.attn.wk").type.shape == (1, 128, KV * HD)
    assert prefill.node("text.0.mlp.w1").type.shape == (1, 128, 14336)
    assert prefill.node("text.0.mlp.mul").operands == ("text.0.mlp.silu", "text.0.mlp.w3")


@pytest.mark.parametrize(("phase", "tokens"), [("prefill", 64), ("decode", 1)])
def test_rope_reads_one_pair_of_position_tables(phase: str, tokens: int) -> None:
    """``text.rope.cos``/``sin`` ``[tokens, head_dim]`` (this step's positions: S in prefill, the
    new one in decode), inputs every self layer's rope_q and rope_k read; 3 FLOPs per element
    of x; full-convention bytes: x and both tables in, x out."""
    batch, e = 2, 2
    opts = {"seq_len": tokens} if phase == "prefill" else {"phase": phase}
    g = irperf.lower(INSTRUCT, "text", batch=batch, image=False, **opts)
    tables = ("text.rope.cos", "text.rope.sin")
    for name in tables:
        node = g.node(name)
        assert isinstance(node.op, Input) and node.type.shape == (tokens, HD), name
    ropes = {f"text.{j}.attn.rope_{x}" for j in range(40) if j not in CROSS[INSTRUCT] for x in "qk"}
    assert len(ropes) == 2 * 32
    for name in ropes:
        assert g.node(name).operands[1:] == tables
    assert all(set(g.users(t)) == ropes for t in tables)
    traffic, flops = count_bytes(g, "full"), count_flops(g, "full")
    for x, heads in (("q", 32), ("k", KV)):
        act = batch * tokens * heads * HD * e
        assert traffic[f"text.0.attn.rope_{x}"] == Traffic(
            bytes_read=act + 2 * tokens * HD * e, bytes_written=act
        )
        assert flops[f"text.0.attn.rope_{x}"].flops == 3 * batch * tokens * heads * HD


def test_cross_layer_structure(prefill: Graph) -> None:
    v = SHAPES[INSTRUCT][3]
    q_norm = prefill.node("text.3.attn.q_norm")
    assert isinstance(q_norm.op, RMSNorm) and q_norm.type.shape == (1, 128, 32, HD)
    assert prefill.node("text.3.attn.q_norm.weight").type.shape == (HD,)
    k_norm = prefill.node("text.3.attn.k_norm")
    assert isinstance(k_norm.op, RMSNorm) and k_norm.type.shape == (1, v, KV, HD)
    assert prefill.node("text.3.attn.wk").operands == (
        "text.vision_tokens",
        "text.3.attn.wk.weight",
    )
    sdpa = prefill.node("text.3.attn.sdpa")
    assert isinstance(sdpa.op, SDPA) and not sdpa.op.causal
    assert sdpa.operands == (
        "text.3.attn.q_norm.merge",
        "text.3.attn.k_norm.merge",
        "text.3.attn.wv",
    )
    mask = prefill.node("text.3.mlp.row_mask")
    assert prefill.node(mask.operands[1]).type.shape == (1, 128, 1)
    # The K/V projection is scoped under its layer, staged apart.
    stages = {n.name: n.stage for n in prefill.scope("text.3")}
    kv = {n for n, s in stages.items() if s == "cross_kv"}
    assert kv == {
        f"text.3.attn.{x}"
        for x in (
            "wk",
            "wk.weight",
            "wv",
            "wv.weight",
            "k_norm.split",
            "k_norm",
            "k_norm.weight",
            "k_norm.merge",
        )
    }
    assert all(s == "text" for n, s in stages.items() if n not in kv)


@pytest.mark.parametrize("s", [128, 2048])
@pytest.mark.parametrize("model", [INSTRUCT, BASE])
def test_layer_flops_prefill(model: str, s: int) -> None:
    g = irperf.lower(model, "text", seq_len=s)
    f = block_flops(g)
    assert f["text.0"] == self_layer_flops(model, s)
    assert f["text.3"] == cross_layer_flops(model, s)
    d, _, _, v = SHAPES[model]
    kv = count_flops(g, "matmul-only")
    assert kv["text.3.attn.wk"].flops + kv["text.3.attn.wv"].flops == 2 * 2 * v * d * KV * HD
    assert kv["text.lm_head"].flops == 2 * d * VOCAB  # the last token only


def test_layer_flops_90b_batched() -> None:
    g = irperf.lower(B90, "text", seq_len=128, batch=2, images=2)
    f = block_flops(g)
    assert f["text.1"] == self_layer_flops(B90, 128, batch=2)
    assert f["text.98"] == cross_layer_flops(B90, 128, batch=2, images=2)


@pytest.mark.parametrize("c", [128, 2048])
def test_decode_layers_read_the_caches(c: int) -> None:
    batch = 2
    g = irperf.lower(INSTRUCT, "text", phase="decode", context=c, batch=batch)
    d, h, f, v = SHAPES[INSTRUCT]
    flops = block_flops(g)
    assert flops["text.0"] == batch * (
        2 * d * h * HD + 2 * 2 * d * KV * HD + 2 * 2 * (c + 1) * h * HD + 2 * h * HD * d + 6 * d * f
    )
    # No K/V projection of the vision tokens in decode: q, attention over V keys, wo, FFN.
    assert flops["text.3"] == batch * (
        2 * d * h * HD + 2 * 2 * v * h * HD + 2 * h * HD * d + 6 * d * f
    )
    k_cache = g.node("text.0.attn.k_cache")
    assert isinstance(k_cache.op, Input) and k_cache.type.shape == (batch, c, KV * HD)
    append = g.node("text.0.attn.k_append")
    assert isinstance(append.op, CacheAppend) and append.type.shape == (batch, c + 1, KV * HD)
    assert append.operands == ("text.0.attn.k_cache", "text.0.attn.rope_k")
    sdpa = g.node("text.0.attn.sdpa")
    assert isinstance(sdpa.op, SDPA) and not sdpa.op.causal
    traffic: Traffic = count_bytes(g, "matmul-only")["text.0.attn.sdpa"]
    q_bytes = batch * h * HD * 2
    assert traffic.bytes_read == q_bytes + 2 * batch * (c + 1) * KV * HD * 2
    cross_cache = g.node("text.3.attn.k_cache")
    assert isinstance(cross_cache.op, Input) and cross_cache.type.shape == (batch, v, KV * HD)
    assert count_bytes(g, "matmul-only")["text.3.attn.sdpa"].bytes_read == (
        q_bytes + 2 * batch * v * KV * HD * 2
    )
    # The projection weights stay resident, unread.
    w = g.node("text.3.attn.wk.weight")
    assert isinstance(w.op, Weight) and not g.users(w.name)
    irperf.verify(g)


@pytest.mark.parametrize("c", [128, 4096])
def test_decode_appends_write_the_new_row_in_place(c: int) -> None:
    """Full-convention DRAM traffic of a decode self layer, op by op.

    The appends write the new token's K and V into the caches in place: one row in, one row out
    each (a copying concat would read C + 1 rows and write C + 1 rows). Attention then reads the
    C + 1 cached rows of K and of V once.
    """
    batch, e = 4, 2
    d, h, f, _ = SHAPES[INSTRUCT]
    g = irperf.lower(INSTRUCT, "text", phase="decode", context=c, batch=batch)
    assert g.kv_cache.appends[:2] == ("text.0.attn.k_append", "text.0.attn.v_append")
    traffic = count_bytes(g, "full")
    row = batch * 1 * KV * HD * e  # one position of K (or V) per sequence
    for name in ("k_append", "v_append"):
        assert traffic[f"text.0.attn.{name}"] == Traffic(bytes_read=row, bytes_written=row)
    x, q, ff = batch * d * e, batch * h * HD * e, batch * f * e  # one token's activations
    table = 1 * HD * e  # RoPE's cos (or sin) at the one new position, shared by the batch
    sdpa = Traffic(bytes_read=q + 2 * (c + 1) * row, bytes_written=q)
    assert traffic["text.0.attn.sdpa"] == sdpa
    expected = (
        self_block_params(d, h, f) * e  # every weight read once
        + 2 * (x + x)  # attn_norm, ffn_norm
        + (x + q + 2 * (x + row))  # wq, wk, wv
        + (2 * q + 2 * row)
        + 2 * 2 * table  # rope_q, rope_k: x in and out, cos and sin in
        + 2 * (row + row)  # k_append, v_append
        + sdpa.bytes
        + (q + x)  # wo
        + 2 * 3 * x  # attn_residual, mlp_residual
        + 2 * (x + ff)  # w1, w3
        + (2 * ff + 3 * ff)  # silu, mul
        + (ff + x)  # w2
    )
    assert sum(traffic[n.name].bytes for n in g.scope("text.0")) == expected


def test_kv_cache_tensors_and_bytes() -> None:
    s, c, batch = 100, 1000, 3
    v = SHAPES[INSTRUCT][3]
    pre = irperf.lower(INSTRUCT, "full", seq_len=s, batch=batch)
    assert len(pre.kv_cache.tensors) == 2 * 40
    assert "text.0.attn.rope_k" in pre.kv_cache.tensors
    assert "text.3.attn.k_norm.merge" in pre.kv_cache.tensors
    per_token = KV * HD * 2  # bytes of one position's K (or V), bf16
    self_kv = 32 * 2 * batch * s * per_token
    cross_kv = 8 * 2 * batch * v * per_token
    assert memory_footprint(pre).kv_cache_bytes == self_kv + cross_kv

    dec = irperf.lower(INSTRUCT, "full", phase="decode", context=c, batch=batch)
    names = dec.kv_cache.tensors
    assert len(names) == 2 * 40 and all(isinstance(dec.node(n).op, Input) for n in names)
    assert sum(dec.node(n).type.nbytes for n in names) == (
        32 * 2 * batch * c * per_token + cross_kv
    )
    # After the step the self caches hold C + 1 positions.
    assert memory_footprint(dec).kv_cache_bytes == 32 * 2 * batch * (c + 1) * per_token + cross_kv

    text_only = irperf.lower(INSTRUCT, "text", seq_len=s, batch=batch, image=False)
    assert memory_footprint(text_only).kv_cache_bytes == self_kv


def test_logits_last_or_all() -> None:
    s, batch = 64, 2
    d = SHAPES[INSTRUCT][0]
    last = irperf.lower(INSTRUCT, "text", seq_len=s, batch=batch)
    every = irperf.lower(INSTRUCT, "text", seq_len=s, batch=batch, logits="all")
    assert last.node("text.lm_head").type.shape == (batch, 1, VOCAB)
    assert every.node("text.lm_head").type.shape == (batch, s, VOCAB)
    assert count_flops(last)["text.lm_head"].flops == batch * 2 * d * VOCAB
    assert count_flops(every)["text.lm_head"].flops == batch * 2 * s * d * VOCAB
    assert "text.lm_head.last_token" not in every
    dec = irperf.lower(INSTRUCT, "text", phase="decode", logits="last")
    assert dec.node("text.lm_head").type.shape == (1, 1, VOCAB)
    with pytest.raises(ConfigError, match="logits 'all' applies to prefill"):
        irperf.lower(INSTRUCT, "text", phase="decode", logits="all")


LLAMA_31_8B_SHAPED = ModelConfig(
    name="llama-3.1-8b-shaped",
    vision=PRESETS[INSTRUCT].vision,
    text=TextConfig(
        hidden_size=4096,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=8,
        intermediate_size=14336,
        cross_attention_layers=(),
    ),
)


@pytest.mark.parametrize("phase", ["prefill", "decode"])
@pytest.mark.parametrize("convention", ["matmul-only", "full"])
def test_text_only_equals_the_32_self_layers(phase: str, convention: str) -> None:
    length = {"seq_len": 256} if phase == "prefill" else {"context": 512}
    opts = {"phase": phase, "batch": 2, "image": False, **length}
    g11 = irperf.lower(INSTRUCT, "text", **opts)
    g8 = irperf.lower(LLAMA_31_8B_SHAPED, "text", **opts)
    f11, f8 = count_flops(g11, convention), count_flops(g8, convention)
    b11, b8 = count_bytes(g11, convention), count_bytes(g8, convention)
    assert sum(f11.values(), f11["text.norm"].zero()) == sum(f8.values(), f8["text.norm"].zero())
    assert sum(x.bytes for x in b11.values()) == sum(x.bytes for x in b8.values())
    # The skipped cross layers run nothing; their weights stay resident.
    for j in CROSS[INSTRUCT]:
        assert all(isinstance(n.op, Weight) for n in g11.scope(f"text.{j}"))
    d, h, f, _ = SHAPES[INSTRUCT]
    p11 = sum(p.params for p in count_params(g11).values())
    p8 = sum(p.params for p in count_params(g8).values())
    assert p11 - p8 == 8 * (self_block_params(d, h, f) + 258)
    assert memory_footprint(g11).kv_cache_bytes == memory_footprint(g8).kv_cache_bytes


def test_reshape_views_of_per_head_norms(prefill: Graph) -> None:
    for name in ("text.3.attn.q_norm.split", "text.3.attn.k_norm.merge"):
        assert isinstance(prefill.node(name).op, Reshape)
