"""Counting conventions shared by the flops and bytes passes."""

from __future__ import annotations

from typing import Literal

from irperf.ops import Op
from irperf.ops.taxonomy import CONTRACTIONS, PLACEMENT_MOVES

Convention = Literal["matmul-only", "full"]
CONVENTIONS: tuple[str, ...] = ("matmul-only", "full")

MATMUL_ONLY_OPS: tuple[type[Op], ...] = CONTRACTIONS
"""What PyTorch's FlopCounterMode and the seed post count: everything else costs nothing."""

_COUNTED = MATMUL_ONLY_OPS + PLACEMENT_MOVES


def counts(convention: str, op: Op) -> bool:
    """Whether ``op`` costs anything (FLOPs or bytes) under ``convention``: the placement's
    copies (spills, reshards) always move their bytes."""
    return convention == "full" or isinstance(op, _COUNTED)
