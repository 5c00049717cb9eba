"""Random command lines: any command, any flags in any order, any values. Each ends in exit
code 2 and one line, or in a valid result."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from tests.robustness.outcome import check_cli, robust

CONFIG = str(Path(__file__).parents[1] / "data" / "configs" / "llama-3.2-11b-vision.params.json")
COMMANDS = [
    "models",
    "targets",
    "lower",
    "analyze",
    "place",
    "fusion",
    "report",
    "run",
    "passes",
    "nope",
]
MODELS = ["llama-3.2-11b-vision", "LLAMA-3.2-90B-VISION", CONFIG, "", "seed", "/"]
FLAGS = {
    "--part": ["vision", "text", "full", "VISION", "both", ""],
    "--phase": ["prefill", "decode", "Decode", "train"],
    "--batch": ["1", "2", "0", "-3", "1e3", "9" * 40],
    "--seq-len": ["1", "16", "0", "200000"],
    "--context": ["1", "8", "0", "131072"],
    "--images": ["1", "2", "0", "65"],
    "--tiles": ["1", "4", "5"],
    "--image": [],
    "--no-image": [],
    "--logits": ["last", "all", "ALL", "some"],
    "--dtype": ["bf16", "fp32", "bfp8_b", "int32", "FP16", "x"],
    "--weight-dtype": ["bfp4_b", "bfp8_b", "bf16", "int32"],
    "--layout": ["hf", "meta", "HF", "x"],
    "--target": ["n300", "h100", "t3000", "N150", "bogus", "", "x.toml", CONFIG],
    "--convention": ["full", "matmul-only", "FULL", "dense"],
    "--mfu": ["0.4", "1", "0", "nan", "2"],
    "--fidelity": ["lofi", "HIFI4", "hifi5", ""],
    "--json": [],
    "--compare": ["none,all", "qkv+norm", "greedy", ",", "none+flash-attention"],
    "--strategy": ["all", "greedy", "bogus"],
    "--opportunities": [],
    "--log": [],
    "--top": ["1", "0", "5"],
    "--capacity-bytes": ["0", "1000000", "-1"],
    "--passes": [
        "flops",
        "flops,bytes,roofline{target=n300}",
        "fuse{strategy=qkv+norm}",
        "{",
        "tensor-parallel{chips=2},precision{policy=tt-performance},flops,bytes,tiles",
        "tensor-parallel{chips=3},flops",
        "tensor-parallel{chips=8},flops,bytes,roofline{target=n300}",
        "precision{policy=nope}",
    ],
    "--collapse-repeats": [],
    "--show-weights": [],
    "--annotate": [],
    "--dot": ["/dev/null", "/nonexistent/x.dot"],
    "--load": ["/nonexistent.py", "json", "no_such_module"],
    "--tp": ["2", "8", "off", "OFF", "0", "1", "3", "9" * 30, "two", " 2"],
    "--pattern": ["fractured", "all-reduce", "ALL-REDUCE", "ring"],
    "--precision": ["tt-accuracy", "TT-PERFORMANCE", "bf16", "fast", "", "x.toml", CONFIG],
    "--color": ["family", "role", "chip", "CHIP", "home"],
    "--ops": [],
    "--version": [],
    "--help": [],
}


@st.composite
def command_lines(draw: st.DrawFn) -> list[str]:
    command = draw(st.sampled_from(COMMANDS))
    argv = [command]
    if command in ("lower", "analyze", "fusion", "run"):
        argv.append(draw(st.sampled_from(MODELS)))
        argv += ["--part", draw(st.sampled_from(["vision", "text"]))]  # keep each run short
    if command == "report":
        argv.append(draw(st.sampled_from(["seed", "SEED", "other"])))
    for flag in draw(st.lists(st.sampled_from(sorted(FLAGS)), max_size=5)):
        values = FLAGS[flag]
        argv.append(flag)
        if values:
            argv.append(draw(st.sampled_from(values)))
    return argv


@robust
@given(argv=command_lines())
def test_random_command_lines(argv: list[str]) -> None:
    if "--help" in argv or "--version" in argv:
        return  # argparse prints and exits 0 by design
    check_cli(argv)
