"""``irperf fusion``: the JSON contract, tables, one-line errors, and the user-strategy example."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import irperf
from irperf.cli import main
from irperf.plugins import load_plugin
from passes.flops import count_flops
from passes.fusion_report import layer_bytes, run_strategy

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "custom_fusion_strategy.py"
VISION = ("llama-3.2-11b-vision", "--part", "vision", "--target", "n300")
S, H, D = 4128, 16, 1280
E = 2
SCORES = H * S * S * E


def run(capsys, *argv: str) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_compare_json(capsys) -> None:  # type: ignore[no-untyped-def]
    names = "none,flash-attention,epilogue,qkv,all,greedy"
    code, out, _ = run(capsys, "fusion", *VISION, "--compare", names, "--json")
    assert code == 0
    r = json.loads(out)
    assert (r["target"], r["convention"], r["baseline"]) == ("n300", "full", "none")
    rows = r["strategies"]
    assert [x["strategy"] for x in rows] == names.split(",")
    for x in rows:
        assert {"strategy", "flops", "dram_bytes", "latency_ms"} <= set(x)
        assert set(x["latency_ms"]) == {"aggregate_roofline", "per_op_roofline"}
    assert len({x["flops"] for x in rows}) == 1
    by = {x["strategy"]: x for x in rows}
    saved = by["none"]["dram_bytes"] - by["flash-attention"]["dram_bytes"]
    assert saved == (32 + 8) * 6 * SCORES
    bytes_ = [by[s]["dram_bytes"] for s in ("flash-attention", "epilogue", "all")]
    assert bytes_ == sorted(bytes_, reverse=True)
    assert by["greedy"]["log"][0]["saved_bytes"] > 0


def test_compare_table_and_log(capsys) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run(capsys, "fusion", *VISION, "--compare", "none,all,greedy", "--log")
    assert code == 0
    # The FLOPs (counted by formula in test_costs/test_seed) are printed with separators.
    g = irperf.lower("llama-3.2-11b-vision", part="vision")
    flops = sum(f.flops for f in count_flops(g, "full").values())
    assert f"{flops:,}" in out
    assert "weights" in out and "activations" in out and "scores" in out
    assert "fusion steps" in out and "fuse vision.local.0.mlp.fc1.bias_add" in out


def test_opportunities(capsys) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run(capsys, "fusion", *VISION, "--opportunities", "--json")
    assert code == 0
    found = json.loads(out)["opportunities"]
    saved = [o["saved_bytes"] for o in found]
    assert saved == sorted(saved, reverse=True) and min(saved) > 0
    # Largest: fusing two parts of a decomposed attention, e.g. softmax into p v, saves the
    # softmax's write of the scores and p v's read of them.
    top = found[0]
    assert top["rule"] == "flash-attention" and top["saved_bytes"] == 2 * SCORES
    assert not top["fits"]  # 2 x 545 MB of scores do not fit on chip whole (FlashAttention tiles)
    kinds = {(o["kind"], o["rule"]) for o in found}
    assert ("siblings", "qkv") in kinds and ("pair", "norm") in kinds and ("pair", "") in kinds
    qkv = next(o for o in found if o["rule"] == "qkv")
    assert qkv["saved_bytes"] == 2 * S * D * E  # ln_1's output read once instead of three times
    code, out, _ = run(capsys, "fusion", *VISION, "--opportunities", "--top", "5")
    assert code == 0 and "more patterns" in out and "flash-attention" in out


def test_strategy_table_and_dot(capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    dot = tmp_path / "all.dot"
    code, out, _ = run(capsys, "fusion", *VISION, "--strategy", "all", "--dot", str(dot))
    assert code == 0
    assert "Fused groups of all: 161" in out  # 4 per layer x 40, and the projector's epilogue
    assert "ln_1 + attn.wq + attn.wk + attn.wv" in out
    assert 'style="dashed,rounded"' in dot.read_text()
    code, out, _ = run(capsys, "fusion", *VISION, "--strategy", "qkv", "--json")
    groups = json.loads(out)["groups"]
    assert len(groups) == 40 and all(len(g["members"]) == 3 for g in groups)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--compare", "none,fastest"), "unknown fusion strategy 'fastest'"),
        (("--strategy", "all", "--opportunities"), "not allowed with argument"),
        ((), "one of the arguments"),
        (("--opportunities", "--svg", "x.svg"), "--svg needs --strategy"),
        (("--compare", ","), "comma-separated list"),
    ],
)
def test_errors_are_one_line(capsys, argv: tuple[str, ...], message: str) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run(capsys, "fusion", *VISION, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and message in err


def load_example():  # type: ignore[no-untyped-def]
    return load_plugin(str(EXAMPLE))


def test_example_strategy_by_formula() -> None:
    mod = load_example()
    assert mod.STRATEGY.name == "add-norm"
    g = irperf.lower("llama-3.2-11b-vision", part="vision")
    rows = {}
    for name in ("all", "add-norm"):
        layers = layer_bytes(run_strategy(g, name, target="n300").graph)
        rows[name] = next(x for x in layers if x["group"] == "vision.local")
    # ln_1 (past the first layer) and ln_2 no longer read the residual stream: the add producing
    # it keeps it on chip for the norm. It is still written for the next residual add, except
    # after the last local layer, where ln_post is its only reader.
    local = 32
    saved = (2 * local - 1) * S * D * E + S * D * E
    assert rows["all"]["dram_bytes"] - rows["add-norm"]["dram_bytes"] == saved


def test_cli_loads_the_example(capsys) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run(
        capsys, "fusion", *VISION, "--load", str(EXAMPLE), "--compare", "all,add-norm"
    )
    assert code == 0 and "add-norm" in out
