"""irperf: a compiler-style performance model for ML accelerators.

Lower a model into a graph of typed tensor ops, annotate it with passes, read the reports::

    import irperf
    g = irperf.lower("llama-3.2-11b-vision", part="vision")
    g = irperf.run(g, "flops,bytes,params,roofline{target=n300-seed}")
"""

from irperf.api import analysis_pipeline, lower, run
from irperf.builder import Builder, Value
from irperf.dtypes import BF16, BFP4_B, BFP8_B, FP8, FP16, FP32, INT32, DType, dtype
from irperf.errors import (
    ConfigError,
    IrperfError,
    OutputError,
    PassError,
    PluginError,
    TargetError,
    TypeInferenceError,
    UnknownNameError,
    VerifyError,
)
from irperf.graph import Graph, Node
from irperf.pass_manager import (
    AnalysisPass,
    Pass,
    PassResult,
    get_pass,
    make_pass,
    parse_pipeline,
    pass_names,
    register_pass,
    run_pipeline,
)
from irperf.rules import RuleTable
from irperf.types import TensorType
from irperf.verify import verify

__version__ = "0.1.0"

__all__ = [
    "BF16",
    "BFP4_B",
    "BFP8_B",
    "FP8",
    "FP16",
    "FP32",
    "INT32",
    "AnalysisPass",
    "Builder",
    "ConfigError",
    "DType",
    "Graph",
    "IrperfError",
    "Node",
    "OutputError",
    "Pass",
    "PassError",
    "PassResult",
    "PluginError",
    "RuleTable",
    "TargetError",
    "TensorType",
    "TypeInferenceError",
    "UnknownNameError",
    "Value",
    "VerifyError",
    "__version__",
    "analysis_pipeline",
    "dtype",
    "get_pass",
    "lower",
    "make_pass",
    "parse_pipeline",
    "pass_names",
    "register_pass",
    "run",
    "run_pipeline",
    "verify",
]
