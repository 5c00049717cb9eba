"""Built-in passes. Importing this package registers them with irperf's pass registry."""

from passes.bytes import BytesPass, Traffic
from passes.flops import FlopCount, FlopsPass
from passes.params import ParamCount, ParamsPass
from passes.roofline import RooflinePass, RooflineTime

__all__ = [
    "BytesPass",
    "FlopCount",
    "FlopsPass",
    "ParamCount",
    "ParamsPass",
    "RooflinePass",
    "RooflineTime",
    "Traffic",
]
