"""The ``decompose-attention`` transform: each fused SDPA becomes its parts, scores materialised.

This is the unfused baseline of fusion studies: the ``[B, heads, Sq, keys]`` scores become real
tensors that every part reads from and writes to DRAM. FLOPs are unchanged: the parts' rules add
up to SDPA's exactly, under both conventions.
"""

from __future__ import annotations

import math
from typing import ClassVar

from attrs import frozen

from irperf.graph import Graph, Node
from irperf.ops import (
    SDPA,
    Add,
    AttentionScores,
    AttentionValues,
    Constant,
    Input,
    Mul,
    Op,
    Softmax,
)
from irperf.pass_manager import Pass, PassResult, register_pass
from irperf.types import TensorType

SCORES, SCALE, SCALE_FACTOR, MASK, CAUSAL_MASK, SOFTMAX = (
    "scores",
    "scale",
    "scale_factor",
    "mask",
    "causal_mask",
    "softmax",
)
"""Name suffixes of the parts of a decomposed ``n = sdpa(q, k, v)`` (``n.scores``...)."""


def _decompose(out: Graph, node: Node) -> None:
    op = node.op
    assert isinstance(op, SDPA)
    q, k, v = node.operands
    n, dt = node.name, node.type.dtype

    def add(name: str, part: Op, *operands: str) -> Node:
        return out.add(name, part, operands, stage=node.stage, block=node.block)

    h, kvh, hd, kv_len = op.heads, op.kv_heads, op.head_dim, op.kv_len
    s = add(
        f"{n}.{SCORES}", AttentionScores(heads=h, kv_heads=kvh, head_dim=hd, kv_len=kv_len), q, k
    )
    c = add(f"{n}.{SCALE_FACTOR}", Constant(type=TensorType((1,), dt), value=1 / math.sqrt(hd)))
    x = add(f"{n}.{SCALE}", Mul(), s.name, c.name)
    if op.causal:
        *_, sq, keys = s.type.shape
        m = add(f"{n}.{CAUSAL_MASK}", Input(type=TensorType((1, 1, sq, keys), dt)))
        x = add(f"{n}.{MASK}", Add(), x.name, m.name)
    p = add(f"{n}.{SOFTMAX}", Softmax(axis=-1), x.name)
    # The values matmul takes over the SDPA's name, so the SDPA's users read it unchanged.
    add(n, AttentionValues(heads=h, kv_heads=kvh, head_dim=hd, kv_len=kv_len), p.name, v)


def decompose_attention(graph: Graph) -> tuple[Graph, bool]:
    """A new graph with every SDPA node decomposed, and whether there was any."""
    out = Graph.from_nodes((), like=graph)
    changed = False
    for node in graph:
        if isinstance(node.op, SDPA):
            _decompose(out, node)
            changed = True
        else:
            out.insert(node)
    return out, changed


@register_pass
@frozen(kw_only=True)
class DecomposeAttentionPass(Pass):
    """Rewrites each ``n = sdpa(q, k, v)`` into its parts (stage and block carry over):

    1. ``n.scores = attention_scores(q, k)``: ``[B, heads, Sq, keys]``, GQA by indexing
    2. ``n.scale = n.scores * n.scale_factor``: a Constant ``1/sqrt(head_dim)``
    3. ``n.mask = n.scale + n.causal_mask``: an Input ``[1, 1, Sq, keys]``, causal SDPA only
    4. ``n.softmax = softmax(n.mask or n.scale)`` over the keys
    5. ``n = attention_values(n.softmax, v)``: takes over the name, so users are unchanged
    """

    name: ClassVar[str] = "decompose-attention"
    summary: ClassVar[str] = "rewrite fused SDPA into scores, scale, mask, softmax, values"

    def run(self, graph: Graph) -> PassResult:
        out, changed = decompose_attention(graph)
        return PassResult(out if changed else graph, modified=changed)
