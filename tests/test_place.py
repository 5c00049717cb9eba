"""``irperf place`` and ``irperf analyze`` on the machine: the JSON contract and the facts.

Expected numbers are formulas or reference facts (tt-metal-llama-vision.md, wormhole.md)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from irperf.cli import main

B11 = "llama-3.2-11b-vision"
B90 = "llama-3.2-90b-vision"
CHIP_DRAM = 12 * 10**9  # n300: 12 GB GDDR6 per chip
TOP = {"target", "tp", "pattern", "precision", "chips", "ops"}
CHIP = {"chip", "weights_bytes", "kv_cache_bytes", "dram_bytes", "link_bytes", "flops"}
CHIP |= {"dram_capacity_bytes", "fits"}
OP = {"name", "kind", "role", "chips", "shape", "global_shape", "dtype", "weight_dtype"}
OP |= {"fidelity", "flops", "bytes_read", "bytes_written", "link_bytes"}


def _json(capsys: Any, *argv: str) -> dict[str, Any]:
    assert main(list(argv)) == 0
    out: dict[str, Any] = json.loads(capsys.readouterr().out)
    return out


def test_place_json_contract(capsys: Any) -> None:
    out = _json(capsys, "place", B11, "--phase", "decode", "--json")
    assert set(out) >= TOP
    assert (out["target"], out["tp"], out["pattern"], out["precision"]) == (
        "n300",
        2,
        "fractured",
        "tt-accuracy",
    )
    assert [c["chip"] for c in out["chips"]] == [0, 1]
    for c in out["chips"]:
        assert set(c) >= CHIP and c["dram_capacity_bytes"] == CHIP_DRAM and c["fits"]
    for op in out["ops"]:
        assert set(op) >= OP
    kinds = {op["kind"] for op in out["ops"] if "payload_bytes" in op}
    assert kinds == {"all_gather", "reduce_scatter", "mesh_split"}
    wq = next(op for op in out["ops"] if op["name"] == "text.0.attn.wq")
    assert wq["shape"] == [1, 1, 4096 // 2] and wq["global_shape"] == [1, 1, 4096]
    assert (wq["role"], wq["weight_dtype"], wq["fidelity"], wq["chips"]) == (
        "q",
        "bfp8_b",
        "hifi2",
        2,
    )
    # Per chip, one decode token through wq: 2 * 4096 * (4096 / 2) FLOPs.
    assert wq["flops"] == 2 * 4096 * 4096 // 2


def test_90b_does_not_fit_an_n300_and_says_by_how_much(capsys: Any) -> None:
    out = _json(capsys, "place", B90, "--precision", "tt-performance", "--json")
    chip = out["chips"][0]
    assert not chip["fits"] and chip["weights_bytes"] > CHIP_DRAM
    assert main(["place", B90, "--precision", "tt-performance"]) == 0
    text = capsys.readouterr().out
    assert "does not fit: needs" in text and "12.00 GB available" in text


def test_11b_fits(capsys: Any) -> None:
    out = _json(capsys, "place", B11, "--precision", "tt-performance", "--json")
    assert all(c["fits"] for c in out["chips"])


def test_all_reduce_pattern_and_tp_off(capsys: Any) -> None:
    out = _json(capsys, "place", B11, "--pattern", "all-reduce", "--phase", "decode", "--json")
    assert out["pattern"] == "all-reduce"
    ar = [op for op in out["ops"] if op["kind"] == "all_reduce"]
    assert len(ar) == 2 * 40  # 2 per text layer, no vision encoder in decode
    t_bytes, n = 4096 * 2, 2  # the [1, 1, 4096] BF16 residual, ring of 2
    assert {op["link_bytes"] for op in ar} == {2 * (n - 1) * t_bytes // n}
    assert {op["payload_bytes"] for op in ar} == {t_bytes}
    off = _json(capsys, "place", B11, "--tp", "off", "--json")
    assert off["tp"] == 1 and off["pattern"] is None
    assert not any("payload_bytes" in op for op in off["ops"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--tp", "3"], "has 2 chips"),
        (["--tp", "0"], "--tp: a chip count from 1 to"),
        (["--tp", "two"], "--tp: a chip count from 1 to"),
        (["--precision", "fast"], "unknown precision policy"),
        (["--precision", "bf16", "--weight-dtype", "bfp8_b"], "contradict"),
        (["--tp", "off", "--pattern", "all-reduce"], "--pattern means nothing"),
        (["--pattern", "ring"], "invalid choice"),
    ],
)
def test_bad_machine_flags(capsys: Any, argv: list[str], message: str) -> None:
    assert main(["place", B11, *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_analyze_on_n300_costs_the_placed_graph(capsys: Any) -> None:
    out = _json(capsys, "analyze", B11, "--phase", "decode", "--target", "n300", "--json")
    assert (out["tp"], out["pattern"], out["precision"]) == (2, "fractured", "tt-accuracy")
    lat = out["latency_ms"]
    assert {"aggregate_roofline", "per_op_roofline", "link_ms"} <= set(lat)
    # Link time: each chip's link bytes at 12e9 B/s over one usable link (n300.toml).
    assert lat["link_ms"] == pytest.approx(out["totals"]["link_bytes"] / 12e9 * 1e3)
    assert lat["link_ms"] > 0
    assert out["memory"]["per_chip"] and out["memory"]["device_bytes"] == CHIP_DRAM
    # Per-chip rates: the q projection, bf16 x bfp8 at HiFi2, runs at one chip's 64 cores.
    wq = next(op for op in out["ops"] if op["name"] == "text.0.attn.wq")
    assert wq["compute_ms"] == pytest.approx(wq["flops"] / (2.048e12 * 64) * 1e3)


def test_seed_target_is_unsplit(capsys: Any) -> None:
    out = _json(capsys, "analyze", B11, "--json")
    assert (out["tp"], out["pattern"], out["precision"]) == (1, None, None)
    assert out["latency_ms"]["link_ms"] == 0


def test_prefill_and_decode_store_the_same_weights(capsys: Any) -> None:
    # Decode keeps the cross-attention K/V projections resident without running them: they
    # are stored in the policy's format all the same, so both phases hold the same bytes.
    pre = _json(capsys, "place", B11, "--json")["chips"][0]["weights_bytes"]
    dec = _json(capsys, "place", B11, "--phase", "decode", "--json")["chips"][0]["weights_bytes"]
    assert pre == dec


def test_unsplit_fit_is_one_chips_dram(capsys: Any) -> None:
    out = _json(capsys, "place", B90, "--target", "t3000", "--tp", "off", "--json")
    chip = out["chips"][0]
    assert out["tp"] == 1 and chip["dram_capacity_bytes"] == CHIP_DRAM and not chip["fits"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--part", "vision", "--pattern", "all-reduce"], "always all-reduces"),
        (["--ops", "--json"], "--ops means nothing with --json"),
    ],
)
def test_flags_that_mean_nothing(capsys: Any, argv: list[str], message: str) -> None:
    assert main(["place", B11, *argv]) == 2
    assert message in capsys.readouterr().err


def test_run_prints_graph_level_records(capsys: Any) -> None:
    assert main(["run", B11, "--part", "vision", "--passes", "flops,bytes,params,memory"]) == 0
    assert "MemoryFootprint: {'weights_bytes':" in capsys.readouterr().out
    out = _json(capsys, "run", B11, "--part", "vision", "--passes", "memory", "--json")
    assert out["graph_records"]["MemoryFootprint"]["weights_bytes"] > 0


def test_a_split_graph_on_a_target_with_fewer_chips(capsys: Any) -> None:
    passes = "tensor-parallel{chips=8},flops,bytes,roofline{target=n300}"
    assert main(["run", B11, "--part", "vision", "--passes", passes]) == 2
    err = capsys.readouterr().err
    assert "split over 8 chips; target 'n300' has 2 chips" in err
    assert "pass 'roofline' failed" in err and "pass 'roofline': " not in err  # said once


def test_place_shows_tiles_on_the_grid(capsys: Any) -> None:
    out = _json(capsys, "place", B11, "--phase", "decode", "--json")
    wq = next(op for op in out["ops"] if op["name"] == "text.0.attn.wq")
    # One decode row pads to a 32-row tile; per chip N = 4096 / 2 columns: 64 tiles on 1 x 8.
    assert wq["padded_mkn"] == [32, 4096, 2048] and wq["grid"] == [1, 8]
    assert wq["padded_flops"] == 2 * 32 * 4096 * 2048
    assert wq["per_core_tiles"] == 2048 // 32 // 8 and wq["imbalance"] == 1.0
    norm = next(op for op in out["ops"] if op["kind"] == "rmsnorm")
    assert "grid" not in norm


def test_dram_strategy_homes_every_tensor_in_dram(capsys: Any) -> None:
    from irperf.cli.place import STRATEGIES as FLAG_CHOICES
    from passes.placement import STRATEGIES

    assert FLAG_CHOICES == STRATEGIES  # the flag's choices are the pass's
    out = _json(capsys, "place", B11, "--phase", "decode", "--strategy", "DRAM", "--json")
    assert out["strategy"] == "dram"
    for op in out["ops"]:
        assert op["output_home"] == "dram_interleaved"
        assert op["input_homes"] == ["dram_interleaved"] * len(op["input_homes"])
    wq = next(op for op in out["ops"] if op["name"] == "text.0.attn.wq")
    assert len(wq["input_homes"]) == 2  # the activation and the weight
    assert main(["place", B11, "--strategy", "fastest"]) == 2  # not a strategy
    assert "invalid choice" in capsys.readouterr().err


def test_l1_greedy_in_place(capsys: Any) -> None:
    cap = 1_396_736  # n300: 1364 KiB usable per core
    base = ["place", B11, "--convention", "full", "--json"]
    dram = _json(capsys, *base)
    l1 = _json(capsys, *base, "--strategy", "l1-greedy")
    assert l1["strategy"] == "l1-greedy" and l1["l1_capacity_bytes_per_core"] == cap
    chip, before = l1["chips"][0], dram["chips"][0]
    assert chip["peak_l1_bytes_per_core"] <= cap and chip["noc_bytes"] > 0
    assert before["noc_bytes"] == 0 and chip["dram_bytes"] < before["dram_bytes"]
    assert all(op["l1_bytes_per_core"] <= cap for op in l1["ops"])
    assert any(op["output_home"] == "l1_interleaved" for op in l1["ops"])


def test_tt_metal_pads_vision_tiles_to_whole_device_tiles(capsys: Any) -> None:
    # 560 px tiles: (560 / 14)^2 + 1 = 1601 tokens; HF pads to a multiple of 8 (1608), the
    # device to whole 32-row tiles (1632), as tt-metal does.
    base = ["place", B90, "--target", "t3000", "--json"]
    hf = _json(capsys, *base)
    tt = _json(capsys, *base, "--strategy", "tt-metal")
    assert (hf["vision_rows"], hf["vision_tile_rows"]) == ("hf", 1608)
    assert (tt["vision_rows"], tt["vision_tile_rows"]) == ("tile", 1632)
    text = _json(capsys, "place", B11, "--part", "text", "--strategy", "tt-metal", "--json")
    assert text["vision_tile_rows"] is None


def test_vision_rows_lowering_option() -> None:
    import irperf
    from irperf.errors import ConfigError

    g = irperf.lower(B11, part="vision", vision_rows="tile")  # 448 px: 1025 tokens -> 1056
    assert g.node("vision.pad").type.shape == (1, 4, 1056, 1280)
    with pytest.raises(ConfigError, match="vision_rows means nothing with part 'text'"):
        irperf.lower(B11, part="text", vision_rows="tile")
    with pytest.raises(ConfigError, match="vision_rows"):
        irperf.lower(B11, vision_rows="rows")


def test_overrides_change_one_roles_home_and_grid(capsys: Any, tmp_path: Any) -> None:
    f = tmp_path / "mine.toml"
    f.write_text(
        '[role.ff1]\nhome = "dram_interleaved"\n[role.fc1]\ngrid = [4, 8]\n'
        '[node."text.0.attn.wq"]\nhome = "l1_interleaved"\n'
    )
    base = ["place", B90, "--target", "t3000", "--strategy", "tt-metal", "--json"]
    before = {o["name"]: o for o in _json(capsys, *base)["ops"]}
    out = _json(capsys, *base, "--override", str(f))
    after = {o["name"]: o for o in out["ops"]}
    assert out["overrides"] == str(f)
    # The vision fc1 (6528 x 1280 x 5120/8 per chip under tt-metal's 1632-row tiles) on 4 x 8.
    mt, nt = 6528 // 32, 5120 // 8 // 32
    fc1 = after["vision.local.0.mlp.fc1"]
    assert fc1["grid"] == [4, 8] and fc1["per_core_tiles"] == -(-mt // 4) * -(-nt // 8)
    assert before["vision.local.0.mlp.fc1"]["grid"] == [8, 8]
    assert after["text.0.attn.wq"]["output_home"] == "l1_interleaved"  # the node's own override


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[role.qq]\nhome = "l1_interleaved"\n', "is not a role"),
        ('[role.q]\nhome = "sram"\n', "home = 'sram'"),
        ("[role.q]\ngrid = [9]\n", "two integers"),
        ("[role.q]\nspeed = 1\n", "unknown key 'speed'"),
        ('[roles.q]\nhome = "l1_interleaved"\n', "unknown table [roles]"),
        ("[role.q]\ngrid = [16, 16]\n", "larger than"),
        ('[role.embed]\nhome = "l1_interleaved"\n', "live in DRAM"),
        ("[role\n", "malformed TOML"),
        ("x = " + "9" * 5000 + "\n", "malformed TOML"),
        ("[kind.matmull]\ngrid = [2, 2]\n", "is not an op kind"),
        ("[phase.train.kind.matmul]\ngrid = [2, 2]\n", "is not a phase"),
        ("[phase.decode.node.x]\ngrid = [2, 2]\n", "has unknown table [node]"),
        ("[phase.decode.role.qq]\ngrid = [2, 2]\n", "[phase.decode.role.qq] is not a role"),
        ("[kind.matmul]\ngrid = [1, 0]\n", "two integers"),
        ("phase = 3\n", "[phase] must be a table"),
    ],
)
def test_bad_overrides(capsys: Any, tmp_path: Any, text: str, message: str) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(text)
    assert main(["place", B11, "--phase", "decode", "--override", str(f)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_a_tensor_no_chip_can_hold_is_named_with_its_bytes(capsys: Any) -> None:
    # 64 sequences x 131,071 cached positions x 8 KV heads x 128 in BF16, on one chip: one
    # layer's K cache is 64 * 131071 * 1024 * 2 bytes, more than a chip's 12 GB.
    argv = ["place", B11, "--phase", "decode", "--context", "131071", "--batch", "64"]
    out = _json(capsys, *argv, "--tp", "off", "--precision", "bf16", "--json")
    cache = 64 * 131071 * 1024 * 2
    chip = out["chips"][0]
    assert {"name": "text.0.attn.k_cache", "bytes": cache} in chip["unplaceable"]
    assert not chip["fits"]
    assert main([*argv, "--tp", "off", "--precision", "bf16"]) == 0
    assert "cannot be placed anywhere: text.0.attn.k_cache" in capsys.readouterr().out
    assert _json(capsys, "place", B11, "--json")["chips"][0]["unplaceable"] == []


def test_shards_by_formula(capsys: Any) -> None:
    out = _json(capsys, "place", B11, "--phase", "decode", "--strategy", "tt-metal", "--json")
    ops = {op["name"]: op for op in out["ops"]}
    w1 = ops["text.0.mlp.w1"]  # [1, 1, 7168] per chip of 2: one tile row, 224 column tiles
    assert w1["output_home"] == "l1_width_sharded"
    assert w1["output_shard"] == {"grid": [8, 8], "shape": [32, -(-224 // 64) * 32]}
    # Its weight, 4096 x 7168 per chip, DRAM-sharded: 224 column tiles over the 12 banks.
    assert w1["input_shards"][1] == {"grid": [1, 12], "shape": [4096, -(-224 // 12) * 32]}
    assert w1["input_shards"][0] == {"grid": [8, 8], "shape": [32, 2 * 32]}  # 4096: 128 tiles
    assert ops["text.0.attn.sdpa"]["input_shards"][0] is not None
    dram = _json(capsys, "place", B11, "--phase", "decode", "--json")
    assert all(op["output_shard"] is None for op in dram["ops"])  # interleaved: no shards
