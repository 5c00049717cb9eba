"""Op families. Each op is a frozen attrs class holding attributes only, never operands."""

from irperf.ops.attention import SDPA, Attention, AttentionScores, AttentionValues
from irperf.ops.base import Op, OpFamily, broadcast_shapes
from irperf.ops.collective import (
    AllGather,
    AllReduce,
    Collective,
    MeshSplit,
    ReduceScatter,
    Typecast,
)
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
    "AllGather",
    "AllReduce",
    "Attention",
    "AttentionScores",
    "AttentionValues",
    "Binary",
    "CacheAppend",
    "Collective",
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
    "MeshSplit",
    "Movement",
    "Mul",
    "Norm",
    "Op",
    "OpFamily",
    "Pad",
    "RMSNorm",
    "ReduceScatter",
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
    "Typecast",
    "Unary",
    "Weight",
    "broadcast_shapes",
]
