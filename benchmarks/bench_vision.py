"""Time lowering and each analysis pass on the 90B vision part (encoder + projector).

    python benchmarks/bench_vision.py [--repeats 20]

Prints the median of each step in milliseconds.
"""

from __future__ import annotations

import argparse

from timing import median_ms

import irperf
from irperf.graph import Graph
from irperf.verify import verify

MODEL = "llama-3.2-90b-vision"
STEPS = (
    "flops{convention=full}",
    "bytes{convention=full}",
    "params",
    "roofline{target=n300-seed}",
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    irperf.run(irperf.lower(MODEL, part="vision"), "params")  # warm imports and caches

    g: Graph = irperf.lower(MODEL, part="vision")
    rows = [
        (
            "lower (vision + projector)",
            median_ms(lambda: irperf.lower(MODEL, "vision"), args.repeats),
        )
    ]
    rows.append(("verify", median_ms(lambda: verify(g), args.repeats)))
    done = g
    for step in STEPS:  # each pass on a graph holding the records of the ones before it
        rows.append((step, median_ms(lambda s=step, h=done: irperf.run(h, s), args.repeats)))
        done = irperf.run(done, step)

    def whole() -> None:
        h = irperf.lower(MODEL, part="vision")
        irperf.run(h, ",".join(STEPS))

    rows.append(("lower + all passes", median_ms(whole, args.repeats)))
    print(f"{MODEL} vision part: {len(g):,} nodes, median of {args.repeats} runs")
    for name, ms in rows:
        print(f"  {name:32s} {ms:8.1f} ms")


if __name__ == "__main__":
    main()
