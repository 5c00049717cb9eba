"""Roles: what a node is for in the model, set by lowering, read by policies and rules.

Tensor-parallel rules, precision policies, grids and homes key on a node's role and op class,
never on its name. A linear layer's weight, matmul and bias share the layer's role.
"""

from __future__ import annotations

import enum


class Role(enum.Enum):
    Q = "q"
    K = "k"
    V = "v"
    O = "o"  # noqa: E741 (the attention output projection: its usual name)
    FF1 = "ff1"  # gate projection (w1)
    FF2 = "ff2"  # down projection (w2)
    FF3 = "ff3"  # up projection (w3)
    FC1 = "fc1"  # vision MLP in
    FC2 = "fc2"  # vision MLP out
    CROSS_Q = "cross_q"
    CROSS_KV = "cross_kv"  # the K and V projections of the vision tokens (and their norm)
    CROSS_O = "cross_o"
    ATTENTION = "attention"  # the attention op itself (SDPA or its parts)
    ROPE = "rope"
    KV_CACHE = "kv_cache"  # cache tensors read in decode and the appends that write them
    PROJECTOR = "projector"
    LM_HEAD = "lm_head"
    EMBED = "embed"  # token, patch, class, positional and tile embeddings
    NORM = "norm"
    RESIDUAL = "residual"
    GATE = "gate"  # tanh gates of the gated layers
    ACTIVATION = "activation"  # silu, gelu and the gating multiply
    MASK = "mask"
    INPUT = "input"  # the request's own tensors: ids, pixels, RoPE tables
    COLLECTIVE = "collective"
    OTHER = "other"


ROLES: dict[str, Role] = {r.value: r for r in Role}

LINEAR_ROLES: frozenset[Role] = frozenset(
    {
        Role.Q,
        Role.K,
        Role.V,
        Role.O,
        Role.FF1,
        Role.FF2,
        Role.FF3,
        Role.FC1,
        Role.FC2,
        Role.CROSS_Q,
        Role.CROSS_KV,
        Role.CROSS_O,
        Role.PROJECTOR,
        Role.LM_HEAD,
    }
)
"""Roles of linear layers: their rank-2 weights are matmul weights, read or resident."""
