"""Random mutations of the shipped target TOML files and model config JSON files: a typed error
with one line naming the file, or a model and a target whose analysis holds its invariants."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

import irperf
from irperf.errors import ConfigError, IrperfError, TargetError, UnknownNameError
from lowering import load_model_config
from targets import load_target, target_names
from targets.loader import _data_dir
from tests.robustness.conftest import Scratch
from tests.robustness.outcome import assert_analysis_invariants, check_cli, robust

CONFIGS = Path(__file__).parents[1] / "data" / "configs"

TOML_VALUES = [
    "0",
    "-1",
    "1",
    "1e-320",
    "1e308",
    "nan",
    "inf",
    "-inf",
    "1.5",
    "9" * 400,
    "9" * 5000,
    "'x'",
    '""',
    "true",
    "[]",
    "[0, 8]",
    "[8]",
    "[8, 8, 8]",
    '[["bf16", "hifi4"], ["bf16", "lofi"]]',
    "{}",
    "",
    "'" + "y" * 100_000 + "'",
]

KEY_LINE = re.compile(r"^(\s*\{?\s*)([A-Za-z_]+)(\s*=\s*)(.*)$")


def mutate_toml(text: str, data: st.DataObject) -> str:
    lines = text.splitlines()
    keyed = [i for i, line in enumerate(lines) if KEY_LINE.match(line)]
    i = data.draw(st.sampled_from(keyed), label="line")
    how = data.draw(st.sampled_from(["value", "delete", "duplicate", "bytes"]), label="how")
    if how == "delete":
        del lines[i]
    elif how == "duplicate":
        lines.insert(i, lines[i])
    elif how == "bytes":
        return text.replace(lines[i], lines[i] + " \udcff", 1)  # written as invalid UTF-8
    else:
        m = KEY_LINE.match(lines[i])
        assert m is not None
        value = data.draw(st.sampled_from(TOML_VALUES), label="value")
        lines[i] = f"{m.group(1)}{m.group(2)}{m.group(3)}{value}"
        if m.group(1).strip() == "{":  # an inline table of the compute array: keep it closed
            lines[i] += " },"
    return "\n".join(lines) + "\n"


def write(scratch: Scratch, text: str, suffix: str) -> Path:
    path = scratch.new(f"mutated{suffix}")
    path.write_bytes(text.encode("utf-8", errors="surrogateescape"))
    return path


@robust
@given(name=st.sampled_from(target_names()), data=st.data())
def test_mutated_targets(scratch: Scratch, name: str, data: st.DataObject) -> None:
    text = _data_dir().joinpath(f"{name}.toml").read_text("utf-8")
    path = write(scratch, mutate_toml(text, data), ".toml")
    try:
        load_target(path)
    except TargetError as e:
        assert "\n" not in str(e) and str(path) in str(e)
    report = check_cli(
        ["analyze", "llama-3.2-11b-vision", "--part", "vision", "--target", str(path), "--json"]
    )
    if report is not None:
        assert_analysis_invariants(report, str(path))
        check_cli(
            [
                "fusion",
                "llama-3.2-11b-vision",
                "--part",
                "vision",
                "--target",
                str(path),
                "--compare",
                "none,greedy",
                "--json",
            ]
        )


JSON_VALUES: list[Any] = [
    0,
    -1,
    1,
    2,
    3,
    7,
    None,
    "x",
    1e308,
    1.5,
    10**400,
    [],
    {},
    True,
    [1, 1],
    [-1],
    65,
    2**31,
]


READ = {"text_config", "vision_config", "rope_parameters", "rope_scaling"}
"""The sections irperf reads; label maps and tokenizer ids are left alone."""


def _paths(obj: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k in READ:
                out += _paths(v, (*prefix, k))
            elif not isinstance(v, dict):
                out.append((*prefix, k))
    return out


def mutate_json(obj: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        paths = _paths(obj)
        if not paths:
            break
        path = data.draw(st.sampled_from(paths), label="key")
        parent = obj
        for k in path[:-1]:
            parent = parent[k]
        if data.draw(st.booleans(), label="delete"):
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(st.sampled_from(JSON_VALUES), label="value")
    return obj


@robust
@given(name=st.sampled_from(sorted(p.name for p in CONFIGS.glob("*.json"))), data=st.data())
def test_mutated_model_configs(scratch: Scratch, name: str, data: st.DataObject) -> None:
    obj = mutate_json(json.loads((CONFIGS / name).read_text()), data)
    path = write(scratch, json.dumps(obj), ".json")
    try:
        cfg = load_model_config(path)
    except (ConfigError, UnknownNameError) as e:
        message = str(e)
        assert "\n" not in message and str(path) in message, message
        assert len(message) < 400, message
        return
    # accepted: it lowers and costs like any model, decode (fast) and the vision part
    for part, phase in (("text", "decode"), ("vision", "prefill")):
        try:
            graph = (
                irperf.lower(cfg, part, phase=phase)
                if part != "vision"
                else irperf.lower(cfg, part)
            )
        except IrperfError as e:  # a request the model cannot serve, said as a config error
            assert isinstance(e, ConfigError), e
            continue
        irperf.verify(graph)
        irperf.run(graph, irperf.analysis_pipeline("n300"))
    report = check_cli(["analyze", str(path), "--part", "text", "--phase", "decode", "--json"])
    if report is not None:
        assert_analysis_invariants(report, str(path))
