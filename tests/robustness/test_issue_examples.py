"""Every example the robustness issue names, as it names it: each now ends in exit code 2 with
one line (the message fragment asserted), or in a valid result."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

import irperf
from irperf.errors import PassError
from passes import FlopCount, RooflinePass, Traffic
from targets import load_target, target_names
from tests.robustness.outcome import check_cli, run_cli

ROOT = Path(__file__).parents[2]
SHIPPED = ROOT / "targets" / "data"
DATA = ROOT / "tests" / "data" / "configs"
M = "llama-3.2-11b-vision"
V = [M, "--part", "vision"]
DIGITS_400 = "9" * 400


def error(argv: list[str], fragment: str) -> None:
    code, _, err = run_cli(argv)
    assert code == 2 and err.count("\n") == 1, err
    assert fragment in err, err
    assert len(err) < 420


def edited_target(tmp_path: Path, name: str, old: str, new: str) -> str:
    text = (SHIPPED / f"{name}.toml").read_text()
    assert old in text
    path = tmp_path / f"{name}-edited.toml"
    path.write_text(text.replace(old, new, 1))
    return str(path)


@pytest.mark.parametrize("where", ["a,b", "br{x}", "my dir"])
def test_target_paths_are_never_pasted_into_a_pipeline(tmp_path: Path, where: str) -> None:
    folder = tmp_path / where
    folder.mkdir()
    shutil.copy(SHIPPED / "n300.toml", folder / "n300.toml")
    path = str(folder / "n300.toml")
    assert check_cli(["analyze", *V, "--target", path, "--json"])["target"] == "n300"
    assert check_cli(["fusion", *V, "--target", path, "--compare", "none,all", "--json"])


def test_non_finite_and_overflowing_numbers(tmp_path: Path) -> None:
    error(["analyze", *V, "--mfu", "5e-324"], "mfu must be a number from 0.001 to 1")
    for value in ("1e-320", "1e308"):
        bad = edited_target(tmp_path, "n300", "= 288e9", f"= {value}")
        error(["analyze", *V, "--target", bad, "--json"], "must be a number from 1e+06 to 1e+16")
    error(["analyze", *V, f"--batch={DIGITS_400}"], "an integer of 400 digits")
    error(
        [
            "analyze",
            *V,
            "--target",
            edited_target(tmp_path, "n300", "chips = 2", f"chips = {DIGITS_400}"),
        ],
        "chips must be an integer from 1 to 1,024",
    )
    error(
        [
            "analyze",
            *V,
            "--target",
            edited_target(tmp_path, "n300", "grid = [8, 8]", f"grid = [{DIGITS_400}, 8]"),
        ],
        "grid must be two integers from 1 to 1,024",
    )
    params = json.loads((DATA / "llama-3.2-11b-vision.params.json").read_text())
    path = tmp_path / "deep.params.json"
    path.write_text(json.dumps(params).replace('"n_layers": 32', f'"n_layers": {DIGITS_400}'))
    error(["analyze", str(path)], "n_layers must be an integer from 1 to 256")
    path.write_text(json.dumps(params).replace('"n_layers": 32', f'"n_layers": {"9" * 5000}'))
    error(["analyze", str(path)], "malformed JSON")


@pytest.mark.parametrize("name", target_names())
def test_a_zero_grid_is_the_same_clean_error_in_every_target(tmp_path: Path, name: str) -> None:
    text = (SHIPPED / f"{name}.toml").read_text()
    grid = next(line for line in text.splitlines() if line.startswith("grid = "))
    bad = edited_target(tmp_path, name, grid, "grid = [0, 8]")
    error(["analyze", *V, "--target", bad], "grid must be two integers from 1 to 1,024, got [0, 8]")


def test_every_json_output_is_strict() -> None:
    for argv in (
        ["analyze", *V, "--json"],
        ["analyze", M, "--phase", "decode", "--target", "n300", "--json"],
        ["fusion", *V, "--compare", "none,greedy", "--json"],
        ["fusion", *V, "--opportunities", "--json"],
        ["models", "--json"],
        ["targets", "--json"],
        ["report", "seed", "--json"],
        ["run", *V, "--passes", "flops,bytes,roofline{target=h100}", "--json"],
    ):
        assert check_cli(argv) is not None


def test_contradictions_and_flags_that_mean_nothing(tmp_path: Path) -> None:
    twice = edited_target(
        tmp_path, "n300", '["bf16", "hifi4"], ', '["bf16", "hifi4"], ["bf16", "lofi"], '
    )
    error(["analyze", *V, "--target", twice], "fidelity_by_dtype pairs bf16 twice (hifi4 and lofi)")
    error(["run", *V, "--passes", "flops{convention=full,convention=matmul-only}"], "given twice")
    error(
        ["run", *V, "--passes", "flops,fuse{capacity_bytes=-5}"],
        "capacity_bytes must be an integer from 0",
    )
    error(["run", *V, "--passes", "flops,fuse{target=bogus}"], "unknown target 'bogus'")
    error(["fusion", *V, "--compare", "none,all", "--log"], "--log prints greedy's steps")
    error(
        ["fusion", *V, "--compare", "none,all", "--capacity-bytes", "5"],
        "rule strategies never read it",
    )
    error(["lower", *V, "--annotate"], "--annotate needs --dot, --svg or --png")
    error(
        ["fusion", *V, "--opportunities", "--top", "5", "--json"], "--json lists every opportunity"
    )


def test_a_huge_layer_count_is_refused_at_once(tmp_path: Path) -> None:
    config = json.loads((DATA / "llama-3.2-11b-vision.config.json").read_text())
    config["text_config"]["num_hidden_layers"] = 10**7
    path = tmp_path / "tall.config.json"
    path.write_text(json.dumps(config))
    start = time.perf_counter()
    error(["analyze", str(path)], "text_config.num_hidden_layers must be an integer from 1 to 256")
    assert time.perf_counter() - start < 5


def test_api_edges() -> None:
    g = irperf.lower(DATA / "llama-3.2-11b-vision.config.json", "vision")  # a Path
    assert load_target(SHIPPED / "n300.toml").name == "n300"  # a Path
    g = irperf.run(g, ["flops", "bytes"])  # a list of names
    assert g.has_records(FlopCount) and g.has_records(Traffic)
    with pytest.raises(PassError, match="option mfu must be a finite float"):
        RooflinePass(mfu="fast")  # type: ignore[arg-type]


def test_messages(tmp_path: Path) -> None:
    code, _, err = run_cli(["analyze", "x" * 100_000])
    # One bounded line: the name's echo cut, and every preset named (ten since the text-only
    # Llamas joined the four Vision checkpoints), far below the 100,000 characters given.
    assert code == 2 and len(err) < 400 and "(100,000 characters)" in err
    null = tmp_path / "null.json"
    null.write_text("null")
    error(["analyze", str(null)], "expected a JSON object at the top level, got null")
    error(["analyze", ""], "a model name must not be empty")
    code, out, err = run_cli([])
    assert code == 2 and "usage: irperf" in out and err.count("\n") == 1
    assert check_cli(["analyze", M.upper(), "--part", "VISION", "--convention", "FULL", "--json"])
    config = json.loads((DATA / "llama-3.2-11b-vision.config.json").read_text())
    config["text_config"]["head_dim"] = 127
    odd = tmp_path / "odd.config.json"
    odd.write_text(json.dumps(config))
    even = "text_config.head_dim 127 must be even: rotary position embeddings rotate pairs"
    error(["analyze", str(odd)], f"{even} of channels in {odd}")


def test_stray_files_and_composition() -> None:
    assert not (ROOT / "vision.svg").exists()
    assert check_cli(["fusion", *V, "--compare", "qkv+norm", "--json"])
