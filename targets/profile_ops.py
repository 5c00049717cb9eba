"""How a profiled op reads as irperf's: its op class, its product, its format, its bytes.

tt-metal names device ops by their C++ operation (``MatmulDeviceOperation``,
``BinaryNgDeviceOperation``, ``ScaledDotProductAttentionDecode``); irperf's op classes
(``irperf.ops.taxonomy.OP_CLASSES``) are what the fit (``targets/profile_fit.py``) and the
comparison (``passes/profile_compare.py``) tell ops apart by.
"""

from __future__ import annotations

import re

from irperf.contraction import Contraction
from irperf.dtypes import DType
from targets.profile import ProfileRow, ProfileTensor

DEVICE_CLASSES: tuple[tuple[str, str | None], ...] = (
    ("untilize", None),  # layout conversions: irperf's graph has none
    ("tilize", None),
    ("scaleddotproductattention", "attention"),
    ("sdpa", "attention"),
    ("softmax", "softmax"),
    ("layernorm", "norm"),
    ("rmsnorm", "norm"),
    ("groupnorm", "norm"),
    ("allgather", "all_gather"),
    ("reducescatter", "reduce_scatter"),
    ("allreduce", "all_reduce"),
    ("rotaryembedding", "rope"),
    ("embedding", "embedding"),
    ("matmul", "matmul"),
    ("conv2d", "conv2d"),
    ("optimizedconv", "conv2d"),
    ("binary", "binary"),
    ("unary", "unary"),
    ("typecast", "typecast"),
    ("updatecache", "cache_update"),
    ("fillcache", "cache_update"),
    ("concat", "data_movement"),
    ("slice", "data_movement"),
    ("transpose", "data_movement"),
    ("permute", "data_movement"),
    ("repeat", "data_movement"),
    ("pad", "data_movement"),
    ("reshard", "data_movement"),
    ("interleavedtosharded", "data_movement"),
    ("shardedtointerleaved", "data_movement"),
    ("copy", "data_movement"),
)
"""tt-metal op codes (lower case, letters and digits only) holding each key, in order: the first
key an op code holds names its class (``irperf.ops.taxonomy.OP_CLASSES``)."""


def device_class(op_code: str) -> str | None:
    """irperf's op class of a tt-metal op code (``MatmulDeviceOperation`` -> ``matmul``)."""
    key = re.sub(r"[^a-z0-9]", "", op_code.lower())
    for word, cls in DEVICE_CLASSES:
        if word in key:
            return cls
    return None


def matmul_of(row: ProfileRow) -> Contraction:
    """The product a matmul row runs: a weight of batch 1 folds the activation's leading dims
    into M (a linear layer); else one product per batch element (``irperf.contraction``)."""
    a = row.inputs[0].logical
    b = row.inputs[1].logical if len(row.inputs) > 1 else (1, 1, a[3], row.outputs[0].logical[3])
    n = row.outputs[0].logical[3]
    if b[0] * b[1] == 1:
        return Contraction(1, a[0] * a[1] * a[2], a[3], n)
    return Contraction(a[0] * a[1], a[2], a[3], n)


def compute_format(row: ProfileRow) -> DType:
    """The format a row computes in: its narrowest block-format input, else its output's (as
    ``passes.roofline.compute_dtype``)."""
    blocks = [t.dtype for t in row.inputs if t.dtype.is_block]
    return min(blocks, key=lambda d: d.tile_bytes) if blocks else row.outputs[0].dtype


def tensors(row: ProfileRow) -> tuple[ProfileTensor, ...]:
    return (*row.inputs, *row.outputs)


def moved_bytes(row: ProfileRow) -> int:
    """What a data-moving op reads and writes: its outputs whole, and from each input no more
    elements than its first output holds (an embedding reads the rows it gathers, not its
    table; a slice the part it keeps)."""
    out = row.outputs[0].numel
    reads = sum(t.bytes * min(t.numel, out) // t.numel for t in row.inputs)
    return reads + sum(t.bytes for t in row.outputs)
