"""Time lowering, each pass and the report on whole-model graphs (vision + projector + decoder).

    python benchmarks/bench_full.py [--repeats 7] [--model llama-3.2-90b-vision]

For the 90B prefill (one image, 128 prompt tokens) and decode (context 1024) graphs, prints the
median of each step in milliseconds (``time.perf_counter``), then the whole path the budget is
about: lowering plus every analysis pass (flops, bytes, params, roofline, memory).
"""

from __future__ import annotations

import argparse
from typing import Any

from timing import median_ms

import irperf
from irperf.graph import Graph
from irperf.verify import verify
from passes.summary import report

PASSES = (
    "flops{convention=matmul-only}",
    "bytes{convention=matmul-only}",
    "params",
    "roofline{target=n300-seed}",
    "memory",
)
PHASES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("prefill", {"phase": "prefill"}),
    ("decode", {"phase": "decode"}),
)


def bench(model: str, options: dict[str, Any], repeats: int) -> list[tuple[str, float]]:
    def lower() -> Graph:
        return irperf.lower(model, "full", **options)

    g = lower()
    rows = [("lower", median_ms(lower, repeats)), ("verify", median_ms(lambda: verify(g), repeats))]
    done = g
    for step in PASSES:  # each pass on a graph holding the records of the ones before it
        rows.append((step, median_ms(lambda s=step, h=done: irperf.run(h, s), repeats)))
        done = irperf.run(done, step)
    analysed = irperf.run(lower(), ",".join(PASSES))
    rows.append(("report (JSON object)", median_ms(lambda: report(analysed), repeats)))

    def whole() -> None:
        irperf.run(lower(), ",".join(PASSES))

    rows.append(("lower + all passes", median_ms(whole, repeats)))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--model", default="llama-3.2-90b-vision")
    args = ap.parse_args()
    irperf.run(irperf.lower(args.model, "full"), ",".join(PASSES))  # warm imports and caches
    for phase, options in PHASES:
        nodes = len(irperf.lower(args.model, "full", **options))
        print(f"{args.model} full {phase}: {nodes:,} nodes, median of {args.repeats} runs")
        for name, ms in bench(args.model, options, args.repeats):
            print(f"  {name:32s} {ms:8.1f} ms")


if __name__ == "__main__":
    main()
