"""The memory pass: weights, KV cache and peak live activations, worked out by hand."""

from __future__ import annotations

import irperf
from irperf.builder import Builder
from irperf.dtypes import BF16
from irperf.graph import Graph, KVCache
from irperf.ops import CacheAppend, MatMul, Mul, Reshape, Silu
from passes.memory import MemoryFootprint, MemoryUse, memory_footprint, memory_uses, peak_node

INSTRUCT = "llama-3.2-11b-vision-instruct"
D, F, VOCAB = 4096, 14336, 128256


def tiny() -> Graph:
    """x[4,8] @ w[8,16] -> h, viewed as v[64]; g = silu(v); y = g * v; out = y viewed [4,16]."""
    b = Builder()
    x = b.input("x", (4, 8), BF16)  # 64 B
    w = b.weight("w", (8, 16), BF16)  # 256 B
    h = b.add(MatMul(), x, w, name="h")  # 128 B
    v = b.add(Reshape(shape=(64,)), h, name="v")  # a view of h
    g = b.add(Silu(), v, name="g")  # 128 B
    y = b.add(Mul(), g, v, name="y")  # 128 B, reads h through the view
    b.add(Reshape(shape=(4, 16)), y, name="out")  # a view of y, the graph's output
    return b.graph


def test_tiny_graph_by_hand() -> None:
    uses = memory_uses(tiny())
    live = {name: u.live_activation_bytes for name, u in uses.items()}
    assert live == {
        "x": 64,
        "w": 64,  # x waits for h
        "h": 64 + 128,  # x is read by h: both live
        "v": 128,  # x freed; the view allocates nothing
        "g": 128 + 128,
        "y": 128 + 128 + 128,  # h (through v), g and y
        "out": 128,  # y stays live: the output
    }
    assert uses["v"].activation_bytes == 0 and uses["h"].activation_bytes == 128
    assert uses["w"] == MemoryUse(weight_bytes=256, live_activation_bytes=64)
    assert memory_footprint(tiny()) == MemoryFootprint(
        weights_bytes=256, kv_cache_bytes=0, activation_peak_bytes=384
    )
    assert peak_node(uses) == "y"


def test_cache_tensors_are_not_activations() -> None:
    g = tiny()
    g.kv_cache = KVCache(tensors=("v",))  # h's storage, through its view
    fp = memory_footprint(g)
    assert fp.kv_cache_bytes == 128
    assert fp.activation_peak_bytes == 128 + 128  # g and y at step y
    assert fp.total_bytes == 256 + 128 + 256


def test_appends_grow_the_cache_in_place() -> None:
    b = Builder()
    cache = b.input("cache", (1, 2, 8), BF16)  # 32 B
    new = b.input("new", (1, 1, 8), BF16)  # 16 B
    grown = b.add(CacheAppend(), cache, new, name="append")
    b.add(Silu(), grown, name="out")  # 48 B
    b.graph.kv_cache = KVCache(tensors=("cache",), appends=("append",))
    uses = memory_uses(b.graph)
    assert uses["append"].activation_bytes == 0 and uses["append"].kv_cache_bytes == 16
    assert memory_footprint(b.graph) == MemoryFootprint(
        weights_bytes=0, kv_cache_bytes=32 + 16, activation_peak_bytes=48
    )


def test_an_append_grows_any_storage_in_place() -> None:
    """The op, not the metadata, makes the append in place: appended to an activation, the
    activation grows by the new rows and lives as long as its last reader through the append."""
    b = Builder()
    buf = b.add(Silu(), b.input("x", (1, 2, 8), BF16), name="buf")  # 32 B
    new = b.input("new", (1, 1, 8), BF16)  # 16 B
    grown = b.add(CacheAppend(), buf, new, name="append")
    b.add(Silu(), grown, name="out")  # 48 B, the output
    uses = memory_uses(b.graph)
    live = {name: u.live_activation_bytes for name, u in uses.items()}
    assert live == {
        "x": 32,
        "buf": 32 + 32,
        "new": 32 + 16,  # x freed
        "append": 32 + 16 + 16,  # buf grown by the new row; new still read
        "out": (32 + 16) + 48,  # the grown buf, read by out, and out
    }
    assert uses["append"].activation_bytes == 16 and uses["append"].kv_cache_bytes == 0


def test_pass_records_and_footprint_agree() -> None:
    g = irperf.run(tiny(), "memory")
    records = g.records(MemoryUse)
    assert sum(records.values(), MemoryUse.zero()).live_activation_bytes == 384
    assert memory_footprint(g).activation_peak_bytes == 384


def test_text_prefill_peaks_in_the_ffn() -> None:
    """Text-only prefill: at mlp.silu / mlp.mul the residual x [S, D] and three [S, F] tensors
    (w3's u, silu's input or output, mul's result) are live, and RoPE's cos and sin [S, 128]
    (inputs every self layer reads, live until the last); caches are not activations."""
    s, batch = 128, 2
    g = irperf.lower(INSTRUCT, "text", seq_len=s, batch=batch, image=False)
    uses = memory_uses(g)
    peak = batch * s * (D + 3 * F) * 2 + 2 * s * 128 * 2
    assert max(u.live_activation_bytes for u in uses.values()) == peak
    assert uses["text.0.mlp.silu"].live_activation_bytes == peak
    self_block = 2 * D * 32 * 128 + 2 * D * 1024 + 3 * D * F + 2 * D
    text_params = 128264 * D + 32 * self_block + 8 * (self_block + 258) + D + VOCAB * D
    assert memory_footprint(g).weights_bytes == text_params * 2  # bf16, skipped layers resident


def test_logits_are_held_to_the_end() -> None:
    """With every position's logits, the peak is the final norm's output and the logits."""
    s, batch = 128, 2
    g = irperf.lower(INSTRUCT, "text", seq_len=s, batch=batch, image=False, logits="all")
    assert memory_footprint(g).activation_peak_bytes == batch * s * (D + VOCAB) * 2
    dec = irperf.lower(INSTRUCT, "text", phase="decode", batch=batch, image=False)
    assert memory_footprint(dec).activation_peak_bytes == batch * (D + VOCAB) * 2
