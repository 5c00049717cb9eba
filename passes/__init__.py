"""Built-in passes. Each module registers its passes with irperf's pass registry when it is
imported, and it is imported when one of its passes is first asked for (``BUILTIN``), or one
of the names below is read: a command imports only the passes it runs."""

from __future__ import annotations

import importlib
from typing import Any

BUILTIN = {
    "bytes": "passes.bytes",
    "decompose-attention": "passes.decompose",
    "flops": "passes.flops",
    "fuse": "passes.fusion",
    "fused-bytes": "passes.fusion",
    "bytes-by-kind": "passes.fusion",
    "memory": "passes.memory",
    "op-time": "passes.op_time",
    "params": "passes.params",
    "place": "passes.placement",
    "placed-bytes": "passes.placement",
    "precision": "passes.precision",
    "roofline": "passes.roofline",
    "schedule": "passes.schedule",
    "tensor-parallel": "passes.tensor_parallel",
    "tiles": "passes.tiles",
}
"""Each built-in pass's module (``tests`` hold it to what the modules register)."""

_EXPORTS = {
    "BytesByKind": "passes.fusion",
    "BytesByKindPass": "passes.fusion",
    "BytesPass": "passes.bytes",
    "DecomposeAttentionPass": "passes.decompose",
    "FlopCount": "passes.flops",
    "FlopsPass": "passes.flops",
    "FusePass": "passes.fusion",
    "FusedBytesPass": "passes.fusion",
    "FusionGroup": "passes.kernels",
    "FusionRule": "passes.fusion_rules",
    "Home": "passes.placement",
    "MemoryFootprint": "passes.memory",
    "MemoryPass": "passes.memory",
    "MemoryUse": "passes.memory",
    "OpTime": "passes.op_time",
    "OpTimePass": "passes.op_time",
    "ParamCount": "passes.params",
    "ParamsPass": "passes.params",
    "PlacePass": "passes.placement",
    "Placement": "passes.placement",
    "PrecisionPass": "passes.precision",
    "RooflinePass": "passes.roofline",
    "RooflineTime": "passes.roofline",
    "Schedule": "passes.schedule",
    "SchedulePass": "passes.schedule",
    "Slot": "passes.schedule",
    "TensorParallelPass": "passes.tensor_parallel",
    "TileWork": "passes.tiles",
    "TilesPass": "passes.tiles",
    "Traffic": "passes.bytes",
    "load_policy": "passes.precision",
    "memory_footprint": "passes.memory",
    "plan_fusion": "passes.fusion",
    "register_strategy": "passes.fusion_rules",
    "tensor_parallel": "passes.tensor_parallel",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'passes' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def load(name: str) -> bool:
    """Import the module of built-in pass ``name``; whether there is one."""
    module = BUILTIN.get(name)
    if module is not None:
        importlib.import_module(module)
    return module is not None


def load_all() -> None:
    for module in dict.fromkeys(BUILTIN.values()):
        importlib.import_module(module)
