"""Precision policies: formats and fidelities per role and phase, from the reference's table.

Facts: tt-metal-llama-vision.md, "Precision and fidelity (per role and phase)"; block formats
are 1088 B (BFP8_b) and 576 B (BFP4_b) per 32x32 tile (wormhole.md / architecture.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest

import irperf
from irperf.dtypes import BF16, BFP4_B, BFP8_B
from irperf.errors import PassError
from passes.memory import memory_footprint
from passes.precision import apply_policy, load_policy
from passes.roofline import RooflineTime

B11 = "llama-3.2-11b-vision"
B90 = "llama-3.2-90b-vision"
BFP8_TILE, BFP4_TILE = 1024 + 64, 512 + 64


def tiles(rows: int, cols: int) -> int:
    return -(-rows // 32) * -(-cols // 32)


def _policy(model: str, phase: str, policy: str) -> irperf.Graph:
    return apply_policy(irperf.lower(model, phase=phase), load_policy(policy))


def test_tt_performance_formats_by_role() -> None:
    g = _policy(B11, "prefill", "tt-performance")
    w1 = g.node("text.0.mlp.w1.weight").type
    assert w1.dtype == BFP4_B and w1.nbytes == tiles(4096, 14336) * BFP4_TILE
    w2 = g.node("text.0.mlp.w2.weight").type
    assert w2.dtype == BFP8_B and w2.nbytes == tiles(14336, 4096) * BFP8_TILE
    wq = g.node("text.0.attn.wq.weight").type
    assert wq.dtype == BFP8_B and wq.nbytes == tiles(4096, 4096) * BFP8_TILE
    # The vision encoder, all of it, in BF16.
    vq = g.node("vision.local.0.attn.wq.weight").type
    assert vq.dtype == BF16 and vq.nbytes == 1280 * 1280 * 2
    assert g.node("text.lm_head.weight").type.dtype == BFP8_B
    assert g.node("text.3.attn.wk.weight").type.dtype == BFP8_B  # a cross-attention linear
    assert g.meta["precision"] == "tt-performance"


def test_fidelity_by_role_and_phase() -> None:
    pre = _policy(B11, "prefill", "tt-performance")
    assert pre.node("text.0.mlp.w1").fidelity == "lofi"
    assert pre.node("text.0.attn.wq").fidelity == "hifi2"
    assert pre.node("text.0.attn.sdpa").fidelity == "hifi4"  # SDPA prefill
    assert pre.node("text.3.attn.wq").fidelity == "hifi4"  # cross-attention linears
    assert pre.node("vision.local.0.mlp.fc1").fidelity == "hifi4"
    dec = _policy(B11, "decode", "tt-performance")
    assert dec.node("text.0.attn.sdpa").fidelity == "hifi2"  # SDPA decode


def test_accuracy_mode_keeps_bfp4_ffn_for_70b_class_text() -> None:
    assert _policy(B11, "decode", "tt-accuracy").node("text.0.mlp.w1.weight").type.dtype == BFP8_B
    big = _policy(B90, "decode", "tt-accuracy")
    assert big.node("text.0.mlp.w1.weight").type.dtype == BFP4_B
    assert big.node("text.0.mlp.w1").fidelity == "lofi"


def test_kv_cache_is_bfp8_and_cross_caches_bf16() -> None:
    context = 128
    g = apply_policy(irperf.lower(B11, phase="decode", context=context), load_policy("tt-accuracy"))
    cache = g.node("text.0.attn.k_cache").type
    assert cache.dtype == BFP8_B and cache.nbytes == tiles(context, 1024) * BFP8_TILE
    assert g.node("text.3.attn.k_cache").type.dtype == BF16  # cross K/V cached in BF16
    assert g.node("text.0.attn.k_append.cast").op.kind == "typecast"
    irperf.verify(g)
    # The footprint's KV cache follows: self caches in BFP8 tiles, cross caches in BF16.
    before = memory_footprint(irperf.lower(B11, phase="decode", context=context))
    after = memory_footprint(g)
    assert after.kv_cache_bytes < before.kv_cache_bytes


def test_prefill_fills_the_cache_in_its_format() -> None:
    g = _policy(B11, "prefill", "tt-accuracy")
    assert "text.0.attn.rope_k.to_cache" in g.kv_cache.tensors
    assert g.node("text.0.attn.rope_k.to_cache").type.dtype == BFP8_B
    irperf.verify(g)


def test_bf16_is_bf16_everywhere() -> None:
    g = _policy(B11, "decode", "bf16")
    assert {n.type.dtype for n in g if n.op.kind == "weight" and n.type.rank == 2} == {BF16}
    assert {n.fidelity for n in g if n.op.kind == "matmul"} == {"hifi4"}


def test_roofline_reads_the_policys_fidelity() -> None:
    g = irperf.run(_policy(B11, "prefill", "tt-performance"), "flops,bytes,roofline{target=n300}")
    t = g.records(RooflineTime)["text.0.mlp.w1"]
    s = irperf.lower(B11, phase="prefill").node("text.0.mlp.w1").type.shape[1]
    lofi = 4.096e12 * 64 * 2  # per-core LoFi rate x 64 cores x 2 chips (pooled, unsplit graph)
    assert t.compute_s == pytest.approx(2 * s * 4096 * 14336 / lofi)


def test_user_policy_file(tmp_path: Path) -> None:
    f = tmp_path / "mine.toml"
    f.write_text(
        '[default]\nweight = "bfp8_b"\nfidelity = "hifi2"\n[ff2.decode]\nweight = "bfp4_b"\n'
    )
    g = apply_policy(irperf.lower(B11, phase="decode"), load_policy(f))
    assert g.node("text.0.mlp.w2.weight").type.dtype == BFP4_B
    assert g.node("text.0.mlp.w1.weight").type.dtype == BFP8_B
    assert g.meta["precision"] == str(f)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[qq]\nweight = "bf16"\n', "is not a role"),
        ('[q]\nweight = "bf17"\n', "is not a format"),
        ('[q]\nwidth = "bf16"\n', "unknown key 'width'"),
        ('[q]\nfidelity = "hifi5"\n', "fidelity = 'hifi5'"),
        ('[phase.training]\nweight = "bf16"\n', "unknown phase 'training'"),
        ("[q\n", "malformed TOML"),
        ("x = " + "9" * 5000 + "\n", "malformed TOML"),
        ("a = [" * 2000 + "\n", "malformed TOML"),
    ],
)
def test_bad_policy_files_are_one_line_errors(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(PassError, match=message) as e:
        load_policy(f)
    assert "\n" not in str(e.value)


def test_unknown_policy_names_the_presets() -> None:
    with pytest.raises(PassError, match="valid: bf16, tt-accuracy, tt-performance"):
        load_policy("fast")


def test_the_pass_and_a_second_policy() -> None:
    g = irperf.run(irperf.lower(B11, part="vision"), "precision{policy=BF16},flops")
    assert g.meta["precision"] == "bf16"
    with pytest.raises(PassError, match="already has policy"):
        irperf.run(g, "precision{policy=tt-accuracy}")


def test_policy_names_match_in_any_case(tmp_path: Path) -> None:
    f = tmp_path / "upper.toml"
    f.write_text('[DEFAULT]\nWEIGHT = "BF16"\n[FF1.Decode]\nWeight = "bfp4_b"\n')
    g = apply_policy(irperf.lower(B11, phase="decode"), load_policy(f))
    assert g.node("text.0.mlp.w1.weight").type.dtype == BFP4_B
    twice = tmp_path / "twice.toml"
    twice.write_text('[q]\nweight = "bf16"\n[Q]\nweight = "bfp8_b"\n')
    with pytest.raises(PassError, match="twice"):
        load_policy(twice)
