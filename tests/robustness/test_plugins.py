"""User plugins that fail in every way, in every command that loads them: exit code 2, one line
naming the plugin; irperf's own passes survive any of them."""

from __future__ import annotations

import itertools
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

import irperf
from passes.flops import FlopsPass
from tests.robustness.conftest import Scratch
from tests.robustness.outcome import check_cli, robust, run_cli

_ids = itertools.count()

PASS = """
from typing import ClassVar
from attrs import frozen
import irperf

@frozen
class Rec:
    n: int = 0

@irperf.register_pass
@frozen(kw_only=True)
class P(irperf.AnalysisPass):
    name: ClassVar[str] = "{name}"
    record_type: ClassVar[type] = Rec

    def analyze(self, graph):
        {body}
"""

BODIES = [
    "raise ValueError('boom')",
    "raise KeyError('k')",
    "raise SystemExit(3)",
    "raise RecursionError()",
    "return 42",
    "return {'x': 1/0}",
    "import no_such_module_xyz",
    "return {n.name: Rec() for n in graph}",  # a good one
]

BROKEN = [
    "def f(:\n",  # a syntax error
    "raise RuntimeError('at import')\n",
    "import no_such_module_xyz\n",
    "import sys\nsys.exit(3)\n",
    "raise SystemExit\n",
    "x = 1 / 0\n",
    "from irperf import nothing_here\n",
    "import irperf\n@irperf.register_pass\nclass NotAPass: pass\n",
    "import irperf\nfrom passes.flops import FlopsPass\n"
    "class Again(FlopsPass):\n    pass\nirperf.register_pass(Again)\n",
]

FILE_NAMES = ["plugin", "passes", "targets", "irperf", "lowering", "attrs", "json", "my-plugin"]


@st.composite
def plugins(draw: st.DrawFn) -> tuple[bytes, str]:
    """A plugin file's bytes and the pass name it would register."""
    name = f"robust-{next(_ids)}"
    kind = draw(st.sampled_from(["pass", "broken", "bytes"]))
    if kind == "pass":
        return PASS.format(name=name, body=draw(st.sampled_from(BODIES))).encode(), name
    if kind == "broken":
        return draw(st.sampled_from(BROKEN)).encode(), name
    return b"x = '\xff\xfe caf\xe9'\n", name  # not UTF-8


@robust
@given(plugin=plugins(), stem=st.sampled_from(FILE_NAMES), command=st.integers(0, 2))
def test_failing_plugins(
    scratch: Scratch, plugin: tuple[bytes, str], stem: str, command: int
) -> None:
    content, name = plugin
    file = scratch.new(f"{stem}.py")
    file.write_bytes(content)
    path = str(file)
    model = ["llama-3.2-11b-vision", "--part", "text", "--phase", "decode"]
    argv = [
        ["run", *model, "--load", path, "--passes", f"flops,{name}"],
        ["passes", "--load", path],
        ["fusion", *model, "--load", path, "--compare", "none,all", "--json"],
    ][command]
    check_cli(argv)
    # whatever the plugin did, irperf's own passes are still irperf's
    assert irperf.get_pass("flops") is FlopsPass
    check_cli(["run", *model, "--passes", "flops,bytes,params"])


def test_a_plugin_named_passes_py_cannot_shadow_irperf(tmp_path: Path) -> None:
    (tmp_path / "passes.py").write_text("X = 1\n")
    code = check_cli(["passes", "--load", str(tmp_path / "passes.py")])
    assert code is None
    assert irperf.get_pass("flops") is FlopsPass


def test_two_files_with_one_name_do_not_replace_each_other(tmp_path: Path) -> None:
    body = PASS.format(name="twin-pass", body="return {n.name: Rec() for n in graph}")
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "twin.py").write_text(body)
    model = ["llama-3.2-11b-vision", "--part", "text", "--phase", "decode"]
    first = ["run", *model, "--load", str(tmp_path / "a" / "twin.py"), "--passes", "twin-pass"]
    assert check_cli(first) is None

    second = ["run", *model, "--load", str(tmp_path / "b" / "twin.py"), "--passes", "twin-pass"]
    code, _, err = run_cli(second)
    assert code == 2 and "already registered" in err and str(tmp_path / "a") in err
