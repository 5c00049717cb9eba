"""The worked example user pass in examples/ registers, runs and counts by formula."""

from __future__ import annotations

from pathlib import Path

import irperf
from irperf.cli import main
from irperf.plugins import load_plugin

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "transcendentals_per_layer.py"


def load_example():  # type: ignore[no-untyped-def]
    return load_plugin(str(EXAMPLE))


def test_transcendentals_per_layer_by_formula() -> None:
    mod = load_example()
    g = irperf.run(
        irperf.lower("llama-3.2-11b-vision", part="vision"),
        "flops{convention=full},transcendentals-per-layer",
    )
    recs = g.records(mod.LayerTranscendentals)
    s, heads, mlp = 4128, 16, 5120
    # softmax exps over 16 x S x S scores, one erf per GELU input, one rsqrt per row of 2 norms.
    local = heads * s * s + s * mlp + 2 * s
    assert recs["vision.local.0"].transcendentals == local
    # A global block adds tanh of its two one-element gates.
    assert recs["vision.global.0"].transcendentals == local + 2
    assert len(recs) == 32 + 8


def test_cli_loads_the_example(capsys) -> None:  # type: ignore[no-untyped-def]
    code = main(
        [
            "run",
            "llama-3.2-11b-vision",
            "--part",
            "vision",
            "--load",
            str(EXAMPLE),
            "--passes",
            "flops{convention=full},transcendentals-per-layer",
        ]
    )
    assert code == 0
    assert "LayerTranscendentals" in capsys.readouterr().out
