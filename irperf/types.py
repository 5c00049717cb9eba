"""Frozen tensor types: a shape and an element format."""

from __future__ import annotations

from attrs import field, frozen

from irperf.checks import in_range, show
from irperf.dtypes import DType, tensor_bytes
from irperf.errors import TypeInferenceError
from irperf.layout import REPLICATED, Layout

MAX_DIM = 2**62
"""A dimension larger than this is a bug, not a tensor (every in-range config stays below)."""


def _shape(value: tuple[int, ...]) -> tuple[int, ...]:
    try:
        dims = tuple(value)
    except TypeError:
        raise TypeInferenceError(f"a shape is a tuple of integers, got {show(value)}") from None
    if all(type(d) is int and 0 < d <= MAX_DIM for d in dims):  # every node's type: fast path
        return dims
    for d in dims:
        if not in_range(d, 1, MAX_DIM, integer=True):
            raise TypeInferenceError(
                f"shape {show(dims)} has a dimension that is not an integer from 1 to 2^62"
            )
    return dims


def _dtype(inst: object, attribute: object, value: DType) -> None:
    if not isinstance(value, DType):
        raise TypeInferenceError(f"a tensor's dtype must be a DType, got {show(value)}")


def _layout(inst: TensorType, attribute: object, value: Layout) -> None:
    if value is REPLICATED:
        return
    if not isinstance(value, Layout):
        raise TypeInferenceError(f"a tensor's layout must be a Layout, got {show(value)}")
    if value.dim is not None and value.dim >= len(inst.shape):
        raise TypeInferenceError(f"layout {value} names a dimension a {inst.shape} tensor lacks")


@frozen
class TensorType:
    """The type of a value in the graph: its per-chip shape, its format, and how the chips hold
    it (``layout``; replicated unless tensor parallelism split it). Dimensions are positive."""

    shape: tuple[int, ...] = field(converter=_shape)
    dtype: DType = field(validator=_dtype)
    layout: Layout = field(default=REPLICATED, validator=_layout)

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def nbytes(self) -> int:
        """Exact storage size on one chip, block formats padded to whole tiles."""
        return tensor_bytes(self.shape, self.dtype)

    @property
    def global_shape(self) -> tuple[int, ...]:
        """The whole tensor's shape over every chip that holds part of it."""
        return self.layout.global_shape(self.shape)

    @property
    def global_numel(self) -> int:
        n = 1
        for d in self.global_shape:
            n *= d
        return n

    def with_shape(self, shape: tuple[int, ...]) -> TensorType:
        """The same format with another shape, replicated (an op's inference starts from this;
        the op's layout rule then says how its result lies over the chips)."""
        return TensorType(shape, self.dtype)

    def with_layout(self, layout: Layout) -> TensorType:
        """The same shape and format, laid out otherwise (checked: the layout's dimension must
        exist). Skips re-checking the shape, which this type's construction already did."""
        _layout(self, None, layout)
        out = object.__new__(TensorType)
        object.__setattr__(out, "shape", self.shape)
        object.__setattr__(out, "dtype", self.dtype)
        object.__setattr__(out, "layout", layout)
        return out

    def __str__(self) -> str:
        text = f"{self.dtype}[{'x'.join(str(d) for d in self.shape)}]"
        return text if self.layout.replicated else f"{text}@{self.layout}"
