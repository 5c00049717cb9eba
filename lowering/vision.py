"""Lowering of the Llama 3.2 Vision encoder and projector, op by op as in HF's MllamaVisionModel.

Scopes (a public contract): ``vision.local.{i}``, ``vision.global.{i}``, ``projector``; the
embeddings and norms around the stacks are under ``vision``.
"""

from __future__ import annotations

from irperf.builder import Builder, Value
from irperf.dtypes import INT32, TILE
from irperf.ops import (
    SDPA,
    Add,
    Concat,
    Conv2d,
    Embedding,
    Expand,
    Gelu,
    Mul,
    Pad,
    Reshape,
    Slice,
    Sub,
    Tanh,
    Transpose,
)
from irperf.roles import Role
from lowering.common import Formats, layernorm, linear, tanh_gate
from lowering.config import TOKEN_PAD_MULTIPLE, VisionConfig


def _encoder_block(b: Builder, x: Value, cfg: VisionConfig, *, gated: bool, fmt: Formats) -> Value:
    """Pre-norm transformer block: ``x + [gate *] attn(ln_1(x))``, ``x + [gate *] mlp(ln_2(x))``."""
    w, heads = cfg.hidden_size, cfg.attention_heads
    eps = cfg.norm_eps
    h = layernorm(b, x, name="ln_1", eps=eps, fmt=fmt)
    with b.scope("attn"):
        q = linear(b, h, w, w, name="wq", fmt=fmt, role=Role.Q)
        k = linear(b, h, w, w, name="wk", fmt=fmt, role=Role.K)
        v = linear(b, h, w, w, name="wv", fmt=fmt, role=Role.V)
        sdpa = SDPA(heads=heads, kv_heads=heads, head_dim=cfg.head_dim, causal=False)
        a = b.add(sdpa, q, k, v, name="sdpa", role=Role.ATTENTION)
        a = linear(b, a, w, w, name="wo", fmt=fmt, role=Role.O)
    if gated:
        a = tanh_gate(b, a, name="gate_attn", fmt=fmt)
    x = b.add(Add(), x, a, name="attn_residual", role=Role.RESIDUAL)
    h = layernorm(b, x, name="ln_2", eps=eps, fmt=fmt)
    with b.scope("mlp"):
        m = linear(b, h, w, cfg.intermediate_size, name="fc1", fmt=fmt, role=Role.FC1, bias=True)
        m = b.add(Gelu(), m, name="gelu", role=Role.ACTIVATION)
        m = linear(b, m, cfg.intermediate_size, w, name="fc2", fmt=fmt, role=Role.FC2, bias=True)
    if gated:
        m = tanh_gate(b, m, name="gate_ffn", fmt=fmt)
    return b.add(Add(), x, m, name="mlp_residual", role=Role.RESIDUAL)


def _tile_embedding(
    b: Builder,
    x: Value,
    ar_ids: Value,
    rows: int,
    per_tile: int,
    cfg: VisionConfig,
    *,
    name: str,
    fmt: Formats,
) -> Value:
    """``x + tanh(gate) * table[aspect_ratio_id]`` (HF ``Embedding(aspect ratios + 1, ...)``)."""
    images, tiles = x.shape[0], cfg.max_num_tiles
    with b.scope(name):
        width = tiles * per_tile * cfg.hidden_size
        table = b.weight("embedding.weight", (rows, width), fmt.activations)
        e = b.add(Embedding(), ar_ids, table, name="lookup")
        shape = (images, tiles, per_tile, cfg.hidden_size)
        e = b.add(Reshape(shape=shape), e, name="reshape")
        e = tanh_gate(b, e, name="gate", fmt=fmt)
        return b.add(Add(), x, e, name="add")


LAYOUTS: tuple[str, ...] = ("hf", "meta")
"""Parameter layouts of the tile embeddings: HF precomputes one row per aspect ratio (ids 0..8);
Meta stores ``(max_tiles, max_tiles, ...)`` tables and slices them by the aspect ratio. Same
FLOPs and bytes per image, fewer parameters in Meta's."""


def tile_embedding_rows(cfg: VisionConfig, layout: str) -> int:
    """Rows of a tile-embedding table, each ``max_num_tiles * per_tile * width`` wide."""
    return cfg.num_aspect_ratios + 1 if layout == "hf" else cfg.max_num_tiles


VISION_ROWS: dict[str, int] = {"hf": TOKEN_PAD_MULTIPLE, "tile": TILE}
"""How a tile's tokens are padded inside the encoder: to HF's multiple of 8 (1601 -> 1608), or
to whole 32-row device tiles as tt-metal does (1601 -> 1632)."""


