"""Layer helpers shared by the vision and text lowerings: linear, norms, gates."""

from __future__ import annotations

from irperf.builder import Builder, Value
from irperf.dtypes import DType
from irperf.graph import Graph
from irperf.ops import Add, LayerNorm, MatMul, Mul, RMSNorm, Tanh, Weight


def linear(
    b: Builder,
    x: Value,
    in_features: int,
    out_features: int,
    *,
    name: str,
    dtype: DType,
    bias: bool = False,
) -> Value:
    """``x @ W (+ bias)``: weight ``name.weight`` ``[in, out]``, matmul ``name``, bias ``name.bias``
    added by ``name.bias_add``."""
    w = b.weight(f"{name}.weight", (in_features, out_features), dtype)
    y = b.add(MatMul(), x, w, name=name)
    if bias:
        bv = b.weight(f"{name}.bias", (out_features,), dtype)
        y = b.add(Add(), y, bv, name=f"{name}.bias_add")
    return y


def layernorm(b: Builder, x: Value, *, name: str, eps: float, dtype: DType) -> Value:
    d = x.shape[-1]
    w = b.weight(f"{name}.weight", (d,), dtype)
    bias = b.weight(f"{name}.bias", (d,), dtype)
    return b.add(LayerNorm(eps=eps), x, w, bias, name=name)


def rmsnorm(b: Builder, x: Value, *, name: str, eps: float, dtype: DType) -> Value:
    w = b.weight(f"{name}.weight", (x.shape[-1],), dtype)
    return b.add(RMSNorm(eps=eps), x, w, name=name)


def tanh_gate(b: Builder, x: Value, *, name: str, dtype: DType) -> Value:
    """``tanh(gate) * x`` with a one-element parameter ``name`` (``name.tanh``, ``name.mul``)."""
    g = b.weight(name, (1,), dtype)
    t = b.add(Tanh(), g, name=f"{name}.tanh")
    return b.add(Mul(), x, t, name=f"{name}.mul")


def copy_weights(source: Graph, into: Graph) -> None:
    """Copy the weights (and block records) of ``source``, lowered apart, into ``into``.

    For parameters a phase keeps resident but does not read (a skipped layer, an encoder that
    ran in an earlier phase): they count in params and weight memory, cost no FLOPs or bytes.
    """
    for node in source:
        if isinstance(node.op, Weight):
            into.insert(node)
    for block, kind in source.blocks.items():
        into.blocks.setdefault(block, kind)
