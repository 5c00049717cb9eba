"""The whole model per part and phase: exact parameter totals, composition, options and errors."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

import irperf
from irperf.cli import main
from irperf.errors import ConfigError
from irperf.graph import Graph
from irperf.ops import Input, Weight
from passes.flops import count_flops
from passes.params import count_params

INSTRUCT = "llama-3.2-11b-vision-instruct"
BASE = "llama-3.2-11b-vision"
B90 = "llama-3.2-90b-vision"
W = 1280  # vision width
ASPECT_ROWS = 9  # HF tile-embedding tables: 8 aspect ratios + id 0


def vision_params(tile_px: int) -> int:
    """The HF vision model from the reference: embeddings, 32 local + 8 global blocks, norms."""
    n = (tile_px // 14) ** 2 + 1  # tokens per tile with CLS
    patch = 3 * 14 * 14 * W  # conv, no bias
    cls = W
    tile_embeddings = 2 * (ASPECT_ROWS * 4 * W + 1)  # pre- and post-, each with a gate
    gated_pos = n * W + 1 + ASPECT_ROWS * 4 * n * W  # embedding, gate, tile table
    norms = 2 * 2 * W  # ln_pre, ln_post
    local = 4 * W * W + 2 * 2 * W + (W * 5120 + 5120) + (5120 * W + W)
    return patch + cls + tile_embeddings + gated_pos + norms + 32 * local + 8 * (local + 2)


def text_params(d: int, h: int, f: int, self_layers: int, cross_layers: int) -> int:
    self_block = 2 * d * h * 128 + 2 * d * 1024 + 3 * d * f + 2 * d
    cross_block = self_block + 258
    embed, norm, lm_head = 128264 * d, d, 128256 * d
    return embed + self_layers * self_block + cross_layers * cross_block + norm + lm_head


def model_params(tile_px: int, d: int, h: int, f: int, self_layers: int, cross: int) -> int:
    projector = 7680 * d + d
    return vision_params(tile_px) + projector + text_params(d, h, f, self_layers, cross)


TOTALS = {
    INSTRUCT: model_params(560, 4096, 32, 14336, 32, 8),
    BASE: model_params(448, 4096, 32, 14336, 32, 8),
    B90: model_params(560, 8192, 64, 28672, 80, 20),
}


def params(graph: Graph) -> int:
    return sum(p.params for p in count_params(graph).values())


def flops(graph: Graph) -> int:
    return sum(f.flops for f in count_flops(graph, "matmul-only").values())


def test_vision_formula_matches_the_reference() -> None:
    assert vision_params(560) == 863_567_379
    assert vision_params(448) == 836_288_019


def test_published_11b_instruct_total() -> None:
    assert TOTALS[INSTRUCT] == 10_670_220_835
    assert params(irperf.lower(INSTRUCT, "full")) == 10_670_220_835


@pytest.mark.parametrize("model", [INSTRUCT, BASE, B90])
def test_parameter_totals_in_every_phase(model: str) -> None:
    """A graph keeps its part's parameters resident whatever the phase runs."""
    phases = (
        {"seq_len": 8},
        {"phase": "decode", "context": 8},
        {"seq_len": 8, "image": False},
        {"phase": "decode", "context": 8, "image": False},
    )
    for opts in phases:
        assert params(irperf.lower(model, "full", **opts)) == TOTALS[model]
    vision = params(irperf.lower(model, "vision"))
    assert params(irperf.lower(model, "text", seq_len=8)) == TOTALS[model] - vision


def test_full_prefill_is_vision_plus_text() -> None:
    full = irperf.lower(INSTRUCT, "full", seq_len=64, batch=2)
    vision = irperf.lower(INSTRUCT, "vision", batch=2)
    text = irperf.lower(INSTRUCT, "text", seq_len=64, batch=2)
    assert flops(full) == flops(vision) + flops(text)
    assert full.node("projector.proj.bias_add").type.shape == (2, 6404, 4096)
    assert full.node("text.3.attn.wk").operands[0] == "projector.proj.bias_add"
    assert text.node("text.vision_tokens").type.shape == (2, 6404, 4096)


