"""The op groups passes share, stated once. ``OpFamily`` says what an op is (for pictures and
reports); these say how passes treat it."""

from __future__ import annotations

from irperf.ops.attention import Attention
from irperf.ops.base import Op
from irperf.ops.linalg import Conv2d, MatMul
from irperf.ops.movement import CacheAppend, MemoryMove, Reshape

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