def lower_vision_encoder(
    b: Builder,
    cfg: VisionConfig,
    *,
    images: int,
    fmt: Formats,
    layout: str = "hf",
    token_rows: str = "hf",
) -> Value:
    """The encoder for ``images`` images of ``max_num_tiles`` tiles each.

    Returns ``[images, tiles * tokens_per_tile, vision_output_dim]``: the global stack's output
    and the saved intermediates, concatenated per token, padding dropped.
    """
    t, c, p, w = cfg.max_num_tiles, cfg.image_size, cfg.patch_size, cfg.hidden_size
    n, patches = cfg.tokens_per_tile, cfg.patches_per_tile
    padded = cfg.tokens_padded_to(VISION_ROWS[token_rows])
    rows = tile_embedding_rows(cfg, layout)
    # The conv kernel too: a block format would pad each 14x14 patch to a 32x32 tile.
    act = fmt.activations
    with b.scope("vision"):
        with b.role(Role.INPUT):
            pixels = b.input("pixel_values", (images * t, cfg.num_channels, c, c), act)
            ar_ids = b.input("aspect_ratio_ids", (images,), INT32)
        with b.scope("patch_embedding"), b.role(Role.EMBED):
            kernel = b.weight("weight", (w, cfg.num_channels, p, p), act)
            x = b.add(Conv2d(stride=p), pixels, kernel, name="conv")
            x = b.add(Reshape(shape=(images * t, w, patches)), x, name="flatten")
            x = b.add(Transpose(perm=(0, 2, 1)), x, name="transpose")
            x = b.add(Reshape(shape=(images, t, patches, w)), x, name="reshape")
        with b.role(Role.EMBED):
            x = _tile_embedding(
                b, x, ar_ids, rows, 1, cfg, name="pre_tile_positional_embedding", fmt=fmt
            )
        with b.scope("class_embedding"), b.role(Role.EMBED):
            cls = b.weight("weight", (w,), act)
            cls = b.add(Expand(shape=(images, t, 1, w)), cls, name="expand")
            x = b.add(Concat(axis=2), cls, x, name="concat")
        with b.scope("gated_positional_embedding"), b.role(Role.EMBED):
            pos = b.weight("embedding", (n, w), act)
            gate = b.weight("gate", (1,), act)
            tg = b.add(Tanh(), gate, name="gate.tanh")
            one = b.constant("one", 1.0, (1,), act)
            keep = b.add(Sub(), one, tg, name="one_minus_gate")
            pos = b.add(Mul(), pos, keep, name="scale")
            x = b.add(Add(), x, pos, name="add")
            table = b.weight("tile_embedding.weight", (rows, t * n * w), act)
            e = b.add(Embedding(), ar_ids, table, name="tile_embedding.lookup")
            e = b.add(Reshape(shape=(images, t, n, w)), e, name="tile_embedding.reshape")
            e = b.add(Mul(), e, tg, name="tile_embedding.scale")
            x = b.add(Add(), x, e, name="tile_embedding.add")
        x = layernorm(b, x, name="ln_pre", eps=cfg.norm_eps, fmt=fmt)
        x = b.add(Pad(axis=2, after=padded - n), x, name="pad")
        x = b.add(Reshape(shape=(images, t * padded, w)), x, name="flatten_tiles")

        saved: dict[int, Value] = {}
        for i in range(cfg.num_hidden_layers):
            if i in cfg.intermediate_layers_indices:
                saved[i] = x  # the residual stream entering block i
            with b.block(f"local.{i}", "vision.local"):
                x = _encoder_block(b, x, cfg, gated=False, fmt=fmt)
        x = layernorm(b, x, name="ln_post", eps=cfg.norm_eps, fmt=fmt)
        x = b.add(Reshape(shape=(images, t, padded, w)), x, name="unflatten_tiles")
        with b.role(Role.EMBED):
            x = _tile_embedding(
                b, x, ar_ids, rows, 1, cfg, name="post_tile_positional_embedding", fmt=fmt
            )
        x = b.add(Reshape(shape=(images, t * padded, w)), x, name="flatten_tiles_post")
        for i in range(cfg.num_global_layers):
            with b.block(f"global.{i}", "vision.global"):
                x = _encoder_block(b, x, cfg, gated=True, fmt=fmt)

        with b.scope("output"):
            parts = [x] + [saved[i] for i in cfg.intermediate_layers_indices]
            out = cfg.vision_output_dim
            y = b.add(Concat(axis=2), *parts, name="concat")
            y = b.add(Reshape(shape=(images, t, padded, out)), y, name="unflatten")
            y = b.add(Slice(axis=2, start=0, stop=n), y, name="unpad")
            return b.add(Reshape(shape=(images, t * n, out)), y, name="flatten")


def lower_projector(b: Builder, features: Value, text_width: int, *, fmt: Formats) -> Value:
    """``Linear(vision_output_dim, D)`` with bias on the unpadded vision tokens."""
    with b.scope("projector"):
        d_in = features.shape[-1]
        return linear(
            b, features, d_in, text_width, name="proj", fmt=fmt, role=Role.PROJECTOR, bias=True
        )