def test_decode_runs_no_vision_and_no_cross_kv_projection() -> None:
    g = irperf.lower(INSTRUCT, "full", phase="decode")
    for n in g:
        if n.stage in ("vision", "projector", "cross_kv"):
            assert isinstance(n.op, Weight), n.name
    assert not any(isinstance(n.op, Input) and n.name.startswith("vision.") for n in g)
    assert g.meta["phase"] == "decode" and g.meta["context"] == 1024


def test_no_image_skips_the_vision_encoder() -> None:
    g = irperf.lower(INSTRUCT, "full", image=False, seq_len=32)
    text = irperf.lower(INSTRUCT, "text", image=False, seq_len=32)
    assert flops(g) == flops(text)
    assert all(isinstance(n.op, Weight) for n in g if n.stage in ("vision", "projector"))


def test_images_scale_the_cross_attention_tokens() -> None:
    g = irperf.lower(INSTRUCT, "full", images=2, seq_len=16)
    assert g.node("vision.pixel_values").type.shape[0] == 2 * 4
    assert g.node("text.3.attn.k_norm.merge").type.shape == (1, 2 * 6404, 1024)


def test_vision_part_keeps_its_api() -> None:
    g = irperf.lower(BASE, "vision")
    assert g.name == f"{BASE}:vision" and g.meta["part"] == "vision"
    assert g.kv_cache.tensors == ()
    assert not any(n.name.startswith("text.") for n in g)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"part": "vision", "phase": "decode"}, "decode"),
        ({"part": "vision", "image": False}, "image"),
        ({"seq_len": 0}, "seq_len"),
        ({"context": -1, "phase": "decode"}, "context"),
        ({"phase": "generate"}, "phase"),
        ({"part": "audio"}, "part"),
        ({"logits": "first"}, "logits"),
        ({"image": "yes"}, "image"),
        ({"batch": True}, "batch"),
        ({"seq_len": 200_000}, "max_position_embeddings"),
    ],
)
def test_bad_options_are_config_errors(kwargs: dict[str, Any], message: str) -> None:
    opts = {"part": "full", **kwargs}
    part = opts.pop("part")
    with pytest.raises(ConfigError, match=message):
        irperf.lower(INSTRUCT, part, **opts)


