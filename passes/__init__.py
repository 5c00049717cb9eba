"""Built-in passes. Importing this package registers them with irperf's pass registry."""

from passes.bytes import BytesPass, Traffic
from passes.flops import FlopCount, FlopsPass
from passes.memory import MemoryFootprint, MemoryPass, MemoryUse, memory_footprint
from passes.params import ParamCount, ParamsPass
from passes.roofline import RooflinePass, RooflineTime

__all__ = [
    "BytesPass",
    "FlopCount",
    "FlopsPass",
    "MemoryFootprint",
    "MemoryPass",
    "MemoryUse",
    "ParamCount",
    "ParamsPass",
    "RooflinePass",
    "RooflineTime",
    "Traffic",
    "memory_footprint",
]
