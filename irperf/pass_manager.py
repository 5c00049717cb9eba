"""The pass protocol, the pass registry and the pipeline runner (``"a,b{opt=v}"``)."""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from importlib import metadata
from typing import Any, ClassVar, TypeVar

import attrs
from attrs import frozen

from irperf.errors import IrperfError, PassError, UnknownNameError
from irperf.graph import Graph
from irperf.verify import verify


@frozen
class PassResult:
    graph: Graph
    modified: bool


@frozen(kw_only=True)
class Pass:
    """A pass: a kebab-case ``name``, options as attrs fields, logic in plain functions.

    A transform overrides ``run`` and returns a new graph (``modified=True``); the pipeline then
    verifies it. An analysis subclasses ``AnalysisPass`` instead.
    """

    name: ClassVar[str] = "pass"
    summary: ClassVar[str] = ""

    def run(self, graph: Graph) -> PassResult:
        raise NotImplementedError


@frozen(kw_only=True)
class AnalysisPass(Pass):
    """A pure analysis: ``analyze`` reads the graph and returns one record per node name.

    The records are stored on the graph under ``record_type``, where later passes read them by
    type. ``requires`` lists record types that must already be there.
    """

    record_type: ClassVar[type]
    requires: ClassVar[tuple[type, ...]] = ()

    def analyze(self, graph: Graph) -> Mapping[str, Any]:
        raise NotImplementedError

    def run(self, graph: Graph) -> PassResult:
        for kind in self.requires:
            if not graph.has_records(kind):
                raise PassError(f"needs {kind.__name__} records; run the pass producing them first")
        graph.set_records(self.record_type, self.analyze(graph))
        return PassResult(graph, modified=False)


P = TypeVar("P", bound=type[Pass])

_REGISTRY: dict[str, type[Pass]] = {}
_loaders: list[Callable[[], None]] = []
_loaded = False


def register_pass(cls: P) -> P:
    """Class decorator: make a pass available by its ``name`` in pipelines and the CLI."""
    name = cls.name
    if not re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", name):
        raise PassError(f"pass name {name!r} is not kebab-case")
    existing = _REGISTRY.get(name)
    reloaded = existing is not None and (existing.__module__, existing.__qualname__) == (
        cls.__module__,
        cls.__qualname__,
    )
    if existing is not None and existing is not cls and not reloaded:
        raise PassError(f"pass name '{name}' is already registered by {existing.__qualname__}")
    _REGISTRY[name] = cls
    return cls


def add_loader(fn: Callable[[], None]) -> None:
    """Run ``fn`` once before the registry is first read (the facade registers built-ins so)."""
    _loaders.append(fn)


def _ensure_loaded() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for fn in _loaders:
        fn()
    load_entry_points()


def load_entry_points(group: str = "irperf.passes") -> list[str]:
    """Register the passes that installed packages declare in the entry-point ``group``."""
    names = []
    for ep in metadata.entry_points(group=group):
        try:
            obj = ep.load()
        except Exception as e:  # a broken plugin must not take the CLI down with a traceback
            raise PassError(f"entry point '{ep.name}' ({ep.value}) failed to load: {e}") from e
        if not (isinstance(obj, type) and issubclass(obj, Pass)):
            raise PassError(f"entry point '{ep.name}' ({ep.value}) is not a Pass class")
        register_pass(obj)
        names.append(obj.name)
    return names


def pass_names() -> list[str]:
    _ensure_loaded()
    return sorted(_REGISTRY)


def get_pass(name: str) -> type[Pass]:
    _ensure_loaded()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownNameError(
            f"unknown pass '{name}'; valid: {', '.join(sorted(_REGISTRY))}"
        ) from None


_ITEM = re.compile(r"\s*([A-Za-z0-9_-]+)\s*(?:\{([^{}]*)\})?\s*")


def parse_pipeline(text: str) -> list[tuple[str, dict[str, str]]]:
    """Split a pipeline string into (pass name, options) pairs.

    ``"flops{convention=full},bytes"`` -> ``[("flops", {"convention": "full"}), ("bytes", {})]``.
    """
    items: list[tuple[str, dict[str, str]]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _ITEM.match(text, pos)
        if m is None or m.end() == pos:
            raise PassError(f"cannot parse pipeline {text!r} at position {pos}")
        options: dict[str, str] = {}
        for part in filter(None, (p.strip() for p in (m.group(2) or "").split(","))):
            key, eq, value = part.partition("=")
            if not eq or not key.strip():
                raise PassError(f"pass '{m.group(1)}': option {part!r} is not key=value")
            options[key.strip().replace("-", "_")] = value.strip()
        items.append((m.group(1), options))
        pos = m.end()
        if pos < len(text):
            if text[pos] != ",":
                raise PassError(f"cannot parse pipeline {text!r} at position {pos}")
            pos += 1
    if not items:
        raise PassError("empty pipeline")
    return items


def _convert(pass_name: str, key: str, value: str, kind: Any) -> Any:
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        if value.lower() == "none":
            return None
        kind = args[0] if len(args) == 1 else str
    if origin is typing.Literal:
        allowed = [str(a) for a in typing.get_args(kind)]
        if value not in allowed:
            valid = ", ".join(allowed)
            raise PassError(f"pass '{pass_name}': option {key}={value!r}; valid: {valid}")
        return value
    try:
        if kind is bool:
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if kind in (int, float, str):
            return kind(value)
    except ValueError:
        raise PassError(
            f"pass '{pass_name}': option {key}={value!r} is not a {kind.__name__}"
        ) from None
    return value


def make_pass(name: str, options: Mapping[str, str] | None = None) -> Pass:
    """Instantiate a registered pass from string options, converted by the fields' types."""
    cls = get_pass(name)
    fields = {f.name: f for f in attrs.fields(attrs.resolve_types(cls))}
    kwargs: dict[str, Any] = {}
    for key, value in (options or {}).items():
        f = fields.get(key)
        if f is None:
            valid = ", ".join(sorted(fields)) or "none"
            raise PassError(f"pass '{name}': unknown option '{key}'; valid: {valid}")
        kwargs[key] = _convert(name, key, value, f.type)
    try:
        return cls(**kwargs)
    except (IrperfError, TypeError, ValueError) as e:
        prefix = f"pass '{name}': "
        message = str(e)
        raise PassError(message if message.startswith(prefix) else prefix + message) from None


def build_pipeline(spec: str | Sequence[Pass]) -> list[Pass]:
    if isinstance(spec, str):
        return [make_pass(n, o) for n, o in parse_pipeline(spec)]
    return list(spec)


def run_pipeline(graph: Graph, spec: str | Sequence[Pass], *, check: bool = True) -> Graph:
    """Run passes in order. Transforms are verified after they run; any failure names the pass
    and the passes that ran before it."""
    done: list[str] = []
    for p in build_pipeline(spec):
        try:
            result = p.run(graph)
            if result.modified and check:
                verify(result.graph)
        except IrperfError as e:
            before = ", ".join(done) or "none"
            raise PassError(f"pass '{p.name}' failed (after: {before}): {e}") from None
        graph = result.graph
        done.append(p.name)
    return graph


def one_of(*values: str) -> Callable[[Any, Any, Any], None]:
    """An attrs validator for a string option, raising PassError with the valid values."""

    def check(inst: Any, attribute: Any, value: Any) -> None:
        if value not in values:
            raise PassError(
                f"pass '{inst.name}': option {attribute.name}={value!r}; valid: {', '.join(values)}"
            )

    return check
