"""A user fusion strategy: every built-in rule, plus residual adds fused into the next norm.

Fused add + norm kernels are common (``x = x + f(x); h = norm(x)`` in one pass over ``x``). A
strategy is a rule table, one ``FusionRule`` per line; tables compose with ``+``. Register it and
compare it with the built-ins from the command line::

    irperf fusion llama-3.2-11b-vision --part vision --target n300 \\
        --load examples/custom_fusion_strategy.py --compare all,add-norm

or from Python: ``python examples/custom_fusion_strategy.py``.
"""

from __future__ import annotations

from irperf.graph import Node
from irperf.ops import Add, Norm
from passes.fusion_rules import ALL, FusionRule, FusionRules, RuleContext, register_strategy


def feeds_norm(ctx: RuleContext, add: Node, norm: Node) -> bool:
    """The sum is what the norm normalises (its first operand), not one of its weights."""
    return norm.operands[0] == add.name


ADD_NORM: FusionRules = [
    FusionRule("add-norm", Add, Norm, feeds_norm),  # norm(x + r): the sum is normalised on chip
]

STRATEGY = register_strategy(
    "add-norm", ALL + ADD_NORM, description="all, plus residual adds fused into the next norm"
)


def main() -> None:
    import irperf
    from passes.fusion_report import compare

    graph = irperf.lower("llama-3.2-11b-vision", part="vision")
    for row in compare(graph, ["all", "add-norm"], target="n300"):
        lat = row["latency_ms"]
        print(
            f"{row['strategy']:10s} {row['dram_bytes']:>18,} B  "
            f"per-op roofline {lat['per_op_roofline']:8.3f} ms"
        )


if __name__ == "__main__":
    main()
