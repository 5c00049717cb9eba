"""The public API facade: lower a model, run passes, analyse on a target."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from irperf.checks import show
from irperf.errors import ConfigError, IrperfError
from irperf.graph import Graph
from irperf.pass_manager import Pass, add_lazy, add_loader, build_pass, get_pass, run_pipeline

if TYPE_CHECKING:
    from targets import Target


OWN_PACKAGES = ("lowering", "passes", "targets")
"""irperf's sibling packages; generic names that a file in the working folder could shadow."""


def check_packages() -> None:
    """An IrperfError if ``passes.py`` (say) in the working folder shadows irperf's package of
    that name, as ``python -m irperf`` or a notebook started there would import it."""
    home = Path(__file__).resolve().parent.parent
    for name in OWN_PACKAGES:
        try:
            spec = importlib.util.find_spec(name)  # where it would come from; runs nothing
        except (ImportError, ValueError):
            spec = None
        where = [Path(p).resolve() for p in (spec.submodule_search_locations or [])] if spec else []
        if home / name not in where:
            found = (spec.origin if spec else None) or "nothing"
            raise IrperfError(
                f"{found} shadows irperf's own package {name!r} (it is imported instead): run "
                f"irperf from another folder, or rename it"
            )


_checked = False


def _load_builtin_passes() -> None:
    global _checked
    if _checked:
        return
    check_packages()  # once the packages are imported, they are the ones found
    _checked = True
    import passes  # the built-ins' table: each module is imported when its pass is first used

    add_lazy(passes.BUILTIN, passes.load, passes.load_all)


add_loader(_load_builtin_passes)


def lower(model: Any, part: str = "full", *extra: Any, **options: Any) -> Graph:
    """Lower a model (preset name, config path as ``str`` or ``os.PathLike``, or a ModelConfig)
    into a graph; see ``lowering.lower``."""
    import inspect

    from lowering import lower as _lower

    valid = [p for p in inspect.signature(_lower).parameters if p not in ("model", "part")]
    if extra:
        raise ConfigError(f"lowering options are keywords ({', '.join(valid)}), got {show(extra)}")
    unknown = [k for k in options if k not in valid]
    if unknown:
        raise ConfigError(f"unknown lowering option {show(unknown[0])}; valid: {', '.join(valid)}")
    return _lower(model, part, **options)


def run(graph: Graph, passes: str | Sequence[str | Pass]) -> Graph:
    """Run a pipeline on ``graph``: a string (``"flops,bytes,roofline{target=n300}"``) or a
    sequence of pass names and Pass objects (``["flops", RooflinePass(target=t)]``)."""
    _load_builtin_passes()
    return run_pipeline(graph, passes)


def analysis_pipeline(
    target: str | Target,
    convention: str = "matmul-only",
    mfu: float = 1.0,
    fidelity: str | None = None,
) -> list[Pass]:
    """The passes ``irperf analyze`` runs. ``target``: a name, a ``.toml`` path or a loaded
    ``Target``, handed to the roofline pass as an object (never pasted into a string)."""
    _load_builtin_passes()
    options = {"convention": convention}
    roofline: dict[str, Any] = {"target": target, "mfu": mfu, "fidelity": fidelity}
    return [
        build_pass(get_pass("flops"), options),
        build_pass(get_pass("bytes"), options),
        build_pass(get_pass("params"), {}),
        build_pass(get_pass("roofline"), roofline),
        build_pass(get_pass("memory"), {}),
    ]
