"""Built-in passes. Importing this package registers them with irperf's pass registry."""

from passes.bytes import BytesPass, Traffic
from passes.decompose import DecomposeAttentionPass
from passes.flops import FlopCount, FlopsPass
from passes.fusion import (
    BytesByKind,
    BytesByKindPass,
    FusedBytesPass,
    FusePass,
    FusionGroup,
    plan_fusion,
)
from passes.fusion_rules import FusionRule, register_strategy
from passes.memory import MemoryFootprint, MemoryPass, MemoryUse, memory_footprint
from passes.op_time import OpTime, OpTimePass
from passes.params import ParamCount, ParamsPass
from passes.placement import Home, Placement, PlacePass
from passes.precision import PrecisionPass, load_policy
from passes.roofline import RooflinePass, RooflineTime
from passes.schedule import Schedule, SchedulePass, Slot
from passes.tensor_parallel import TensorParallelPass, tensor_parallel
from passes.tiles import TilesPass, TileWork

__all__ = [
    "BytesByKind",
    "BytesByKindPass",
    "BytesPass",
    "DecomposeAttentionPass",
    "FlopCount",
    "FlopsPass",
    "FusePass",
    "FusedBytesPass",
    "FusionGroup",
    "FusionRule",
    "Home",
    "MemoryFootprint",
    "MemoryPass",
    "MemoryUse",
    "OpTime",
    "OpTimePass",
    "ParamCount",
    "ParamsPass",
    "PlacePass",
    "Placement",
    "PrecisionPass",
    "RooflinePass",
    "RooflineTime",
    "Schedule",
    "SchedulePass",
    "Slot",
    "TensorParallelPass",
    "TileWork",
    "TilesPass",
    "Traffic",
    "load_policy",
    "memory_footprint",
    "plan_fusion",
    "register_strategy",
    "tensor_parallel",
]
