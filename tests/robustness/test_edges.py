"""Edges a user meets on the first day: output that cannot be written, a reader that stops
early, an empty or oddly cased name, paths as ``os.PathLike``, options of the wrong type."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import irperf
from irperf.errors import ConfigError, IrperfError, PassError, TargetError
from passes import RooflinePass
from targets import load_target
from tests.robustness.outcome import check_cli, run_cli

CONFIGS = Path(__file__).parents[1] / "data" / "configs"
IRPERF = [sys.executable, "-c", "import sys; from irperf.cli import main; sys.exit(main())"]
VISION = ["analyze", "llama-3.2-11b-vision", "--part", "vision"]


def shell(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*IRPERF, *argv], capture_output=True, timeout=120, **kwargs)  # type: ignore[call-overload, no-any-return]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
@pytest.mark.parametrize("argv", [VISION, [*VISION, "--json"], ["models", "--json"]])
def test_a_full_disk_is_one_line(argv: list[str]) -> None:
    with open("/dev/full", "wb") as full:
        done = subprocess.run([*IRPERF, *argv], stdout=full, stderr=subprocess.PIPE, timeout=120)
    err = done.stderr.decode()
    assert done.returncode == 2
    assert err == "irperf: error: cannot write output: No space left on device\n"


def test_a_reader_that_stops_early_is_not_an_error() -> None:
    pipeline = subprocess.Popen(
        [*IRPERF, "report", "seed"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert pipeline.stdout is not None
    pipeline.stdout.readline()
    pipeline.stdout.close()  # like `| head -1`
    err = pipeline.stderr.read() if pipeline.stderr else b""
    assert pipeline.wait(timeout=120) == 0
    assert b"Traceback" not in err and b"Exception ignored" not in err


@pytest.mark.parametrize("path", ["/dev/full", "/nonexistent-dir/g.dot", "/", "x" * 5000 + ".dot"])
def test_pictures_that_cannot_be_written(path: str) -> None:
    code, _, err = run_cli(["lower", "llama-3.2-11b-vision", "--part", "vision", "--dot", path])
    assert code == 2 and err.count("\n") == 1 and len(err) < 420


def test_a_bare_irperf_shows_the_commands() -> None:
    code, out, err = run_cli([])
    assert code == 2
    assert "analyze" in out and "fusion" in out  # the usage, listing the commands
    assert err == "irperf: error: no command given; choose one of the commands above\n"


@pytest.mark.parametrize(
    "argv",
    [
        ["analyze", ""],
        ["analyze", " "],
        ["analyze", "x" * 100_000],
        ["analyze", "llama-3.2-11b-vision", "--target", ""],
        ["analyze", "llama-3.2-11b-vision", "--target", "y" * 100_000 + ".toml"],
        ["run", "llama-3.2-11b-vision", "--passes", "z" * 100_000],
        ["lower", "llama-3.2-11b-vision", "--annotate"],
        ["lower", "llama-3.2-11b-vision", "--convention", "full"],
        ["fusion", "llama-3.2-11b-vision", "--compare", "none,all", "--log"],
        ["fusion", "llama-3.2-11b-vision", "--compare", "none,all", "--capacity-bytes", "5"],
        ["fusion", "llama-3.2-11b-vision", "--opportunities", "--top", "5", "--json"],
        ["fusion", "llama-3.2-11b-vision", "--strategy", "all", "--top", "5"],
        ["fusion", "llama-3.2-11b-vision", "--compare", "greedy+qkv"],
        ["fusion", "llama-3.2-11b-vision", "--compare", "none+flash-attention"],
        ["analyze", str(CONFIGS), "--part", "text"],
        ["analyze", "llama-3.2-11b-vision", "--target", str(CONFIGS)],
        ["report", "nope"],
    ],
)
def test_bad_requests_are_one_short_line(argv: list[str]) -> None:
    code, _, err = run_cli(argv)
    assert code == 2 and err.count("\n") == 1 and len(err) < 420, err
    assert "x" * 100 not in err and "y" * 100 not in err and "z" * 100 not in err


def test_names_and_choices_match_in_any_case() -> None:
    upper = check_cli(
        [
            "analyze",
            "LLAMA-3.2-11B-VISION",
            "--part",
            "VISION",
            "--target",
            "N300",
            "--convention",
            "FULL",
            "--fidelity",
            "HIFI2",
            "--dtype",
            "BF16",
            "--json",
        ]
    )
    lower = check_cli(
        [
            "analyze",
            "llama-3.2-11b-vision",
            "--part",
            "vision",
            "--target",
            "n300",
            "--convention",
            "full",
            "--fidelity",
            "hifi2",
            "--dtype",
            "bf16",
            "--json",
        ]
    )
    assert upper == lower
    assert check_cli(["report", "SEED", "--json"]) == check_cli(["report", "seed", "--json"])


def test_strategies_compose_with_plus() -> None:
    data = check_cli(
        [
            "fusion",
            "llama-3.2-11b-vision",
            "--part",
            "vision",
            "--target",
            "n300",
            "--compare",
            "qkv,norm,qkv+norm,all,epilogue+qkv+norm,QKV+NORM",
            "--json",
        ]
    )
    rows = {r["strategy"]: r for r in data["strategies"]}
    assert list(rows) == ["qkv", "norm", "qkv+norm", "all", "epilogue+qkv+norm"]  # one spelling
    both = rows["qkv+norm"]["dram_bytes"]
    assert both <= min(rows["qkv"]["dram_bytes"], rows["norm"]["dram_bytes"])  # rules only save
    # `all` is defined as the table EPILOGUE + QKV + NORM: composing the three is the same
    assert rows["epilogue+qkv+norm"]["dram_bytes"] == rows["all"]["dram_bytes"]
    assert rows["qkv+norm"]["flops"] == rows["qkv"]["flops"] == rows["all"]["flops"]


def test_paths_are_str_or_pathlike() -> None:
    path = CONFIGS / "llama-3.2-11b-vision.config.json"
    by_path = irperf.lower(path, "vision")
    by_str = irperf.lower(str(path), "vision")
    assert len(by_path) == len(by_str)
    shipped = Path(__file__).parents[2] / "targets" / "data" / "n150.toml"
    assert load_target(shipped) == load_target(str(shipped)) == load_target("n150")
    assert load_target(shipped) is load_target(shipped)  # parsed once per process


def test_wrong_option_types_are_pass_errors() -> None:
    with pytest.raises(PassError, match=r"option mfu must be a finite float, got '0\.5'"):
        RooflinePass(mfu="0.5")  # type: ignore[arg-type]
    with pytest.raises(PassError, match="fidelity=3; valid: lofi, hifi2, hifi3, hifi4"):
        RooflinePass(fidelity=3)  # type: ignore[arg-type]
    with pytest.raises(TargetError, match="unknown target 'bogus'"):
        RooflinePass(target="bogus")
    with pytest.raises(ConfigError):
        irperf.lower("llama-3.2-11b-vision", "vision", batch="2")
    with pytest.raises(IrperfError):
        irperf.lower(42)  # type: ignore[arg-type]


def test_unknown_lowering_options_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown lowering option 'bogus'; valid: batch"):
        irperf.lower("llama-3.2-11b-vision", "vision", bogus=1)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--part", "vision", "--part", "text"], "--part 'vision' contradicts --part 'text'"),
        (["--part", "text", "--image", "--no-image"], "--image contradicts --no-image"),
        (["--part", "text", "--batch=2", "--batch", "3"], "--batch 2 contradicts --batch 3"),
    ],
)
def test_a_flag_given_twice_with_two_values_is_a_contradiction(
    argv: list[str], message: str
) -> None:
    code, _, err = run_cli(["analyze", "llama-3.2-11b-vision", *argv])
    assert code == 2 and err == f"irperf: error: analyze: {message}\n"
    # the same value twice says nothing new, and is no contradiction
    assert (
        check_cli(["analyze", "llama-3.2-11b-vision", "--part", "vision", "--part", "vision"])
        is None
    )
