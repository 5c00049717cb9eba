"""How a tensor lies over the chips of a mesh: replicated, split on one dimension, or a partial sum.

A node's type is its **per-chip** shape; its layout says how the global tensor follows from it,
as XLA's and JAX's shardings do:

- ``replicated``: every chip holds the whole tensor (the global shape is the shape);
- ``sharded``: the tensor is split on dimension ``dim`` over ``parts`` chips along mesh ``axis``
  (the global shape has ``dim`` ``parts`` times larger);
- ``partial``: every chip holds a full-shaped addend; the tensor is their sum over ``parts``
  chips (after a row-parallel matmul, before its all-reduce or reduce-scatter).

Memory homes and tiles are a later layer; they will sit beside this record, not in it.
"""

from __future__ import annotations

import functools
from typing import Literal

from attrs import frozen

from irperf.checks import show
from irperf.errors import TypeInferenceError

LayoutKind = Literal["replicated", "sharded", "partial"]
MAX_CHIPS = 1024
"""The most chips a layout spans (a mesh axis): more is a typo, not a machine."""
MESH_AXES = (0, 1)
"""A mesh is a grid of chips: axis 0 its rows, axis 1 its columns."""
TP_AXIS = 1
"""The mesh axis tensor parallelism runs over: the columns of a 1xN mesh (n300 1x2, T3000 1x8)."""


@frozen
class Layout:
    kind: LayoutKind = "replicated"
    dim: int | None = None
    parts: int = 1
    axis: int = TP_AXIS

    def __attrs_post_init__(self) -> None:
        if self.kind not in ("replicated", "sharded", "partial"):
            raise TypeInferenceError(f"unknown layout kind {show(self.kind)}")
        if (self.kind == "sharded") != (self.dim is not None):
            raise TypeInferenceError("a sharded layout names its dimension; no other layout does")
        if self.kind == "replicated" and self.parts != 1:
            raise TypeInferenceError("a replicated layout has one part")
        if self.kind != "replicated" and not (type(self.parts) is int and self.parts >= 2):
            raise TypeInferenceError(f"a {self.kind} layout spans 2 or more chips")
        if self.dim is not None and not (type(self.dim) is int and self.dim >= 0):
            raise TypeInferenceError(f"a layout's dimension is a non-negative integer: {self.dim}")
        if self.parts > MAX_CHIPS:
            raise TypeInferenceError(
                f"a layout spans at most {MAX_CHIPS:,} chips, got {self.parts}"
            )
        if self.axis not in MESH_AXES:
            raise TypeInferenceError(f"a mesh axis is 0 (rows) or 1 (columns), got {self.axis!r}")

    @property
    def replicated(self) -> bool:
        return self.kind == "replicated"

    @property
    def sharded(self) -> bool:
        return self.kind == "sharded"

    @property
    def partial(self) -> bool:
        return self.kind == "partial"

    def global_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The whole tensor's shape from one chip's."""
        if self.dim is None:
            return shape
        out = list(shape)
        out[self.dim] *= self.parts
        return tuple(out)

    def __str__(self) -> str:
        on = "" if self.axis == TP_AXIS else f" axis {self.axis}"
        if self.kind == "sharded":
            return f"split(d{self.dim}/{self.parts}{on})"
        if self.kind == "partial":
            return f"partial(/{self.parts}{on})"
        return "replicated"


REPLICATED = Layout()


@functools.lru_cache(maxsize=4096)
def sharded(dim: int, parts: int, axis: int = TP_AXIS) -> Layout:
    return Layout("sharded", dim, parts, axis)  # a few distinct values, asked for per node


@functools.lru_cache(maxsize=1024)
def partial(parts: int, axis: int = TP_AXIS) -> Layout:
    return Layout("partial", None, parts, axis)
