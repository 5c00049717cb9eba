"""Time the time model: op-time + schedule on the 90B full prefill graph split over T3000's 8
chips (placed by tt-metal's strategy and tiled first, outside the timing), and on text decoders
of growing depth (linear in size).

    python benchmarks/bench_time.py [--repeats 7]
"""

from __future__ import annotations

import argparse

import attrs
from timing import median_ms

import irperf
from lowering import load_model_config
from passes.op_time import OpTimePass
from passes.schedule import SchedulePass
from targets import load_target


def prepared(graph: irperf.Graph, target: str) -> irperf.Graph:
    spec = (
        f"tensor-parallel{{chips=8}},precision{{policy=tt-performance}},"
        f"place{{strategy=tt-metal,target={target}}},tiles{{target={target}}}"
    )
    return irperf.run(graph, spec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    t3000 = load_target("t3000")
    passes = [OpTimePass(target=t3000), SchedulePass(target=t3000)]
    g = prepared(irperf.lower("llama-3.2-90b-vision", "full", phase="prefill"), "t3000")
    ms = median_ms(lambda: irperf.run(g, passes), args.repeats)
    print(f"op-time + schedule, 90B full prefill on T3000: {len(g):,} nodes, {ms:.1f} ms")
    base = load_model_config("llama-3.2-90b-vision")
    for layers in (25, 50, 100):
        cross = tuple(range(3, layers, 5))
        text = attrs.evolve(base.text, num_hidden_layers=layers, cross_attention_layers=cross)
        t = prepared(irperf.lower(attrs.evolve(base, text=text), "text", phase="decode"), "t3000")
        ms = median_ms(lambda t=t: irperf.run(t, passes), args.repeats)
        per_node = 1e3 * ms / len(t)
        print(f"  {layers:3d} layers, {len(t):5,} nodes: {ms:6.1f} ms ({per_node:.1f} us/node)")


if __name__ == "__main__":
    main()
