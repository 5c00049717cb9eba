"""Time each fusion strategy (plan, fused traffic, roofline) on the 11B vision part and the 90B
full prefill graph.

    python benchmarks/bench_fusion.py [--repeats 5]
"""

from __future__ import annotations

import argparse

from timing import median_ms

import irperf
from passes.fusion_report import run_strategy

STRATEGIES = ("none", "flash-attention", "epilogue", "qkv", "norm", "all", "greedy")
GRAPHS = (
    ("llama-3.2-11b-vision", "vision"),
    ("llama-3.2-90b-vision", "full"),
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    for model, part in GRAPHS:
        g = irperf.lower(model, part)
        print(f"{model} {part}: {len(g):,} nodes, median of {args.repeats} runs, target n300")
        for s in STRATEGIES:
            ms = median_ms(lambda g=g, s=s: run_strategy(g, s, target="n300"), args.repeats)
            print(f"  {s:16s} {ms:8.1f} ms")


if __name__ == "__main__":
    main()
