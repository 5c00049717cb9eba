"""Data types with exact byte sizes, Tenstorrent block formats counted per 32x32 tile."""

from __future__ import annotations

from attrs import frozen

from irperf.checks import show
from irperf.errors import IrperfError

TILE = 32
"""Side of the square tile every Tenstorrent format and kernel works in."""

TILE_ELEMENTS = TILE * TILE


@frozen
class DType:
    """An element format.

    Scalar formats have ``element_bytes``; block formats (BFP8_b, BFP4_b, ...) share one exponent
    per 16 values and are only addressable as whole 32x32 tiles, so they carry ``tile_bytes``
    instead and a tensor's size is a whole number of tiles.
    """

    name: str
    element_bytes: int | None
    tile_bytes: int
    is_float: bool = True

    @property
    def is_block(self) -> bool:
        return self.element_bytes is None

    def __str__(self) -> str:
        return self.name


def _scalar(name: str, nbytes: int, *, is_float: bool = True) -> DType:
    return DType(name, nbytes, nbytes * TILE_ELEMENTS, is_float)


FP32 = _scalar("fp32", 4)
BF16 = _scalar("bf16", 2)
FP16 = _scalar("fp16", 2)
FP8 = _scalar("fp8", 1)
INT32 = _scalar("int32", 4, is_float=False)
# Block floats: 1024 mantissa bytes (8 bits) or 512 (4 bits) or 256 (2 bits) per tile, plus 64
# shared-exponent bytes (one per 16 values).
BFP8_B = DType("bfp8_b", None, 1024 + 64)
BFP4_B = DType("bfp4_b", None, 512 + 64)
BFP2_B = DType("bfp2_b", None, 256 + 64)

DTYPES: dict[str, DType] = {
    d.name: d for d in (FP32, BF16, FP16, FP8, INT32, BFP8_B, BFP4_B, BFP2_B)
}


def dtype(name: str) -> DType:
    """Look a data type up by name (``bf16``, ``bfp8_b``...)."""
    if not isinstance(name, str):
        raise IrperfError(f"a dtype is a name such as 'bf16', got {show(name)}")
    try:
        return DTYPES[name.lower()]
    except KeyError:
        valid = ", ".join(sorted(DTYPES))
        raise IrperfError(f"unknown dtype {show(name)}; valid: {valid}") from None


def tensor_bytes(shape: tuple[int, ...], dt: DType) -> int:
    """Exact storage size of a tensor of ``shape`` in ``dt``.

    Block formats are padded to whole 32x32 tiles over the last two dimensions (a vector is one
    row); scalar formats are ``numel * element_bytes``.
    """
    if dt.element_bytes is not None:
        n = 1
        for d in shape:
            n *= d
        return n * dt.element_bytes
    return tile_count(shape) * dt.tile_bytes


def tile_count(shape: tuple[int, ...]) -> int:
    """Number of 32x32 tiles a tensor occupies once its last two dimensions are padded."""
    if not shape:
        return 1
    rows = shape[-2] if len(shape) >= 2 else 1
    cols = shape[-1]
    outer = 1
    for d in shape[:-2]:
        outer *= d
    return outer * -(-rows // TILE) * -(-cols // TILE)
