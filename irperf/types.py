"""Frozen tensor types: a shape and an element format."""

from __future__ import annotations

from attrs import field, frozen

from irperf.checks import in_range, show
from irperf.dtypes import DType, tensor_bytes
from irperf.errors import TypeInferenceError

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


@frozen
class TensorType:
    """The type of a value in the graph. Dimensions are positive integers."""

    shape: tuple[int, ...] = field(converter=_shape)
    dtype: DType = field(validator=_dtype)

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
        """Exact storage size, block formats padded to whole tiles."""
        return tensor_bytes(self.shape, self.dtype)

    def with_shape(self, shape: tuple[int, ...]) -> TensorType:
        return TensorType(shape, self.dtype)

    def __str__(self) -> str:
        return f"{self.dtype}[{'x'.join(str(d) for d in self.shape)}]"
