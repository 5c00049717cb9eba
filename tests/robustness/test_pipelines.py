"""Random pipeline strings and pass lists through the API and the CLI: a PassError (one line,
naming the pass) or a graph whose records hold."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import irperf
from irperf.errors import IrperfError, PassError
from lowering import PRESETS
from passes import FlopCount, Traffic
from tests.robustness.outcome import check_cli, robust

BUILT_IN = [n for n in irperf.pass_names() if irperf.get_pass(n).__module__.startswith("passes.")]
"""irperf's own passes (other tests register user passes that fail on purpose)."""
NAMES = [*BUILT_IN, "flop", "", "FLOPS", "fuse ", "bytes-by-kind", "x" * 200]
KEYS = ["convention", "target", "mfu", "mbu", "fidelity", "strategy", "capacity_bytes", "bogus"]
VALUES = [
    "full",
    "matmul-only",
    "FULL",
    "n300",
    "n300-seed",
    "bogus",
    "0",
    "-5",
    "0.4",
    "nan",
    "1e-320",
    "none",
    "greedy",
    "qkv+norm",
    "hifi2",
    "",
    "a/b.toml",
    "9" * 500,
]
GLUE = ["", ",", "{", "}", "=", " ", ",,", "{}", "\n", "é"]


@st.composite
def pipelines(draw: st.DrawFn) -> str:
    parts = []
    for _ in range(draw(st.integers(0, 5))):
        name = draw(st.sampled_from(NAMES))
        options = [
            f"{draw(st.sampled_from(KEYS))}={draw(st.sampled_from(VALUES))}"
            for _ in range(draw(st.integers(0, 3)))
        ]
        item = name + (("{" + ",".join(options) + "}") if options or draw(st.booleans()) else "")
        parts.append(item + draw(st.sampled_from(GLUE)))
    return ",".join(parts) + draw(st.sampled_from(GLUE))


SMALL = irperf.lower(PRESETS["llama-3.2-11b-vision"], "text", phase="decode")


@robust
@given(spec=pipelines())
def test_random_pipeline_strings(spec: str) -> None:
    try:
        g = irperf.run(SMALL.copy(), spec)
    except IrperfError as e:
        message = str(e)
        assert "\n" not in message and len(message) < 2000
        assert not isinstance(e.__cause__, Exception) or isinstance(e.__cause__, IrperfError), (
            f"a built-in pass raised {e.__cause__!r}"
        )
        return
    if g.has_records(FlopCount):
        assert all(r.flops >= 0 for r in g.records(FlopCount).values())
    if g.has_records(Traffic):
        assert all(r.bytes_read >= 0 and r.bytes_written >= 0 for r in g.records(Traffic).values())


@robust
@given(spec=pipelines())
def test_random_pipelines_on_the_cli(spec: str) -> None:
    check_cli(
        [
            "run",
            "llama-3.2-11b-vision",
            "--part",
            "text",
            "--phase",
            "decode",
            "--passes",
            spec,
            "--json",
        ]
    )


@pytest.mark.parametrize(
    "passes",
    [
        42,
        None,
        [42],
        ["flops", None],
        [],
        ("flops", "bytes"),
        ["flops", irperf.make_pass("bytes")],
        {"flops": {}},
    ],
)
def test_pipeline_objects_are_names_and_passes_or_a_pass_error(passes: object) -> None:
    try:
        g = irperf.run(SMALL.copy(), passes)  # type: ignore[arg-type]
    except PassError as e:
        assert "\n" not in str(e)
        return
    assert g.has_records(FlopCount)


def test_the_graph_argument_is_checked() -> None:
    with pytest.raises(IrperfError, match="passes run on an irperf Graph"):
        irperf.run("llama-3.2-11b-vision", "flops")  # type: ignore[arg-type]
