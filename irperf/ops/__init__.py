"""Op families. Each op is a frozen attrs class holding attributes only, never operands."""

from irperf.ops.attention import SDPA, Attention, AttentionScores, AttentionValues
from irperf.ops.base import Op, OpFamily, broadcast_shapes
from irperf.ops.elementwise import (
    Add,
    Binary,
    Div,
    Exp,
    Gelu,
    Mul,
    Rope,
    Rsqrt,
    Silu,
    Sub,
    Tanh,
    Unary,
)
from irperf.ops.embedding import Embedding
from irperf.ops.linalg import Conv2d, MatMul
from irperf.ops.movement import (
    CacheAppend,
    Concat,
    Expand,
    Movement,
    Pad,
    Reshape,
    Slice,
    Transpose,
)
from irperf.ops.norm import LayerNorm, Norm, RMSNorm, Softmax
from irperf.ops.source import Constant, Input, Source, Weight

__all__ = [
    "SDPA",
    "Add",
    "Attention",
    "AttentionScores",
    "AttentionValues",
    "Binary",
    "CacheAppend",
    "Concat",
    "Constant",
    "Conv2d",
    "Div",
    "Embedding",
    "Exp",
    "Expand",
    "Gelu",
    "Input",
    "LayerNorm",
    "MatMul",
    "Movement",
    "Mul",
    "Norm",
    "Op",
    "OpFamily",
    "Pad",
    "RMSNorm",
    "Reshape",
    "Rope",
    "Rsqrt",
    "Silu",
    "Slice",
    "Softmax",
    "Source",
    "Sub",
    "Tanh",
    "Transpose",
    "Unary",
    "Weight",
    "broadcast_shapes",
]
