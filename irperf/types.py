"""Frozen tensor types: a shape and an element format."""

from __future__ import annotations

from attrs import field, frozen

from irperf.dtypes import DType, tensor_bytes
from irperf.errors import TypeInferenceError


def _shape(value: tuple[int, ...]) -> tuple[int, ...]:
    dims = tuple(value)
    for d in dims:
        if not isinstance(d, int) or isinstance(d, bool) or d <= 0:
            raise TypeInferenceError(f"shape {dims} has a non-positive or non-integer dimension")
    return dims


@frozen
class TensorType:
    """The type of a value in the graph. Dimensions are positive integers."""

    shape: tuple[int, ...] = field(converter=_shape)
    dtype: DType

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
