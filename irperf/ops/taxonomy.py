"""The op groups passes share, stated once. ``OpFamily`` says what an op is (for pictures and
reports); these say how passes treat it."""

from __future__ import annotations

from irperf.ops.attention import SDPA, Attention
from irperf.ops.base import Op
from irperf.ops.collective import AllGather, AllReduce, MeshSplit, ReduceScatter, Typecast
from irperf.ops.elementwise import Binary, Rope, Unary
from irperf.ops.embedding import Embedding
from irperf.ops.linalg import Conv2d, MatMul
from irperf.ops.movement import CacheAppend, MemoryMove, Movement, Reshape
from irperf.ops.norm import Norm, Softmax
from irperf.ops.source import Source

CONTRACTIONS: tuple[type[Op], ...] = (MatMul, Conv2d, Attention)
"""Matrix-engine work: what the ``matmul-only`` convention counts (PyTorch's FlopCounterMode,
the seed post) and what a precision policy's fidelity applies to."""
VIEWS: tuple[type[Op], ...] = (Reshape,)
"""Ops whose result is their operand's storage, and which move nothing."""
ALIASES: tuple[type[Op], ...] = (*VIEWS, CacheAppend)
"""Ops whose result lives in their first operand's storage: readers of the result read it."""
PLACEMENT_MOVES: tuple[type[Op], ...] = (MemoryMove,)
"""Copies the placement adds (spills, reshards): real traffic under every convention, since no
FLOP convention narrows where a placement puts bytes."""

OP_CLASSES: tuple[tuple[type[Op], str], ...] = (
    (SDPA, "attention"),
    (MatMul, "matmul"),
    (Attention, "matmul"),  # decomposed attention's products run as batched matmuls
    (Conv2d, "conv2d"),
    (Softmax, "softmax"),
    (Norm, "norm"),
    (Binary, "binary"),
    (Unary, "unary"),
    (Rope, "rope"),
    (Embedding, "embedding"),
    (AllGather, "all_gather"),
    (ReduceScatter, "reduce_scatter"),
    (AllReduce, "all_reduce"),
    (Typecast, "typecast"),
    (CacheAppend, "cache_update"),
    (Movement, "data_movement"),
)
"""The classes a device profile's ops are told apart by (``targets/profile.py`` maps tt-metal's
op codes onto them); the first entry an op is an instance of names its class."""


def op_class(op: Op) -> str | None:
    """The op's class in ``OP_CLASSES``; None for what dispatches no device op (sources, views,
    a mesh split)."""
    if isinstance(op, (Source, *VIEWS, MeshSplit)):
        return None
    for cls, name in OP_CLASSES:
        if isinstance(op, cls):
            return name
    return None
