"""One check per class of bad input an acceptance hunt of ~2,300 probes found: each is now an
error of one line (exit code 2) or a valid result."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import pytest
from attrs import field, frozen

import irperf
from irperf.errors import ConfigError, PassError, PluginError, TargetError
from irperf.ops import MatMul, Op
from lowering import load_model_config
from passes import FusePass
from passes.fusion_report import compare
from passes.fusion_rules import FusionRule, register_strategy
from targets import load_target
from tests.robustness.outcome import check_cli, run_cli

DATA = Path(__file__).parents[1] / "data" / "configs"
SHIPPED = Path(__file__).parents[2] / "targets" / "data"
HF = DATA / "llama-3.2-11b-vision.config.json"
IRPERF = [sys.executable, "-c", "import sys; from irperf.cli import main; sys.exit(main())"]


def one_line_error(argv: list[str], *, contains: str = "") -> str:
    code, _, err = run_cli(argv)
    assert code == 2 and err.count("\n") == 1 and err.startswith("irperf: error: "), err
    assert contains in err, err
    return err


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_devices_are_not_read_as_files() -> None:
    """/dev/zero never ends: reading it whole would fill memory."""
    one_line_error(["analyze", "/dev/zero"], contains="not a regular file")
    one_line_error(
        ["analyze", "llama-3.2-11b-vision", "--target", "/dev/zero"], contains="not a regular file"
    )
    one_line_error(["passes", "--load", "/dev/zero"], contains="not a regular file")


def test_a_nul_in_a_path_is_an_error_not_a_value_error() -> None:
    with pytest.raises(ConfigError, match="NUL"):
        load_model_config("a\x00b.json")
    with pytest.raises(TargetError, match="NUL"):
        load_target("/tmp/a\x00.toml")
    with pytest.raises(PluginError, match="NUL"):
        from irperf.plugins import load_plugin

        load_plugin("x\x00.py")


def test_a_json_key_given_twice_is_a_contradiction(tmp_path: Path) -> None:
    path = tmp_path / "twice.params.json"
    text = (DATA / "llama-3.2-11b-vision.params.json").read_text()
    path.write_text(text.replace('"n_layers": 32,', '"n_layers": 32, "n_layers": 40,'))
    with pytest.raises(ConfigError, match="key 'n_layers' is given twice"):
        load_model_config(path)


def test_a_fidelity_the_target_has_no_rate_for_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "h100.toml"
    text = (SHIPPED / "h100.toml").read_text()
    path.write_text(
        text.replace("sources = [", 'fidelity_by_dtype = [["bf16", "lofi"]]\nsources = [', 1)
    )
    with pytest.raises(TargetError, match="pairs bf16 with lofi, a fidelity no compute rate lists"):
        load_target(path)


@irperf.register_pass
@frozen(kw_only=True)
class Listy(irperf.AnalysisPass):
    name: ClassVar[str] = "robust-listy"
    record_type: ClassVar[type] = dict
    sizes: list[int] = field(factory=lambda: [1])


def test_options_a_pipeline_string_cannot_give_are_refused() -> None:
    with pytest.raises(PassError, match="option sizes is a list, which a pipeline string cannot"):
        irperf.make_pass("robust-listy", {"sizes": "1,2"})


def test_a_plugin_pass_with_annotations_out_of_scope_still_builds() -> None:
    """``from __future__ import annotations`` in a function: ClassVar is not in the module."""

    def define() -> type:
        from typing import ClassVar as CV

        @frozen(kw_only=True)
        class Local(irperf.AnalysisPass):
            name: CV[str] = "robust-local"
            record_type: CV[type] = dict
            scale: int = 2

        return Local

    cls = define()
    assert cls(scale=3).scale == 3  # type: ignore[attr-defined]


def _raises(ctx: object, producer: object, consumer: object) -> bool:
    raise ValueError("a bug in my rule")


def test_a_user_fusion_rule_that_raises_names_the_rule_and_the_nodes() -> None:
    register_strategy("robust-raising", [FusionRule("oops", Op, MatMul, _raises)])
    g = irperf.lower("llama-3.2-11b-vision", "text", phase="decode")
    with pytest.raises(PluginError, match=r"fusion rule 'oops' failed on .* -> .*: .*ValueError"):
        compare(g, ["robust-raising"], target="n300")
    one_line_error(
        ["fusion", "llama-3.2-11b-vision", "--compare", "robust-raising"],
        contains="fusion rule 'oops' failed",
    )


def test_capacity_is_checked_wherever_it_is_given() -> None:
    g = irperf.lower("llama-3.2-11b-vision", "text", phase="decode")
    with pytest.raises(PassError, match="capacity must be an integer from 0"):
        compare(g, ["greedy"], target="n300", capacity=-5)
    with pytest.raises(PassError, match="option capacity_bytes is for greedy.s cost model"):
        FusePass(strategy="all", capacity_bytes=5)
    with pytest.raises(PassError, match="strategies must be a list of strategy names"):
        compare(g, None, target="n300")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "argv",
    [
        ["lower", "llama-3.2-11b-vision", "--dot", ""],
        ["fusion", "llama-3.2-11b-vision", "--strategy", "all", "--svg", " "],
        ["fusion", "llama-3.2-11b-vision", "--strategy", "greedy", "--log", "--json"],
        ["fusion", "llama-3.2-11b-vision", "--compare", "none,all", "--capacity-bytes", "5"],
    ],
)
def test_flags_that_would_be_ignored_are_refused(argv: list[str]) -> None:
    one_line_error(argv)


def test_output_in_an_encoding_without_the_characters(tmp_path: Path) -> None:
    """A file name in another script, printed under PYTHONIOENCODING=ascii, is escaped."""
    path = tmp_path / "ünï.config.json"
    shutil.copy(HF, path)
    env = {**os.environ, "PYTHONIOENCODING": "ascii"}
    done = subprocess.run(
        [*IRPERF, "analyze", str(path), "--part", "vision"],
        capture_output=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert b"\\xfc" in done.stdout  # the name, escaped
    done = subprocess.run(
        [*IRPERF, "analyze", str(path) + "x"], capture_output=True, env=env, timeout=120
    )
    assert done.returncode == 2 and done.stderr.count(b"\n") == 1


@pytest.mark.skipif(sys.platform != "linux", reason="file names as bytes")
def test_a_file_name_that_is_not_utf8_draws(tmp_path: Path) -> None:
    name = os.fsdecode(b"\xff.config.json")
    path = tmp_path / name
    shutil.copy(HF, path)
    dot = tmp_path / "g.dot"
    assert check_cli(["lower", str(path), "--part", "vision", "--dot", str(dot)]) is None
    assert dot.stat().st_size > 0


def test_a_closed_stderr_still_gives_the_exit_code() -> None:
    done = subprocess.run(
        [*IRPERF, "analyze", "nope"],
        stderr=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        timeout=120,
        close_fds=True,
    )
    assert done.returncode == 2
    closed = subprocess.run(
        ["sh", "-c", " ".join(f"'{a}'" for a in IRPERF) + " analyze nope 2>&-"], timeout=120
    )
    assert closed.returncode == 2


def test_records_json_cannot_hold_are_an_error_not_a_crash(tmp_path: Path) -> None:
    plugin = tmp_path / "odd_records.py"
    plugin.write_text(
        "from typing import ClassVar\nimport irperf\nfrom attrs import frozen\n"
        "@irperf.register_pass\n@frozen(kw_only=True)\nclass P(irperf.AnalysisPass):\n"
        "    name: ClassVar[str] = 'robust-odd-records'\n    record_type: ClassVar[type] = bytes\n"
        "    def analyze(self, graph):\n        return {n.name: b'x' for n in graph}\n"
    )
    model = ["llama-3.2-11b-vision", "--part", "text", "--phase", "decode"]
    base = ["run", *model, "--load", str(plugin), "--passes", "robust-odd-records"]
    one_line_error([*base, "--json"], contains="cannot be written as strict JSON")
    one_line_error(base, contains="records do not add up")


@pytest.mark.parametrize("option", ["target=h100", "convention=full", "capacity_bytes=5"])
def test_fuse_refuses_greedy_options_for_a_rule_table(option: str) -> None:
    error = f"option {option.split('=')[0]} is for greedy's cost model"
    one_line_error(
        ["run", "llama-3.2-11b-vision", "--passes", f"fuse{{strategy=all,{option}}}"],
        contains=error,
    )
    assert check_cli(
        [
            "run",
            "llama-3.2-11b-vision",
            "--part",
            "vision",
            "--passes",
            f"flops,fuse{{strategy=greedy,{option}}}",
            "--json",
        ]
    )
