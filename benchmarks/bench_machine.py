"""Time the machine transforms: tensor-parallel + a precision policy, on the 90B full prefill
graph for T3000 (8 chips) and n300 (2), and on text decoders of growing depth (linear in size);
then the placement (the whole ``place`` pass: walk, spills and reshards as ops) under
l1-greedy and time on the same graphs.

    python benchmarks/bench_machine.py [--repeats 7]
"""

from __future__ import annotations

import argparse

import attrs
from timing import median_ms

import irperf
from lowering import load_model_config
from passes.placement import PlacePass
from passes.precision import apply_policy, load_policy
from passes.tensor_parallel import tensor_parallel
from targets import load_target


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    policy = load_policy("tt-performance")
    g = irperf.lower("llama-3.2-90b-vision", "full", phase="prefill")
    print(f"llama-3.2-90b-vision full prefill: {len(g):,} nodes, median of {args.repeats} runs")
    for chips in (8, 2):
        tp = median_ms(lambda c=chips: tensor_parallel(g, c), args.repeats)
        both = median_ms(lambda c=chips: apply_policy(tensor_parallel(g, c), policy), args.repeats)
        print(f"  {chips} chips: tensor-parallel {tp:6.1f} ms, + tt-performance {both:6.1f} ms")
    print("text decode, tensor-parallel x8 + tt-performance, by depth (time per node):")
    base = load_model_config("llama-3.2-90b-vision")
    for layers in (25, 50, 100):  # every fifth layer a cross layer, as in the 90B
        cross = tuple(range(3, layers, 5))
        text = attrs.evolve(base.text, num_hidden_layers=layers, cross_attention_layers=cross)
        t = irperf.lower(attrs.evolve(base, text=text), "text", phase="decode")
        ms = median_ms(lambda t=t: apply_policy(tensor_parallel(t, 8), policy), args.repeats)
        per_node = 1e3 * ms / len(t)
        print(f"  {layers:3d} layers, {len(t):5,} nodes: {ms:6.1f} ms ({per_node:.1f} us/node)")
    t3000 = load_target("t3000")
    placed = apply_policy(tensor_parallel(g, 8), policy)
    for strategy in ("l1-greedy", "time"):
        place = PlacePass(strategy=strategy, target=t3000)
        ms = median_ms(lambda p=place: p.run(placed.clone()), args.repeats)
        print(f"place {strategy}, 90B full prefill for T3000: {len(placed):,} nodes, {ms:.1f} ms")
        for layers in (25, 50, 100):
            cross = tuple(range(3, layers, 5))
            text = attrs.evolve(base.text, num_hidden_layers=layers, cross_attention_layers=cross)
            decoder = irperf.lower(attrs.evolve(base, text=text), "text", phase="decode")
            t = apply_policy(tensor_parallel(decoder, 8), policy)
            ms = median_ms(lambda t=t, p=place: p.run(t.clone()), args.repeats)
            per_node = 1e3 * ms / len(t)
            print(f"  {layers:3d} layers, {len(t):5,} nodes: {ms:6.1f} ms ({per_node:.1f} us/node)")


if __name__ == "__main__":
    main()
