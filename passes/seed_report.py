"""The seed post's three tables, regenerated from the graph and the passes.

"Analyzing Llama3.2-Vision Performance" (2024-10-12) costs the 40 vision transformer blocks of
Llama-3.2-11B-Vision (448 px tiles, 4128 tokens) under the matmul-only convention on an idealised
n300. Every number here is read from flops/bytes/roofline records of that graph.
"""

from __future__ import annotations

from typing import Any

from irperf.graph import Graph
from irperf.ops import SDPA
from irperf.units import MS_PER_S
from passes.bytes import Traffic
from passes.flops import FlopCount, attention_matmul_flops
from passes.roofline import RooflineTime, aggregate_roofline_s

SEED_MODEL = "llama-3.2-11b-vision"
SEED_TARGET = "n300-seed"
SEED_BLOCK = "vision.local.0"
SEED_BLOCK_KINDS = ("vision.local", "vision.global")

# The seed's label for each costed op of a block, by name inside the block. The attention node
# is one fused op; the FLOP table splits it into its two matmuls as the post does.
FLOP_LINES: tuple[tuple[str, str], ...] = (
    ("wq", "attn.wq"),
    ("wk", "attn.wk"),
    ("wv", "attn.wv"),
    ("wq @ wk", "attn.sdpa:qk"),
    ("scores @ wv", "attn.sdpa:sv"),
    ("wo", "attn.wo"),
    ("c_fc", "mlp.fc1"),
    ("c_proj", "mlp.fc2"),
)
BYTE_LINES: tuple[tuple[str, str], ...] = (
    ("wq", "attn.wq"),
    ("wk", "attn.wk"),
    ("wv", "attn.wv"),
    ("attn_out", "attn.sdpa"),
    ("wo", "attn.wo"),
    ("c_fc", "mlp.fc1"),
    ("c_proj", "mlp.fc2"),
)


def seed_pipeline() -> str:
    return (
        "flops{convention=matmul-only},bytes{convention=matmul-only},"
        f"roofline{{target={SEED_TARGET}}}"
    )


def _line_flops(graph: Graph, flops: Any, ref: str) -> tuple[str, int]:
    local, _, part = ref.partition(":")
    name = f"{SEED_BLOCK}.{local}"
    if not part:
        return name, int(flops[name].flops)
    node = graph.node(name)
    assert isinstance(node.op, SDPA)
    qk, sv = attention_matmul_flops(node.op, graph.operand_types(node))
    return name, qk if part == "qk" else sv


def seed_tables(graph: Graph) -> dict[str, Any]:
    """The three tables as a JSON-ready dict; ``graph`` has flops, bytes and roofline records."""
    flops = graph.records(FlopCount)
    traffic = graph.records(Traffic)
    times = graph.records(RooflineTime)
    flop_rows = []
    for label, ref in FLOP_LINES:
        node, f = _line_flops(graph, flops, ref)
        flop_rows.append({"op": label, "node": node, "flops": f})
    byte_rows = [
        {"op": label, "node": f"{SEED_BLOCK}.{ref}", "bytes": traffic[f"{SEED_BLOCK}.{ref}"].bytes}
        for label, ref in BYTE_LINES
    ]
    one = [n.name for n in graph.scope(SEED_BLOCK)]
    blocks = [n.name for n in graph if n.block and graph.blocks[n.block] in SEED_BLOCK_KINDS]
    n_blocks = len({graph.node(n).block for n in blocks})
    layers = []
    for count, names in ((1, one), (n_blocks, blocks)):
        f = sum(flops[n].flops for n in names)
        b = sum(traffic[n].bytes for n in names)
        layers.append(
            {"n_layers": count, "flops": f, "bytes": b, "gflops": f // 10**9, "mb": b // 10**6}
        )
    block_times = [times[n] for n in blocks]
    compute_ms = sum(t.compute_s for t in block_times) * MS_PER_S
    memory_ms = sum(t.memory_s for t in block_times) * MS_PER_S
    return {
        "model": graph.meta.get("model"),
        "target": SEED_TARGET,
        "per_op": {
            "flops": flop_rows,
            "flops_total": sum(r["flops"] for r in flop_rows),
            "bytes": byte_rows,
            "bytes_total": sum(r["bytes"] for r in byte_rows),
        },
        "layers": layers,
        "n300": {
            "compute_ms": compute_ms,
            "memory_ms": memory_ms,
            "total_ms": aggregate_roofline_s(block_times) * MS_PER_S,
        },
    }
