"""Counting conventions shared by the flops and bytes passes."""

from __future__ import annotations

from typing import Literal

from irperf.ops import Op
from irperf.ops.taxonomy import CONTRACTIONS

Convention = Literal["matmul-only", "full"]
CONVENTIONS: tuple[str, ...] = ("matmul-only", "full")

MATMUL_ONLY_OPS: tuple[type[Op], ...] = CONTRACTIONS
"""What PyTorch's FlopCounterMode and the seed post count: everything else costs nothing."""


def counts(convention: str, op: Op) -> bool:
    """Whether ``op`` costs anything (FLOPs or bytes) under ``convention``."""
    return convention == "full" or isinstance(op, MATMUL_ONLY_OPS)