@pytest.mark.parametrize(
    "argv",
    [
        ["--part", "vision", "--phase", "decode"],
        ["--seq-len", "0"],
        ["--phase", "generate"],
        ["--logits", "first"],
        ["--context", "0", "--phase", "decode"],
        ["--part", "text", "--layout", "meta"],
        ["--dtype", "bfp8_b"],
        ["--weight-dtype", "int32"],
    ],
)
def test_cli_errors_are_one_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    assert main(["analyze", INSTRUCT, *argv]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("irperf: error: ") and err.count("\n") == 1


def analyze(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    assert main(["analyze", *argv, "--json"]) == 0
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    return report


def test_analyze_json_stages_and_memory(capsys: pytest.CaptureFixture[str]) -> None:
    r = analyze(capsys, INSTRUCT, "--seq-len", "256")
    assert (r["part"], r["phase"]) == ("full", "prefill")
    assert r["run"]["seq_len"] == 256 and r["run"]["image"] is True
    stages = [s["stage"] for s in r["stages"]]
    assert stages == ["vision", "projector", "cross_kv", "text", "lm_head"]
    for key in ("flops", "bytes", "params"):
        assert sum(s[key] for s in r["stages"]) == r["totals"][key]
    assert r["totals"]["params"] == 10_670_220_835
    cross_kv = {s["stage"]: s for s in r["stages"]}["cross_kv"]
    assert cross_kv["flops"] == 8 * 2 * 2 * 6404 * 4096 * 1024
    assert cross_kv["label"] == "cross-attention K/V"
    m = r["memory"]
    assert m["weights_bytes"] == 2 * 10_670_220_835
    assert m["kv_cache_bytes"] == (32 * 256 + 8 * 6404) * 2 * 1024 * 2
    assert m["activation_peak_bytes"] > 0
    assert {o["name"] for o in r["ops"]} >= {"text.0.attn.sdpa", "text.lm_head"}
    groups = {g["label"]: g for g in r["groups"]}
    assert groups["text.self"]["blocks"] == 32 and groups["text.cross"]["blocks"] == 8

    d = analyze(capsys, INSTRUCT, "--part", "text", "--phase", "decode", "--context", "4096")
    assert d["phase"] == "decode" and d["run"]["context"] == 4096
    assert d["memory"]["kv_cache_bytes"] == (32 * 4097 + 8 * 6404) * 2 * 1024 * 2
    assert {s["stage"]: s for s in d["stages"]}["cross_kv"]["flops"] == 0

    t = analyze(capsys, INSTRUCT, "--no-image", "--logits", "all", "--seq-len", "32")
    assert t["run"]["image"] is False
    ops = {o["name"]: o for o in t["ops"]}
    assert ops["text.lm_head"]["flops"] == 2 * 32 * 4096 * 128256


def test_analyze_table_has_stages_and_memory(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", B90, "--phase", "decode"]) == 0
    out = capsys.readouterr().out
    for label in ("text.self", "text.cross", "text layers", "lm_head", "memory: weights"):
        assert label in out
    assert main(["analyze", INSTRUCT]) == 0
    out = capsys.readouterr().out
    for label in ("vision encoder", "projector", "cross-attention K/V", "KV cache"):
        assert label in out


def test_90b_full_prefill_lowers_and_analyses_fast() -> None:
    """The budget is 1 s on a 2-core machine; allow slack for a loaded test runner."""
    t0 = time.perf_counter()
    g = irperf.run(
        irperf.lower(B90, "full"),
        "flops,bytes,params,roofline{target=n300-seed},memory",
    )
    assert time.perf_counter() - t0 < 3.0
    assert len(g.kv_cache.tensors) == 200


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        ({"part": "full", "context": 64}, "context means nothing in full prefill"),
        ({"part": "text", "phase": "decode", "seq_len": 64}, "seq_len means nothing"),
        ({"part": "full", "image": False, "images": 2}, "images means nothing without an image"),
        ({"part": "full", "image": False, "tiles": 2}, "tiles means nothing without an image"),
        ({"part": "vision", "seq_len": 64}, "seq_len means nothing with part 'vision'"),
        ({"part": "vision", "logits": "all"}, "logits means nothing with part 'vision'"),
        ({"part": "vision", "dtype": irperf.INT32}, "not a floating-point format"),
        ({"part": "text", "layout": "meta"}, "layout means nothing with part 'text'"),
        ({"part": "text", "layout": "hf"}, r"layout means nothing .*no vision weights"),
    ],
)
def test_options_that_mean_nothing_are_refused(opts: dict, message: str) -> None:  # type: ignore[type-arg]
    part = opts.pop("part")
    with pytest.raises(ConfigError, match=message):
        irperf.lower(INSTRUCT, part, **opts)


def test_layout_matters_wherever_vision_weights_are_resident() -> None:
    """``full`` keeps the encoder's weights in every phase: Meta's (4, 4, ...) tile tables
    instead of HF's 9 aspect-ratio rows, in a decode step too. ``text`` records no layout."""
    n = 1601  # tokens per 560 px tile with CLS
    tables = 2 * 4 * W + 4 * n * W  # pre-, post- and gated tile embeddings: one row's width
    hf = params(irperf.lower(INSTRUCT, "full", phase="decode"))
    meta = irperf.lower(INSTRUCT, "full", phase="decode", layout="meta")
    assert hf - params(meta) == (ASPECT_ROWS - 4) * tables
    assert meta.meta["layout"] == "meta"
    assert "layout" not in irperf.lower(INSTRUCT, "text", seq_len=8).meta
