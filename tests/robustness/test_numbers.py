"""Numeric flags at every edge (0, negative, huge, non-integer, NaN, inf, many digits): exit code
2 with one line, or a result whose numbers are finite and add up."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tests.robustness.outcome import assert_analysis_invariants, check_cli, robust

NASTY = [
    "0",
    "-1",
    "1",
    "2",
    "1.5",
    "1e308",
    "-1e308",
    "5e-324",
    "1e-320",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "9" * 400,
    "9" * 5000,
    "",
    "abc",
    "0x10",
    "1_000",
    " 3",
    "٣",  # an Arabic-Indic digit: int() takes it
]
numbers = st.one_of(
    st.sampled_from(NASTY),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)

VISION = ["analyze", "llama-3.2-11b-vision", "--part", "vision"]
DECODE = ["analyze", "llama-3.2-11b-vision", "--part", "text", "--phase", "decode"]
PREFILL = ["analyze", "llama-3.2-11b-vision", "--part", "text"]
REQUESTS = [
    (VISION, "--batch"),
    (VISION, "--images"),
    (VISION, "--tiles"),
    (VISION, "--mfu"),
    (DECODE, "--context"),
    (DECODE, "--batch"),
    (PREFILL, "--seq-len"),
    (PREFILL, "--images"),
    ([*VISION, "--target", "n300"], "--tp"),
    ([*DECODE, "--target", "t3000"], "--tp"),
]


@robust
@given(request=st.sampled_from(REQUESTS), value=numbers, json=st.booleans())
def test_analyze_numbers(request: tuple[list[str], str], value: str, json: bool) -> None:
    base, flag = request
    argv = [*base, f"{flag}={value}", *(["--json"] if json else [])]
    report = check_cli(argv)
    if report is not None:
        assert_analysis_invariants(report, " ".join(argv))


FUSION = ["fusion", "llama-3.2-11b-vision", "--part", "vision"]


@robust
@given(
    flags=st.sampled_from(
        [
            ["--opportunities", "--top"],
            ["--compare", "none,greedy", "--capacity-bytes"],
            ["--strategy", "greedy", "--capacity-bytes"],
            ["--compare", "none,all", "--batch"],
        ]
    ),
    value=numbers,
)
def test_fusion_numbers(flags: list[str], value: str) -> None:
    check_cli([*FUSION, *flags[:-1], f"{flags[-1]}={value}", "--json"])
