"""Pass registry, pipeline strings, option conversion and error reporting."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import pytest
from attrs import frozen

import irperf
from irperf.errors import PassError, UnknownNameError
from irperf.graph import Graph
from irperf.pass_manager import (
    AnalysisPass,
    Pass,
    PassResult,
    get_pass,
    make_pass,
    parse_pipeline,
    register_pass,
    run_pipeline,
)


def test_parse_pipeline() -> None:
    assert parse_pipeline("flops{convention=full}, bytes ,roofline{target=n300,mfu=0.4}") == [
        ("flops", {"convention": "full"}),
        ("bytes", {}),
        ("roofline", {"target": "n300", "mfu": "0.4"}),
    ]
    for bad in ("", "flops{convention}", "flops{a=b", "a b"):
        with pytest.raises(PassError):
            parse_pipeline(bad)


def test_options_are_converted_and_checked() -> None:
    p = make_pass("roofline", {"target": "n300", "mfu": "0.4"})
    assert p.mfu == 0.4  # type: ignore[attr-defined]
    with pytest.raises(PassError, match="pass 'roofline': option mfu='fast' is not a finite float"):
        make_pass("roofline", {"mfu": "fast"})
    with pytest.raises(PassError, match="unknown option 'speed'"):
        make_pass("flops", {"speed": "1"})
    with pytest.raises(PassError, match="convention='dense'; valid: matmul-only, full"):
        make_pass("flops", {"convention": "dense"})
    with pytest.raises(PassError, match=r"mfu must be a number from 0.001 to 1, got 1.5"):
        make_pass("roofline", {"mfu": "1.5"})
    with pytest.raises(UnknownNameError, match="unknown pass 'flop'; valid: .*flops"):
        make_pass("flop")


@frozen
class Marker:
    value: int


@register_pass
@frozen(kw_only=True)
class CountNodes(AnalysisPass):
    """A user analysis registered by decorator."""

    name: ClassVar[str] = "test-count-nodes"
    record_type: ClassVar[type] = Marker
    scale: int = 1

    def analyze(self, graph: Graph) -> Mapping[str, Marker]:
        return {n.name: Marker(self.scale) for n in graph}


@register_pass
@frozen(kw_only=True)
class Broken(Pass):
    name: ClassVar[str] = "test-broken"

    def run(self, graph: Graph) -> PassResult:
        raise PassError("boom")


def tiny() -> Graph:
    b = irperf.Builder()
    b.input("x", (2, 2), irperf.BF16)
    return b.graph


def test_user_pass_by_decorator_runs_in_a_pipeline() -> None:
    g = run_pipeline(tiny(), "test-count-nodes{scale=3}")
    assert g.records(Marker) == {"x": Marker(3)}
    assert "test-count-nodes" in irperf.pass_names()


def test_errors_name_the_pass_and_the_passes_before() -> None:
    with pytest.raises(PassError, match=r"pass 'test-broken' failed \(after: flops\): boom"):
        run_pipeline(tiny(), "flops,test-broken")


def test_analysis_requirements_are_checked() -> None:
    with pytest.raises(PassError, match="roofline.*needs FlopCount"):
        run_pipeline(tiny(), "roofline")


def test_kebab_case_names_and_no_silent_redefinition() -> None:
    with pytest.raises(PassError, match="kebab-case"):

        @register_pass
        @frozen(kw_only=True)
        class Bad(Pass):
            name: ClassVar[str] = "Bad_Name"

    with pytest.raises(PassError, match="already registered"):

        @register_pass
        @frozen(kw_only=True)
        class Again(Pass):
            name: ClassVar[str] = "flops"


def test_entry_point_group_registers_passes(monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from importlib import metadata

    from irperf import pass_manager

    (tmp_path / "irperf_plugin_demo.py").write_text(
        "from typing import ClassVar\n"
        "from attrs import frozen\n"
        "from irperf.pass_manager import Pass, PassResult\n"
        "@frozen(kw_only=True)\n"
        "class Demo(Pass):\n"
        "    name: ClassVar[str] = 'plugin-demo'\n"
        "    def run(self, graph):\n"
        "        return PassResult(graph, modified=False)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    ep = metadata.EntryPoint(name="demo", value="irperf_plugin_demo:Demo", group="irperf.passes")

    def installed(*eps: metadata.EntryPoint) -> None:
        monkeypatch.setattr(pass_manager, "_entry_points", None)  # not loaded yet
        monkeypatch.setattr(pass_manager, "_entry_point_failures", [])
        monkeypatch.setattr(
            metadata,  # read when plugins are first asked for
            "entry_points",
            lambda group: [e for e in eps if e.group == group],
        )

    installed(ep)
    assert pass_manager.load_entry_points() == ["plugin-demo"]
    assert run_pipeline(tiny(), "plugin-demo") is not None

    # A broken plugin takes down nothing that does not need it: built-in passes still run, and
    # only a name irperf lacks reports it.
    broken = metadata.EntryPoint(name="b", value="no_such_module_xyz:X", group="irperf.passes")
    installed(broken)
    assert run_pipeline(tiny(), "flops") is not None
    assert pass_manager._entry_points is None  # a built-in name never loads plugins
    with pytest.raises(UnknownNameError, match="entry point 'b'.*failed to load"):
        get_pass("no-such-pass")
    assert pass_manager.load_entry_points() == []
    assert len(pass_manager.entry_point_failures()) == 1


def test_the_builtin_table_is_what_the_modules_register() -> None:
    """passes.BUILTIN names each built-in pass's module (imported when the pass is first
    asked for): after every one is loaded, the registry agrees with it exactly."""
    import passes
    from irperf import pass_manager

    names = pass_manager.pass_names()  # loads them all
    builtin = {n: pass_manager.get_pass(n).__module__ for n in names}
    builtin = {n: m for n, m in builtin.items() if m.startswith("passes.")}
    assert builtin == passes.BUILTIN


def test_analyze_imports_only_the_passes_it_runs() -> None:
    import subprocess
    import sys

    code = (
        "import io, contextlib, sys\n"
        "from irperf.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['analyze', 'llama-3.2-1b', '--json'])\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    loaded = set(
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.split()
    )
    for unused in (
        "passes.fusion",
        "passes.fusion_greedy",
        "passes.tensor_parallel",
        "passes.decompose",
        "networkx",
        "importlib.metadata",
    ):
        assert unused not in loaded, unused
