"""Lowering of the Llama text decoder (Llama 3.2 Vision's, with gated cross-attention layers; a
text-only Llama's, without), per phase.

Scopes (a public contract): ``text.embed``, ``text.rope`` (the ``cos``/``sin`` table inputs
every self layer's RoPE reads), ``text.{j}`` with ``j`` the HF merged layer index
(blocks of kind ``text.self`` or ``text.cross``), ``text.norm``, ``text.lm_head``. Everything a
layer owns is under its scope, the K/V projection of a cross layer's vision tokens included
(stage ``cross_kv``); the stage says what an op does, the scope whose it is.

KV caches are tensors of the graph, listed by node name in ``graph.kv_cache`` (``tensors``):

- prefill: the post-RoPE K (``attn.rope_k``) and V (``attn.wv``) of every self layer over the
  ``S`` prompt tokens, and each cross layer's normed K (``attn.k_norm.merge``) and V
  (``attn.wv``) over the vision tokens: results of the graph.
- decode: sources ``text.{j}.attn.k_cache`` / ``v_cache`` ``[B, C, kv_heads*head_dim]`` (self
  layers; ``attn.k_append`` / ``attn.v_append``, ``CacheAppend`` ops listed in
  ``graph.kv_cache.appends``, write the new token's k/v into the cache in place, and
  attention reads all ``C + 1`` keys) and the cached
  cross K/V ``[B, vision tokens, kv_heads*head_dim]`` (HF caches the kv heads, not ``H``).

A phase that skips a computation keeps its parameters resident: a text-only prompt skips every
cross layer (as both reference implementations do) and decode never projects the vision K/V,
but their weights stay in the graph as unread sources: they count in params and weight memory,
never in FLOPs or bytes.
"""

from __future__ import annotations

from typing import Literal

from attrs import frozen

from irperf.builder import Builder, Value
from irperf.dtypes import INT32
from irperf.graph import Graph
from irperf.ops import (
    SDPA,
    Add,
    CacheAppend,
    Embedding,
    MatMul,
    Mul,
    Reshape,
    Rope,
    Silu,
    Slice,
    Weight,
)
from irperf.roles import Role
from irperf.types import TensorType
from lowering.common import Formats, copy_weights, linear, linear_weight, rmsnorm, tanh_gate
from lowering.config import TextConfig

Phase = Literal["prefill", "decode"]
Logits = Literal["last", "all"]

SELF_KIND = "text.self"
CROSS_KIND = "text.cross"


@frozen(kw_only=True)
class TextRun:
    """What one step of the decoder processes.

    ``tokens``: new tokens per sequence (``S`` in prefill, 1 in decode); ``context``: positions
    already cached before them (0 in prefill, ``C`` in decode); ``image_tokens``: vision tokens
    per sequence the cross layers attend to (0: a text-only prompt, cross layers skipped).
    """

    phase: Phase
    batch: int
    tokens: int
    context: int
    image_tokens: int
    logits: Logits = "last"

    @property
    def has_image(self) -> bool:
        return self.image_tokens > 0


@frozen
class RopeTables:
    """The RoPE ``cos`` and ``sin`` tables ``[tokens, head_dim]`` of this step's positions (``S``
    in prefill, the one new position in decode): graph inputs every self layer's q and k read."""

    cos: Value
    sin: Value


def _record(b: Builder, *values: Value) -> None:
    b.graph.kv_cache = b.graph.kv_cache.with_tensors(*(v.name for v in values))


def _per_head_rmsnorm(
    b: Builder, x: Value, heads: int, cfg: TextConfig, *, name: str, fmt: Formats
) -> Value:
    """RMSNorm(head_dim) on each head: ``[B, S, heads*hd]`` -> ``[B, S, heads, hd]`` and back."""
    batch, seq, width = x.shape
    with b.role(Role.NORM):
        y = b.add(Reshape(shape=(batch, seq, heads, cfg.head_dim)), x, name=f"{name}.split")
        y = rmsnorm(b, y, name=name, eps=cfg.rms_norm_eps, fmt=fmt)
        return b.add(Reshape(shape=(batch, seq, width)), y, name=f"{name}.merge")


def _attention_dims(cfg: TextConfig) -> tuple[int, int, int, int]:
    """Width, query heads, kv heads and head size."""
    return cfg.hidden_size, cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim


def _self_attention(
    b: Builder, x: Value, cfg: TextConfig, run: TextRun, rope: RopeTables, fmt: Formats
) -> Value:
    """Grouped-query causal attention with RoPE, reading (decode) or filling (prefill) the cache."""
    d, heads, kv, hd = _attention_dims(cfg)
    with b.scope("attn"):
        q = linear(b, x, d, heads * hd, name="wq", fmt=fmt, role=Role.Q)
        k = linear(b, x, d, kv * hd, name="wk", fmt=fmt, role=Role.K)
        v = linear(b, x, d, kv * hd, name="wv", fmt=fmt, role=Role.V)
        q = b.add(Rope(head_dim=hd), q, rope.cos, rope.sin, name="rope_q", role=Role.ROPE)
        k = b.add(Rope(head_dim=hd), k, rope.cos, rope.sin, name="rope_k", role=Role.ROPE)
        if run.phase == "prefill":
            _record(b, k, v)
            causal = True
        else:
            shape = (run.batch, run.context, kv * hd)
            with b.role(Role.KV_CACHE):
                k_cache = b.input("k_cache", shape, fmt.activations)
                v_cache = b.input("v_cache", shape, fmt.activations)
                _record(b, k_cache, v_cache)
                k = b.add(CacheAppend(), k_cache, k, name="k_append")
                v = b.add(CacheAppend(), v_cache, v, name="v_append")
            b.graph.kv_cache = b.graph.kv_cache.with_appends(k.name, v.name)
            causal = False  # one query attends every cached key and itself
        sdpa = SDPA(heads=heads, kv_heads=kv, head_dim=hd, causal=causal)
        a = b.add(sdpa, q, k, v, name="sdpa", role=Role.ATTENTION)
        return linear(b, a, heads * hd, d, name="wo", fmt=fmt, role=Role.O)


def _cross_attention(
    b: Builder, x: Value, vision: Value | None, cfg: TextConfig, run: TextRun, fmt: Formats
) -> Value:
    """Attention of the text queries (q_norm, no RoPE) over the vision tokens' K/V.

    Prefill projects the vision tokens with this layer's wk/wv and k_norm (stage ``cross_kv``)
    and caches the result; decode reads that cache, the projection weights resident but unread.
    """
    d, heads, kv, hd = _attention_dims(cfg)
    with b.scope("attn"):
        q = linear(b, x, d, heads * hd, name="wq", fmt=fmt, role=Role.CROSS_Q)
        q = _per_head_rmsnorm(b, q, heads, cfg, name="q_norm", fmt=fmt)
        if vision is not None:
            with b.stage("cross_kv"):
                k = linear(b, vision, d, kv * hd, name="wk", fmt=fmt, role=Role.CROSS_KV)
                v = linear(b, vision, d, kv * hd, name="wv", fmt=fmt, role=Role.CROSS_KV)
                k = _per_head_rmsnorm(b, k, kv, cfg, name="k_norm", fmt=fmt)
        else:
            with b.stage("cross_kv"):
                linear_weight(b, d, kv * hd, name="wk", fmt=fmt, role=Role.CROSS_KV)
                linear_weight(b, d, kv * hd, name="wv", fmt=fmt, role=Role.CROSS_KV)
                b.weight("k_norm.weight", (hd,), fmt.activations, role=Role.NORM)
            shape = (run.batch, run.image_tokens, kv * hd)
            k = b.input("k_cache", shape, fmt.activations, role=Role.KV_CACHE)
            v = b.input("v_cache", shape, fmt.activations, role=Role.KV_CACHE)
        _record(b, k, v)
        sdpa = SDPA(heads=heads, kv_heads=kv, head_dim=hd, causal=False)
        a = b.add(sdpa, q, k, v, name="sdpa", role=Role.ATTENTION)
        return linear(b, a, heads * hd, d, name="wo", fmt=fmt, role=Role.CROSS_O)


def _decoder_layer(
    b: Builder,
    x: Value,
    cfg: TextConfig,
    run: TextRun,
    fmt: Formats,
    *,
    cross: bool = False,
    rope: RopeTables | None = None,
    vision: Value | None = None,
    row_mask: Value | None = None,
) -> Value:
    """Pre-norm layer: ``x + [gate *] attn(attn_norm(x))``, ``h + [gate *] [mask *] ffn(...)``.

    A self layer needs the RoPE tables (``rope``); a cross layer has no RoPE.
    """
    eps = cfg.rms_norm_eps
    h = rmsnorm(b, x, name="attn_norm", eps=eps, fmt=fmt)
    if cross:
        a = _cross_attention(b, h, vision, cfg, run, fmt)
        a = tanh_gate(b, a, name="gate_attn", fmt=fmt)
    else:
        if rope is None:
            raise ValueError("a self-attention layer needs the RoPE tables")
        a = _self_attention(b, h, cfg, run, rope, fmt)
    x = b.add(Add(), x, a, name="attn_residual", role=Role.RESIDUAL)
    h = rmsnorm(b, x, name="ffn_norm", eps=eps, fmt=fmt)
    d, f = cfg.hidden_size, cfg.intermediate_size
    with b.scope("mlp"):
        g = linear(b, h, d, f, name="w1", fmt=fmt, role=Role.FF1)
        u = linear(b, h, d, f, name="w3", fmt=fmt, role=Role.FF3)
        g = b.add(Silu(), g, name="silu", role=Role.ACTIVATION)
        m = b.add(Mul(), g, u, name="mul", role=Role.ACTIVATION)
        m = linear(b, m, f, d, name="w2", fmt=fmt, role=Role.FF2)
        if row_mask is not None:
            # Text rows before the image attend nothing: HF zeroes their FFN output.
            m = b.add(Mul(), m, row_mask, name="row_mask", role=Role.MASK)
    if cross:
        m = tanh_gate(b, m, name="gate_ffn", fmt=fmt)
    return b.add(Add(), x, m, name="mlp_residual", role=Role.RESIDUAL)


