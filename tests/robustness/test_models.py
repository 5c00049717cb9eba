"""Random valid small models and requests through the API: the graph verifies, its FLOPs and
parameters equal formulas written here from the model's definition, and its roofline on any
shipped target is finite with aggregate <= per-op."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

import irperf
from lowering import ModelConfig, TextConfig, VisionConfig
from passes import FlopCount, ParamCount, RooflineTime, Traffic
from passes.roofline import aggregate_roofline_s, per_op_roofline_s
from targets import target_names
from tests.robustness.outcome import robust

HF_EMBEDDING_EXTRA_ROWS = 8  # HF's embed_tokens: vocab + 8 rows (image token, padding)


@st.composite
def models(draw: st.DrawFn) -> ModelConfig:
    patch = draw(st.sampled_from([2, 4, 7, 14]))
    v_heads, v_hd = draw(st.integers(1, 4)), draw(st.sampled_from([2, 4, 8]))
    v_layers = draw(st.integers(1, 3))
    saved = tuple(sorted(draw(st.sets(st.integers(0, v_layers - 1), max_size=v_layers))))
    w = v_heads * v_hd
    vision = VisionConfig(
        image_size=patch * draw(st.integers(1, 4)),
        patch_size=patch,
        hidden_size=w,
        intermediate_size=draw(st.integers(1, 64)),
        num_hidden_layers=v_layers,
        num_global_layers=draw(st.integers(1, 2)),
        attention_heads=v_heads,
        max_num_tiles=draw(st.integers(1, 4)),
        intermediate_layers_indices=saved,
        num_aspect_ratios=draw(st.integers(1, 8)),
        vision_output_dim=w * (1 + len(saved)),
    )
    kv, group, hd = (
        draw(st.integers(1, 4)),
        draw(st.integers(1, 3)),
        draw(st.sampled_from([2, 4, 8, 16])),
    )
    layers = draw(st.integers(1, 6))
    cross = tuple(sorted(draw(st.sets(st.integers(0, layers - 1), max_size=layers))))
    text = TextConfig(
        hidden_size=kv * group * hd,
        num_hidden_layers=layers,
        num_attention_heads=kv * group,
        num_key_value_heads=kv,
        head_dim=hd,
        intermediate_size=draw(st.integers(1, 64)),
        vocab_size=draw(st.integers(1, 300)),
        cross_attention_layers=cross,
        max_position_embeddings=4096,
    )
    return ModelConfig(name="random-small", vision=vision, text=text)


@st.composite
def requests(
    draw: st.DrawFn, cfg: ModelConfig, parts: tuple[str, ...] = ("vision", "text", "full")
) -> dict[str, Any]:
    """A request for ``cfg``; hypothesis shrinks toward the first of ``parts``."""
    part = draw(st.sampled_from(parts))
    r: dict[str, Any] = {"part": part, "batch": draw(st.integers(1, 3))}
    if part == "vision":
        r["images"] = draw(st.integers(1, 2))
        return r
    r["phase"] = draw(st.sampled_from(["prefill", "decode"]))
    r["image"] = draw(st.booleans())
    reads_image = cfg.text.num_cross_layers > 0 or (part == "full" and r["phase"] == "prefill")
    if r["image"] and reads_image:  # images mean nothing to a decoder without cross layers
        r["images"] = draw(st.integers(1, 2))
    if r["phase"] == "prefill":
        r["seq_len"] = draw(st.integers(1, 16))
        r["logits"] = draw(st.sampled_from(["last", "all"]))
    else:
        r["context"] = draw(st.integers(1, 16))
    return r


# ---- the formulas (matmul-only FLOPs: matmuls, the patch convolution and attention) ---------


def vision_tokens(v: VisionConfig) -> tuple[int, int, int]:
    """(patches per tile, padded tokens per tile, unpadded tokens of an image)."""
    patches = (v.image_size // v.patch_size) ** 2
    tokens = patches + 1  # the class token
    padded = tokens + (8 - tokens % 8) % 8  # HF pads each tile to a multiple of 8
    return patches, padded, v.max_num_tiles * tokens


def vision_flops(cfg: ModelConfig, n: int) -> int:
    """The encoder over ``n`` images and the projector."""
    v, d = cfg.vision, cfg.text.hidden_size
    patches, padded, unpadded = vision_tokens(v)
    w, t = v.hidden_size, v.max_num_tiles * padded
    conv = 2 * n * v.max_num_tiles * patches * (v.num_channels * v.patch_size**2) * w
    layer = 4 * 2 * n * t * w * w + 2 * 2 * n * t * t * w + 2 * 2 * n * t * w * v.intermediate_size
    projector = 2 * n * unpadded * v.vision_output_dim * d
    return conv + (v.num_hidden_layers + v.num_global_layers) * layer + projector


def text_dims(t: TextConfig) -> tuple[int, int, int, int, int]:
    """Width, query heads, KV heads, head dimension, FFN width."""
    return (
        t.hidden_size,
        t.num_attention_heads,
        t.num_key_value_heads,
        t.head_dim,
        t.intermediate_size,
    )


def text_flops(cfg: ModelConfig, r: dict[str, Any]) -> int:
    t = cfg.text
    d, h, kv, hd, f = text_dims(t)
    b = r["batch"]
    image = vision_tokens(cfg.vision)[2] * r.get("images", 1) if r["image"] else 0
    prefill = r["phase"] == "prefill"
    s = r["seq_len"] if prefill else 1
    seen = s if prefill else r["context"] + 1  # positions a query attends over
    proj = 2 * s * d * h * hd + 2 * s * h * hd * d + 3 * 2 * s * d * f  # wq, wo, the MLP
    self_layer = proj + 2 * 2 * s * d * kv * hd + 2 * 2 * s * seen * h * hd
    cross_kv = 2 * 2 * image * d * kv * hd if prefill else 0  # decode reads the cached K/V
    cross_layer = proj + cross_kv + 2 * 2 * s * image * h * hd if image else 0
    logits = s if prefill and r["logits"] == "all" else 1
    lm_head = 2 * logits * d * t.vocab_size
    return b * (t.num_self_layers * self_layer + t.num_cross_layers * cross_layer + lm_head)


def expected_flops(cfg: ModelConfig, r: dict[str, Any]) -> int:
    n = r["batch"] * r.get("images", 1)
    if r["part"] == "vision":
        return vision_flops(cfg, n)
    text = text_flops(cfg, r)
    runs_vision = r["part"] == "full" and r["phase"] == "prefill" and r["image"]
    return text + (vision_flops(cfg, n) if runs_vision else 0)


def vision_params(cfg: ModelConfig) -> int:
    v, d = cfg.vision, cfg.text.hidden_size
    patches = (v.image_size // v.patch_size) ** 2
    w, i, tiles, rows = v.hidden_size, v.intermediate_size, v.max_num_tiles, v.num_aspect_ratios + 1
    conv, cls = v.num_channels * v.patch_size**2 * w, w
    tile_embeddings = 2 * (rows * tiles * w + 1)  # pre- and post-, each with a gate
    positions = (patches + 1) * w + 1 + rows * tiles * (patches + 1) * w
    norms = 2 * 2 * w  # ln_pre, ln_post: weight and bias
    layer = 4 * w * w + 2 * 2 * w + (w * i + i) + (i * w + w)
    encoder = v.num_hidden_layers * layer + v.num_global_layers * (layer + 2)  # 2 gates
    projector = v.vision_output_dim * d + d
    return conv + cls + tile_embeddings + positions + norms + encoder + projector


def text_params(cfg: ModelConfig) -> int:
    t = cfg.text
    d, h, kv, hd, f = text_dims(t)
    self_layer = d * h * hd + 2 * d * kv * hd + h * hd * d + 3 * d * f + 2 * d
    cross_layer = self_layer + 2 * hd + 2  # q/k norms and two gates
    embed = (t.vocab_size + HF_EMBEDDING_EXTRA_ROWS) * d
    layers = t.num_self_layers * self_layer + t.num_cross_layers * cross_layer
    return embed + layers + d + t.vocab_size * d  # final norm, lm_head


def expected_params(cfg: ModelConfig, part: str) -> int:
    if part == "vision":
        return vision_params(cfg)
    return text_params(cfg) + (vision_params(cfg) if part == "full" else 0)


@robust
@given(cfg=models(), data=st.data(), target=st.sampled_from(target_names()))
def test_random_small_models(cfg: ModelConfig, data: st.DataObject, target: str) -> None:
    r = data.draw(requests(cfg), label="request")
    g = irperf.lower(cfg, **r)
    irperf.verify(g)
    g = irperf.run(g, irperf.analysis_pipeline(target))
    flops = sum(x.flops for x in g.records(FlopCount).values())
    assert flops == expected_flops(cfg, r)
    assert sum(x.params for x in g.records(ParamCount).values()) == expected_params(cfg, r["part"])
    traffic = g.records(Traffic).values()
    assert all(x.bytes_read >= 0 and x.bytes_written >= 0 for x in traffic)
    times = list(g.records(RooflineTime).values())
    agg, per_op = aggregate_roofline_s(times), per_op_roofline_s(times)
    assert math.isfinite(agg) and math.isfinite(per_op) and 0 < agg <= per_op * (1 + 1e-9)
