"""End-to-end CLI: outputs, the JSON contract, and one-line errors with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from irperf.cli import main

DATA = Path(__file__).parent / "data" / "configs"


def run(capsys, *argv: str) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_models_and_targets(capsys) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run(capsys, "models")
    assert code == 0
    for name in (
        "llama-3.2-11b-vision",
        "llama-3.2-11b-vision-instruct",
        "llama-3.2-90b-vision",
        "llama-3.2-90b-vision-instruct",
    ):
        assert name in out
    code, out, _ = run(capsys, "targets", "--json")
    seed = {t["name"]: t for t in json.loads(out)}["n300-seed"]
    assert seed["peak_flops_per_s"] == 466e12
    assert seed["dram_bandwidth_bytes_per_s"] == 576e9


def test_report_seed_shows_the_posts_numbers(capsys) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run(capsys, "report", "seed")
    assert code == 0
    for number in ("249,566,330,880", "271,810,560", "9,982,653,235,200", "10,872,422,400"):
        assert number in out
    assert "21.4" in out and "18.9" in out
    code, out, _ = run(capsys, "report", "seed", "--json")
    assert json.loads(out)["per_op"]["flops_total"] == 249_566_330_880


def test_analyze_json_contract(capsys) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run(
        capsys,
        "analyze",
        "llama-3.2-11b-vision",
        "--part",
        "vision",
        "--target",
        "n300-seed",
        "--json",
    )
    assert code == 0
    r = json.loads(out)
    assert set(r["totals"]) >= {"flops", "bytes", "params"}
    assert set(r["latency_ms"]) >= {"aggregate_roofline", "per_op_roofline"}
    for op in r["ops"]:
        assert set(op) >= {"name", "kind", "flops", "bytes_read", "bytes_written", "params"}
    assert r["totals"]["flops"] == sum(o["flops"] for o in r["ops"])
    assert r["totals"]["params"] == 836_288_019 + 7680 * 4096 + 4096  # vision + projector
    # Per-op roofline can only be slower than the aggregate one.
    assert r["latency_ms"]["per_op_roofline"] >= r["latency_ms"]["aggregate_roofline"]
    ops = {o["name"]: o for o in r["ops"]}
    assert ops["vision.local.0.attn.wq"]["flops"] == 2 * 4128 * 1280 * 1280


def test_analyze_mfu_scales_compute(capsys) -> None:  # type: ignore[no-untyped-def]
    args = ("analyze", "llama-3.2-11b-vision", "--part", "vision", "--json")
    full = json.loads(run(capsys, *args)[1])
    half = json.loads(run(capsys, *args, "--mfu", "0.5")[1])
    ops_full = {o["name"]: o for o in full["ops"]}
    for o in half["ops"]:
        assert o["compute_ms"] == pytest.approx(2 * ops_full[o["name"]]["compute_ms"])


def test_analyze_table(capsys) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run(capsys, "analyze", "llama-3.2-11b-vision", "--part", "vision")
    assert code == 0
    assert "vision.local" in out and "vision.global" in out and "total" in out


def one_line_error(capsys, *argv: str) -> str:  # type: ignore[no-untyped-def]
    code, out, err = run(capsys, *argv)
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_bad_input_is_one_line_exit_2(capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    err = one_line_error(capsys, "analyze", "llama-9b", "--part", "vision")
    assert "llama-3.2-11b-vision" in err  # lists the valid names
    err = one_line_error(
        capsys, "analyze", "llama-3.2-11b-vision", "--part", "vision", "--target", "n999"
    )
    assert "n300-seed" in err
    bad = tmp_path / "bad.json"
    bad.write_text('{"text_config": {')
    assert "JSON" in one_line_error(capsys, "analyze", str(bad), "--part", "vision")
    cfg = json.loads((DATA / "llama-3.2-11b-vision.config.json").read_text())
    cfg["vision_config"]["attention_heads"] = 7
    heads = tmp_path / "heads.json"
    heads.write_text(json.dumps(cfg))
    assert "attention_heads" in one_line_error(capsys, "analyze", str(heads), "--part", "vision")
    cfg["vision_config"]["attention_heads"] = 16
    cfg["vision_config"]["image_size"] = 450
    patch = tmp_path / "patch.json"
    patch.write_text(json.dumps(cfg))
    assert "patch" in one_line_error(capsys, "analyze", str(patch), "--part", "vision")
    one_line_error(capsys, "analyze", "llama-3.2-11b-vision", "--part", "vision", "--batch", "0")
    one_line_error(capsys, "analyze", "llama-3.2-11b-vision", "--part", "vision", "--tiles", "5")
    one_line_error(capsys, "analyze", "llama-3.2-11b-vision", "--mfu", "2")
    one_line_error(capsys, "analyze", "llama-3.2-11b-vision", "--frobnicate")
    one_line_error(capsys, "report", "nope")
    one_line_error(capsys, "run", "llama-3.2-11b-vision", "--passes", "flops{convention=x}")
    one_line_error(capsys, "run", "llama-3.2-11b-vision", "--passes", "nosuchpass")
    one_line_error(capsys, "run", "llama-3.2-11b-vision", "--passes", "roofline")


def test_config_files_lower_like_presets(capsys) -> None:  # type: ignore[no-untyped-def]
    args = ("analyze", "--part", "vision", "--json")
    preset = json.loads(run(capsys, "analyze", "llama-3.2-11b-vision", *args[1:])[1])
    for f in ("llama-3.2-11b-vision.config.json", "llama-3.2-11b-vision.params.json"):
        loaded = json.loads(run(capsys, "analyze", str(DATA / f), *args[1:])[1])
        assert loaded["totals"] == preset["totals"]


def test_weight_dtype_reaches_the_lowering(capsys) -> None:  # type: ignore[no-untyped-def]
    """--dtype: activations (a scalar float); --weight-dtype: the linear weights, tiled."""
    import irperf
    from passes.memory import memory_footprint

    args = ("analyze", "llama-3.2-11b-vision", "--part", "vision", "--json")
    bf16 = json.loads(run(capsys, *args)[1])
    code, out, _ = run(capsys, *args, "--weight-dtype", "bfp8_b")
    assert code == 0
    bfp8 = json.loads(out)
    g = irperf.lower("llama-3.2-11b-vision", "vision", weight_dtype="bfp8_b")
    assert bfp8["memory"]["weights_bytes"] == memory_footprint(g).weights_bytes
    assert bfp8["memory"]["weights_bytes"] < bf16["memory"]["weights_bytes"]
    assert bfp8["memory"]["activation_peak_bytes"] == bf16["memory"]["activation_peak_bytes"]
    ops = {o["name"]: o for o in bfp8["ops"]}
    w = 1280 // 32  # a 1280x1280 projection in 32x32 tiles of 1088 bytes, x read at bf16
    assert ops["vision.local.0.attn.wq"]["bytes_read"] == 4128 * 1280 * 2 + w * w * 1088
    err = one_line_error(capsys, *args, "--dtype", "bfp8_b")
    assert "block format" in err and "--weight-dtype" in err
    assert "unknown dtype 'bf17'" in one_line_error(capsys, *args, "--weight-dtype", "bf17")
    err = one_line_error(
        capsys, "analyze", "llama-3.2-11b-vision", "--part", "text", "--layout", "meta"
    )
    assert "layout means nothing with part 'text'" in err


def test_tiles_help_says_the_cost_does_not_change() -> None:
    from irperf.cli.common import Parser, add_model_args

    p = Parser(prog="irperf analyze")
    add_model_args(p)
    text = " ".join(p.format_help().split())
    assert "always runs all max_num_tiles tiles" in text and "changes no cost" in text