def _skipped_cross_layer(b: Builder, j: int, cfg: TextConfig, run: TextRun, fmt: Formats) -> None:
    """A cross layer of a text-only prompt: no op runs, its weights stay resident."""
    scratch = Builder(Graph())
    seq = (run.batch, 1, cfg.hidden_size)
    act = fmt.activations
    with scratch.scope("text"), scratch.stage("text"), scratch.block(str(j), CROSS_KIND):
        x = scratch.input("x", seq, act)
        vision = scratch.input("vision", seq, act)
        mask = scratch.input("row_mask", (run.batch, 1, 1), act, role=Role.MASK)
        _decoder_layer(scratch, x, cfg, run, fmt, cross=True, vision=vision, row_mask=mask)
    copy_weights(scratch.graph, b.graph)


def lower_text_decoder(
    b: Builder, cfg: TextConfig, run: TextRun, *, vision: Value | None, fmt: Formats
) -> Value:
    """The decoder for one step; returns the logits ``[B, 1 or S, vocab]``.

    ``vision``: the projected vision tokens ``[B, image_tokens, D]`` in a prefill with an image
    (None otherwise: decode reads the cross K/V cache, a text-only prompt skips cross layers).
    """
    if run.phase == "prefill" and run.has_image and vision is None:
        raise ValueError("a prefill with an image needs the projected vision tokens")
    batch, seq, d = run.batch, run.tokens, cfg.hidden_size
    act = fmt.activations
    cross_layers = set(cfg.cross_attention_layers)
    with b.scope("text"), b.stage("text"):
        with b.scope("embed"):
            ids = b.input("token_ids", (batch, seq), INT32, role=Role.INPUT)
            table = b.weight("weight", (cfg.num_embeddings, d), act, role=Role.EMBED)
            x = b.add(Embedding(), ids, table, name="lookup", role=Role.EMBED)
        with b.scope("rope"), b.role(Role.INPUT):
            rope = RopeTables(
                cos=b.input("cos", (seq, cfg.head_dim), act),
                sin=b.input("sin", (seq, cfg.head_dim), act),
            )
        row_mask = (
            b.input("row_mask", (batch, seq, 1), act, role=Role.MASK) if run.has_image else None
        )
        for j in range(cfg.num_hidden_layers):
            if j not in cross_layers:
                with b.block(str(j), SELF_KIND):
                    x = _decoder_layer(b, x, cfg, run, fmt, rope=rope)
            elif run.has_image:
                with b.block(str(j), CROSS_KIND):
                    x = _decoder_layer(
                        b, x, cfg, run, fmt, cross=True, vision=vision, row_mask=row_mask
                    )
            else:
                _skipped_cross_layer(b, j, cfg, run, fmt)
        with b.stage("lm_head"):
            x = rmsnorm(b, x, name="norm", eps=cfg.rms_norm_eps, fmt=fmt)
            if run.logits == "last" and seq > 1:
                last = Slice(axis=1, start=seq - 1, stop=seq)
                x = b.add(last, x, name="lm_head.last_token", role=Role.LM_HEAD)
            if not cfg.tie_word_embeddings:
                return linear(b, x, d, cfg.vocab_size, name="lm_head", fmt=fmt, role=Role.LM_HEAD)
            # Tied (Llama 3.2 1B, 3B): the head shares the embedding table's parameters.
            with b.role(Role.LM_HEAD):
                tied = Weight(type=TensorType((d, cfg.vocab_size), fmt.weights), tied_to=table.name)
                w = b.add(tied, name="lm_head.weight")
                return b.add(MatMul(), x, w, name="lm_head")
