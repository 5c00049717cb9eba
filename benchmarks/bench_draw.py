"""Time drawing every whole graph of both models: DOT source, then graphviz's SVG layout.

    python benchmarks/bench_draw.py [--repeats 3]

Prints, per graph, the nodes drawn and the median time of ``to_dot`` and of ``render_to_file``
(DOT source plus ``dot -Tsvg``) in milliseconds. Needs the graphviz ``dot`` binary.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from timing import median_ms

import irperf
from irperf.render import render_to_file, to_dot

GRAPHS = [
    (model, part, phase)
    for model in ("llama-3.2-11b-vision", "llama-3.2-90b-vision")
    for part, phase in (
        ("vision", "prefill"),
        ("text", "prefill"),
        ("text", "decode"),
        ("full", "prefill"),
        ("full", "decode"),
    )
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "g.svg"
        for model, part, phase in GRAPHS:
            g = (
                irperf.lower(model, part)
                if part == "vision"
                else irperf.lower(model, part, phase=phase)
            )
            source_ms = median_ms(lambda g=g: to_dot(g), args.repeats)
            drawing = render_to_file(g, out, "svg", collapse_repeats=None)
            svg_ms = median_ms(lambda g=g: render_to_file(g, out, "svg"), args.repeats)
            name = f"{model} {part}" + ("" if part == "vision" else f" {phase}")
            print(
                f"  {name:40s} {len(g):6,} nodes {drawing.nodes:6,} drawn  "
                f"DOT {source_ms:7.1f} ms  SVG {svg_ms:8.1f} ms"
            )


if __name__ == "__main__":
    main()
