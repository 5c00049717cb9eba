"""The classes a second, fresh-clone acceptance review found, one check each."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import attrs
import pytest
from attrs import frozen

import irperf
from irperf.errors import ConfigError, IrperfError, PassError, TargetError
from irperf.ops import MatMul
from lowering import PRESETS, load_model_config
from passes import RooflinePass
from passes.fusion_rules import FusionRule
from targets.loader import parse_target
from tests.robustness.outcome import check_cli, run_cli

ROOT = Path(__file__).parents[2]
DATA = ROOT / "tests" / "data" / "configs"
MODEL = ["llama-3.2-11b-vision", "--part", "text", "--phase", "decode"]
CONSOLE = [sys.executable, "-c", "from irperf.cli import console; console()"]


def one_line_error(argv: list[str], contains: str) -> None:
    code, _, err = run_cli(argv)
    assert code == 2 and err.count("\n") == 1 and contains in err, err


def plugin(tmp_path: Path, body: str, name: str = "plug") -> str:
    path = tmp_path / f"{name}.py"
    path.write_text("from typing import ClassVar\nimport irperf\nfrom attrs import frozen\n" + body)
    return str(path)


PASS = """
@irperf.register_pass
@frozen(kw_only=True)
class P(irperf.AnalysisPass):
    name: ClassVar[str] = "{name}"
    record_type: ClassVar[type] = {record}
    def analyze(self, graph):
{body}
"""


def test_a_model_with_few_positions_lowers_in_every_phase() -> None:
    cfg = PRESETS["llama-3.2-11b-vision"]
    small = attrs.evolve(cfg, text=attrs.evolve(cfg.text, max_position_embeddings=512))
    assert irperf.lower(small, "vision")
    assert irperf.lower(small, "full", seq_len=100)
    assert irperf.lower(small, "full", phase="decode", context=300)
    with pytest.raises(ConfigError, match="1024 is the default"):
        irperf.lower(small, "full", phase="decode")


def test_exceptions_that_cannot_print_themselves(tmp_path: Path) -> None:
    bad = "class E(Exception):\n    def __str__(self):\n        raise E()\n"
    one_line_error(
        ["passes", "--load", plugin(tmp_path, bad + "raise E()\n", "at_import")],
        "cannot be printed",
    )
    body = PASS.format(name="robust-unprintable", record="dict", body="        raise E()")
    path = plugin(tmp_path, bad + body, "in_pass")
    one_line_error(
        ["run", *MODEL, "--load", path, "--passes", "robust-unprintable"], "cannot be printed"
    )


def test_a_plugin_thread_does_not_keep_irperf_alive(tmp_path: Path) -> None:
    body = "import threading, time\nthreading.Thread(target=time.sleep, args=(600,)).start()\n"
    body += PASS.format(name="robust-threads", record="dict", body="        return {}")
    path = plugin(tmp_path, body, "threads")
    done = subprocess.run([*CONSOLE, "passes", "--load", path], capture_output=True, timeout=60)
    assert done.returncode == 0 and b"flops" in done.stdout


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs")
def test_a_pipe_nobody_reads_is_an_error_not_a_wait(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    one_line_error(
        ["lower", "llama-3.2-11b-vision", "--part", "vision", "--dot", str(fifo)],
        "a pipe that nobody reads",
    )


def test_a_reader_that_stops_early_on_a_picture_is_not_an_error() -> None:
    cmd = " ".join(f"'{a}'" for a in CONSOLE)
    done = subprocess.run(
        ["sh", "-c", f"{cmd} lower llama-3.2-11b-vision --dot /dev/stdout | head -c 10"],
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0 and b"Traceback" not in done.stderr


def test_what_plugins_print_stays_off_stdout(tmp_path: Path) -> None:
    body = "print('hello from the plugin')\n" + PASS.format(
        name="robust-printer",
        record="dict",
        body="        print('hello from analyze')\n        return {n.name: {} for n in graph}",
    )
    path = plugin(tmp_path, body, "printer")
    code, out, err = run_cli(
        ["run", *MODEL, "--load", path, "--passes", "robust-printer", "--json"]
    )
    assert code == 0 and "hello" not in out and "hello from analyze" in err
    json.loads(out)


def test_fusion_rules_are_checked_when_made() -> None:
    with pytest.raises(PassError, match="producer must be an op class"):
        FusionRule("bad", "MatMul", MatMul)  # type: ignore[arg-type]
    with pytest.raises(PassError, match="consumer must be an op class"):
        FusionRule("bad", MatMul, (MatMul, 5))  # type: ignore[arg-type]
    with pytest.raises(PassError, match="condition must be callable"):
        FusionRule("bad", MatMul, MatMul, 5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("record", "body", "message"),
    [
        (
            "dict",
            "        r = {}\n        r['r'] = r\n        return {n.name: r for n in graph}",
            "cannot be written as strict JSON: Circular reference",
        ),
        ("float", "        return {n.name: float('nan') for n in graph}", "non-finite"),
    ],
)
def test_records_a_plugin_cannot_report(
    tmp_path: Path, record: str, body: str, message: str
) -> None:
    name = f"robust-records-{record}"
    path = plugin(
        tmp_path, PASS.format(name=name, record=record, body=body), name.replace("-", "_")
    )
    argv = ["run", *MODEL, "--load", path, "--passes", name]
    if record == "dict":
        one_line_error([*argv, "--json"], message)
    else:
        one_line_error(argv, message)


@pytest.mark.skipif(sys.platform != "linux", reason="closing a descriptor from sh")
def test_a_closed_stdout_is_one_line() -> None:
    cmd = " ".join(f"'{a}'" for a in CONSOLE)
    done = subprocess.run(["sh", "-c", f"{cmd} models --json >&-"], capture_output=True, timeout=60)
    assert (
        done.returncode == 2
        and done.stderr == b"irperf: error: cannot write output: stdout is closed\n"
    )


def test_two_picture_formats_to_one_file() -> None:
    one_line_error(
        ["fusion", "llama-3.2-11b-vision", "--strategy", "all", "--dot", "a.dot", "--png", "a.dot"],
        "two outputs name one file",
    )


@irperf.register_pass
@frozen(kw_only=True)
class Scaled(irperf.AnalysisPass):
    name: ClassVar[str] = "robust-scaled"
    record_type: ClassVar[type] = dict
    factor: float = 1.0

    def analyze(self, graph: irperf.Graph) -> dict[str, dict[str, float]]:
        return {n.name: {"x": self.factor} for n in graph}


@irperf.register_pass
@frozen(kw_only=True)
class Breaks(irperf.Pass):
    """Returns a new, broken graph and says it changed nothing."""

    name: ClassVar[str] = "robust-breaks"

    def run(self, graph: irperf.Graph) -> irperf.PassResult:
        nodes = list(graph)[1:]  # the first node's readers lose their operand
        broken = irperf.Graph.from_nodes([], like=graph)
        for n in nodes:
            broken._nodes[n.name] = n
            broken.nx.add_node(n.name)
        return irperf.PassResult(broken, modified=False)


def test_float_options_are_finite_and_new_graphs_are_verified() -> None:
    g = irperf.lower("llama-3.2-11b-vision", "text", phase="decode")
    for value in ("nan", "inf", "-inf"):
        with pytest.raises(PassError, match="is not a finite float"):
            irperf.run(g.copy(), f"robust-scaled{{factor={value}}}")
    with pytest.raises(PassError, match="must be a finite float"):
        Scaled(factor=float("nan"))
    with pytest.raises(PassError, match="robust-breaks.*defined-before-use"):
        irperf.run(g.copy(), "robust-breaks")


def test_dropped_records_are_reported() -> None:
    argv = ["run", "llama-3.2-11b-vision", "--part", "vision"]
    argv += ["--passes", "flops,decompose-attention,bytes"]
    data = check_cli([*argv, "--json"])
    assert data["dropped"] == ["flops"] and "FlopCount" not in data["records"]
    code, out, _ = run_cli(argv)
    assert code == 0 and "note: the records of flops were dropped" in out


def test_records_computed_from_replaced_records_are_dropped_not_mixed() -> None:
    """A roofline of matmul-only FLOPs must not sit beside full-convention FLOPs."""
    argv = ["run", "llama-3.2-11b-vision", "--part", "text", "--passes"]
    data = check_cli([*argv, "flops,bytes,roofline{target=n300},flops{convention=full}", "--json"])
    assert data["dropped"] == ["roofline"] and "RooflineTime" not in data["records"]
    data = check_cli([*argv, "flops,bytes,flops{convention=full},roofline{target=n300}", "--json"])
    assert data["dropped"] == [] and "RooflineTime" in data["records"]


def test_pipelines_have_a_length_bound() -> None:
    g = irperf.lower("llama-3.2-11b-vision", "text", phase="decode")
    with pytest.raises(PassError, match="a pipeline of 300 passes is more than 64"):
        irperf.run(g, ",".join(["flops"] * 300))
    with pytest.raises(PassError, match="pass 'flops' runs twice with the same options"):
        irperf.run(g.copy(), "flops,bytes,flops")
    with pytest.raises(PassError, match="runs twice"):
        irperf.run(g.copy(), "flops,fuse{strategy=greedy},fuse{strategy=greedy}")
    # the same pass on changed inputs, or after a transform, is a new computation
    assert irperf.run(g.copy(), "flops,bytes,roofline,flops{convention=full},roofline")
    assert irperf.run(g.copy(), "flops,decompose-attention,flops")


def test_api_misuse_raises_irperf_errors() -> None:
    cases = [
        lambda: RooflinePass(bogus=1),  # type: ignore[call-arg]
        lambda: RooflinePass("n300"),  # type: ignore[misc]
        lambda: irperf.make_pass("flops", {"convention": 5}),  # type: ignore[dict-item]
        lambda: irperf.make_pass("flops", "x"),  # type: ignore[arg-type]
        lambda: irperf.Graph().add("x", 5),  # type: ignore[arg-type]
        lambda: irperf.Graph().add(None, MatMul()),  # type: ignore[arg-type]
        lambda: irperf.Graph().users("nope"),
        lambda: irperf.Builder(5),  # type: ignore[arg-type]
        lambda: irperf.verify(None),  # type: ignore[arg-type]
        lambda: irperf.dtype(None),  # type: ignore[arg-type]
        lambda: irperf.TensorType((2,), "bf16"),  # type: ignore[arg-type]
        lambda: irperf.TensorType((2**400,), irperf.BF16),
        lambda: parse_target(None),  # type: ignore[arg-type]
    ]
    for case in cases:
        with pytest.raises(IrperfError):
            case()


def _edited(tmp_path: Path, name: str, edit: object) -> Path:
    data = json.loads((DATA / name).read_text())
    edit(data)  # type: ignore[operator]
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    ("name", "edit", "message"),
    [
        (
            "llama-3.2-11b-vision.params.json",
            lambda d: d.__setitem__("n_kv_head", d.pop("n_kv_heads")),
            "did you mean 'n_kv_heads'",
        ),
        (
            "llama-3.2-11b-vision.params.json",
            lambda d: d.__setitem__("colour", 1),
            "colour is not a key irperf reads",
        ),
        (
            "llama-3.2-11b-vision.config.json",
            lambda d: d["text_config"].__setitem__("head_dimm", 128),
            "did you mean 'head_dim'",
        ),
        (
            "llama-3.2-11b-vision.config.json",
            lambda d: d.__setitem__("tie_word_embeddings", True),
            "tie_word_embeddings True is not modelled",
        ),
        (
            "llama-3.2-11b-vision.config.json",
            lambda d: d["text_config"].__setitem__("hidden_act", "gelu"),
            "is not modelled",
        ),
        (
            "llama-3.2-11b-vision.config.json",
            lambda d: d["vision_config"].__setitem__("supported_aspect_ratios", [["a"], None, 5]),
            "list of [width, height] tile counts",
        ),
    ],
)
def test_config_keys_that_would_be_silently_ignored(
    tmp_path: Path, name: str, edit: object, message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_model_config(_edited(tmp_path, name, edit))


def test_argparse_messages_echo_at_most_80_characters() -> None:
    for argv in (["--batch", "9" * 5000], ["--mfu", "x" * 300], ["--" + "y" * 300]):
        code, _, err = run_cli(["analyze", "llama-3.2-11b-vision", *argv])
        assert code == 2 and len(err) < 200, err


def test_target_names_are_one_line(tmp_path: Path) -> None:
    text = (ROOT / "targets" / "data" / "n150.toml").read_text()
    with pytest.raises(TargetError, match="must be one line of text"):
        parse_target(text.replace('name = "n150"', 'name = "n150\\n\\u001b[31m"'), "x.toml")


def test_the_console_entry_point_is_what_pyproject_installs() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    assert 'irperf = "irperf.cli:console"' in text
