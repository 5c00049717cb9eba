"""The public API facade: lower a model, run passes, analyse on a target."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from irperf.graph import Graph
from irperf.pass_manager import Pass, add_loader, run_pipeline


def _load_builtin_passes() -> None:
    import passes  # noqa: F401  (importing registers the built-in passes)


add_loader(_load_builtin_passes)


def lower(model: Any, part: str = "full", **options: Any) -> Graph:
    """Lower a model (preset name, config path or ModelConfig) into a graph; see lowering.lower."""
    from lowering import lower as _lower

    return _lower(model, part, **options)


def run(graph: Graph, passes: str | Sequence[Pass]) -> Graph:
    """Run a pipeline (``"flops,bytes,roofline{target=n300}"`` or pass objects) on ``graph``."""
    _load_builtin_passes()
    return run_pipeline(graph, passes)


def analysis_pipeline(
    target: str, convention: str = "matmul-only", mfu: float = 1.0, fidelity: str | None = None
) -> str:
    """The pipeline ``irperf analyze`` runs."""
    fi = f",fidelity={fidelity}" if fidelity else ""
    return (
        f"flops{{convention={convention}}},bytes{{convention={convention}}},params,"
        f"roofline{{target={target},mfu={mfu}{fi}}},memory"
    )
