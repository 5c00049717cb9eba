"""Layer helpers shared by the vision and text lowerings: formats, linear, norms, gates."""

from __future__ import annotations

from attrs import frozen

from irperf.builder import Builder, Value
from irperf.dtypes import DType
from irperf.graph import Graph
from irperf.ops import Add, LayerNorm, MatMul, Mul, RMSNorm, Tanh, Weight
from irperf.roles import Role


@frozen(kw_only=True)
class Formats:
    """The element formats of one lowering.

    ``weights``: the weight of every ``linear`` layer (lm_head and the projector included), which
    may be a block format (tt-metal runs BFP8/BFP4 matmul weights against BF16 activations).
    ``activations``: every other tensor: activations, KV caches, inputs, embedding and positional
    tables, norm weights, biases, gates and the patch-embedding kernel. A block format pads each
    tensor to 32x32 tiles, which only matmul weights are laid out for.
    """

    activations: DType
    weights: DType


def linear_weight(
    b: Builder, in_features: int, out_features: int, *, name: str, fmt: Formats, role: Role
) -> Value:
    """The ``[in, out]`` weight ``name.weight`` of a linear layer, in the weight format."""
    with b.role(role):
        return b.weight(f"{name}.weight", (in_features, out_features), fmt.weights)


def linear(
    b: Builder,
    x: Value,
    in_features: int,
    out_features: int,
    *,
    name: str,
    fmt: Formats,
    role: Role,
    bias: bool = False,
) -> Value:
    """``x @ W (+ bias)``: weight ``name.weight`` ``[in, out]``, matmul ``name``, bias ``name.bias``
    added by ``name.bias_add``, all four of the layer's ``role``. The result and the bias take
    the activation format."""
    w = linear_weight(b, in_features, out_features, name=name, fmt=fmt, role=role)
    with b.role(role):
        y = b.add(MatMul(), x, w, name=name)
        if bias:
            bv = b.weight(f"{name}.bias", (out_features,), fmt.activations)
            y = b.add(Add(), y, bv, name=f"{name}.bias_add")
    return y


def layernorm(b: Builder, x: Value, *, name: str, eps: float, fmt: Formats) -> Value:
    d = x.shape[-1]
    with b.role(Role.NORM):
        w = b.weight(f"{name}.weight", (d,), fmt.activations)
        bias = b.weight(f"{name}.bias", (d,), fmt.activations)
        return b.add(LayerNorm(eps=eps), x, w, bias, name=name)


def rmsnorm(b: Builder, x: Value, *, name: str, eps: float, fmt: Formats) -> Value:
    with b.role(Role.NORM):
        w = b.weight(f"{name}.weight", (x.shape[-1],), fmt.activations)
        return b.add(RMSNorm(eps=eps), x, w, name=name)


def tanh_gate(b: Builder, x: Value, *, name: str, fmt: Formats) -> Value:
    """``tanh(gate) * x`` with a one-element parameter ``name`` (``name.tanh``, ``name.mul``)."""
    with b.role(Role.GATE):
        g = b.weight(name, (1,), fmt.activations)
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
