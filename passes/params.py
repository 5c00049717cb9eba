"""The ``params`` pass: parameters per node (a weight's element count; every other node 0).

``params`` counts the model's parameters, each once: a weight split over chips counts its global
element count, a replicated one its own, a tied one (``Weight.tied_to``) none. ``weight_bytes`` is
what one chip stores."""

from __future__ import annotations

from typing import ClassVar

from attrs import frozen

from irperf.graph import Graph
from irperf.ops import Weight
from irperf.pass_manager import AnalysisPass, register_pass


@frozen(kw_only=True)
class ParamCount:
    params: int = 0
    weight_bytes: int = 0

    def __add__(self, other: ParamCount) -> ParamCount:
        return ParamCount(
            params=self.params + other.params, weight_bytes=self.weight_bytes + other.weight_bytes
        )

    @classmethod
    def zero(cls) -> ParamCount:
        return cls()


NO_PARAMS = ParamCount()


def count_params(graph: Graph) -> dict[str, ParamCount]:
    return {
        n.name: ParamCount(
            params=0 if n.op.tied_to is not None else n.type.global_numel,
            weight_bytes=n.type.nbytes,
        )
        if isinstance(n.op, Weight)
        else NO_PARAMS
        for n in graph
    }


@register_pass
@frozen(kw_only=True)
class ParamsPass(AnalysisPass):
    """Parameter count and weight storage per node; a scope's count is a sum over its nodes."""

    name: ClassVar[str] = "params"
    summary: ClassVar[str] = "parameters and weight bytes per node"
    record_type: ClassVar[type] = ParamCount

    def analyze(self, graph: Graph) -> dict[str, ParamCount]:
        return count_params(graph)
