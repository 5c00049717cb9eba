"""A user pass: count transcendental evaluations (exp, erf, tanh, rsqrt) per layer.

Register it by decorator and run it from the command line::

    irperf run llama-3.2-11b-vision --part vision \
        --load examples/transcendentals_per_layer.py \
        --passes "flops{convention=full},transcendentals-per-layer"

or from Python: ``python examples/transcendentals_per_layer.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from attrs import frozen

import irperf
from passes.flops import FlopCount


@frozen(kw_only=True)
class LayerTranscendentals:
    """Transcendentals of one layer (a block scope such as ``vision.local.3``)."""

    block_kind: str
    transcendentals: int

    def __add__(self, other: LayerTranscendentals) -> LayerTranscendentals:
        return LayerTranscendentals(
            block_kind="*", transcendentals=self.transcendentals + other.transcendentals
        )


@irperf.register_pass
@frozen(kw_only=True)
class TranscendentalsPerLayer(irperf.AnalysisPass):
    """Sums the flops pass's transcendentals over each block; records are keyed by block scope."""

    name: ClassVar[str] = "transcendentals-per-layer"
    summary: ClassVar[str] = "transcendental evaluations per layer (example user pass)"
    record_type: ClassVar[type] = LayerTranscendentals
    requires: ClassVar[tuple[type, ...]] = (FlopCount,)

    def analyze(self, graph: irperf.Graph) -> Mapping[str, LayerTranscendentals]:
        flops = graph.records(FlopCount)
        per_block: dict[str, int] = dict.fromkeys(graph.blocks, 0)
        for node in graph:
            if node.block is not None:
                per_block[node.block] += flops[node.name].transcendentals
        return {
            block: LayerTranscendentals(block_kind=graph.blocks[block], transcendentals=n)
            for block, n in per_block.items()
        }


def main() -> None:
    g = irperf.lower("llama-3.2-11b-vision", part="vision")
    g = irperf.run(g, "flops{convention=full},transcendentals-per-layer")
    for block, rec in list(g.records(LayerTranscendentals).items())[:3]:
        print(f"{block:18s} {rec.block_kind:14s} {rec.transcendentals:>14,}")
    print("...")


if __name__ == "__main__":
    main()
