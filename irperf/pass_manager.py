"""The pass protocol, the pass registry and the pipeline runner (``"a,b{opt=v}"``)."""

from __future__ import annotations

import math
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, TypeVar

import attrs
from attrs import frozen

from irperf.checks import is_int, is_number, message_of, show
from irperf.errors import IrperfError, PassError, UnknownNameError
from irperf.graph import Graph
from irperf.plugins import describe, origin
from irperf.verify import verify


@frozen
class PassResult:
    graph: Graph
    modified: bool


class _PassMeta(type):
    """Building a pass with options it lacks or positionally is a PassError naming it, as every
    other bad option is, not a bare TypeError from attrs' ``__init__``."""

    def __call__(cls, *args: Any, **options: Any) -> Any:
        if args:
            raise PassError(
                f"pass {show(getattr(cls, 'name', cls.__name__))}: options are keywords "
                f"(name=value), got {len(args)} positional"
            )
        valid = option_fields(cls)  # type: ignore[arg-type]
        unknown = [k for k in options if k not in valid]
        if unknown:
            names = ", ".join(sorted(valid)) or "none"
            raise PassError(
                f"pass {show(getattr(cls, 'name', cls.__name__))}: unknown option "
                f"{show(unknown[0])}; valid: {names}"
            )
        return super().__call__(**options)


@frozen(kw_only=True)
class Pass(metaclass=_PassMeta):
    """A pass: a kebab-case ``name``, options as attrs fields, logic in plain functions.

    A transform overrides ``run`` and returns a new graph (``modified=True``); the pipeline then
    verifies it. An analysis subclasses ``AnalysisPass`` instead. Options are checked against
    their annotated types when a pass is built, so a wrong type is a ``PassError`` naming the
    option, never a ``TypeError`` from deep inside the pass.
    """

    name: ClassVar[str] = "pass"
    summary: ClassVar[str] = ""
    may_transform: ClassVar[bool] = False
    """An analysis that returns a new graph when it must (``place``, inserting its copies)."""

    def __attrs_pre_init__(self, *args: Any, **options: Any) -> None:
        check_option_types(type(self), options)

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

    def reads(self, graph: Graph) -> tuple[type, ...]:
        """The record kinds this run's records are computed from (``requires`` unless a pass
        reads one of several, as the roofline reads fused traffic where there is some)."""
        return self.requires

    def summarize(self, graph: Graph, records: Mapping[str, Any]) -> object | None:
        """A graph-level record to store beside the per-node ones (None: none)."""
        return None

    def run(self, graph: Graph) -> PassResult:
        for kind in self.requires:
            if not graph.has_records(kind):
                raise PassError(
                    f"needs {kind.__name__} records; run the pass producing them first (after "
                    f"any pass that made a new graph, as place does when it inserts copies)"
                )
        records = self.analyze(graph)
        if not isinstance(records, Mapping):
            raise PassError(f"analyze returned {type(records).__name__}, not a mapping of records")
        reads = self.reads(graph)
        graph.set_records(self.record_type, records, depends_on=reads)
        whole = self.summarize(graph, records)
        if whole is not None:
            graph.set_graph_record(whole, depends_on=(self.record_type, *reads))
        return PassResult(graph, modified=False)


P = TypeVar("P", bound=type[Pass])

_REGISTRY: dict[str, type[Pass]] = {}
_loaders: list[Callable[[], None]] = []
_loaded = False
_lazy: list[tuple[Mapping[str, str], Callable[[str], bool], Callable[[], None]]] = []
"""Packages whose passes register when first asked for: (name -> module, load one, load all)."""
_entry_points: list[str] | None = None
_entry_point_failures: list[str] = []

ENTRY_POINT_GROUPS = ("irperf.passes", "irperf.strategies")
"""Installed packages declare Pass classes in ``irperf.passes`` and fusion strategies (or modules
that register them) in ``irperf.strategies``."""


def register_pass(cls: P) -> P:
    """Class decorator: make a pass available by its ``name`` in pipelines and the CLI."""
    if not (isinstance(cls, type) and issubclass(cls, Pass)):
        raise PassError(f"register_pass needs a Pass subclass, got {show(cls)}")
    name = cls.name
    if not (isinstance(name, str) and re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", name)):
        raise PassError(f"pass name {show(name)} is not kebab-case")
    if issubclass(cls, AnalysisPass) and not isinstance(getattr(cls, "record_type", None), type):
        raise PassError(f"analysis pass '{name}' declares no record_type class")
    for names, _, _ in _lazy:  # a built-in's name is taken, imported yet or not
        if names.get(name, cls.__module__) != cls.__module__:
            raise PassError(
                f"pass name '{name}' is already registered by irperf's {names[name]} "
                f"(from {origin(names[name])})"
            )
    existing = _REGISTRY.get(name)
    reloaded = existing is not None and (existing.__module__, existing.__qualname__) == (
        cls.__module__,
        cls.__qualname__,
    )
    if existing is not None and existing is not cls and not reloaded:
        raise PassError(
            f"pass name '{name}' is already registered by {existing.__qualname__} "
            f"(from {origin(existing.__module__)})"
        )
    _REGISTRY[name] = cls
    return cls


def add_lazy(
    names: Mapping[str, str], load: Callable[[str], bool], load_all: Callable[[], None]
) -> None:
    """Passes named in ``names`` (name -> module) register when ``load(name)`` imports their
    module, on first use; ``load_all`` when every pass is asked for (a listing)."""
    _lazy.append((names, load, load_all))


def _load_everything() -> None:
    _ensure_loaded()
    for _, _, load_all in _lazy:
        load_all()


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


def load_entry_points() -> list[str]:
    """Load the plugins installed packages declare (``ENTRY_POINT_GROUPS``), once per process.

    Returns the pass names they registered. A plugin that fails to load is recorded, not raised:
    it cannot take down a command that never needed it. ``entry_point_failures`` says what
    failed, and an unknown pass or strategy name's error repeats it.
    """
    global _entry_points
    if _entry_points is not None:
        return list(_entry_points)
    _ensure_loaded()
    from importlib import metadata  # only when a plugin may be asked for: it costs an import

    names: list[str] = []
    for group in ENTRY_POINT_GROUPS:
        for ep in metadata.entry_points(group=group):
            try:
                obj = ep.load()
                if group == "irperf.passes":
                    if not (isinstance(obj, type) and issubclass(obj, Pass)):
                        raise PassError(f"{show(obj)} is not a Pass class")
                    register_pass(obj)
                    names.append(obj.name)
            except KeyboardInterrupt:
                raise
            except BaseException as e:
                _entry_point_failures.append(
                    f"entry point '{ep.name}' ({ep.value}) failed to load: {describe(e)}"
                )
    _entry_points = names
    return list(names)


def entry_point_failures() -> list[str]:
    """One line per installed plugin that failed to load (after ``load_entry_points``)."""
    return list(_entry_point_failures)


def failures_note() -> str:
    """``"; entry point 'x' ... failed to load: ..."`` for unknown-name errors, or ``""``."""
    failures = entry_point_failures()
    return "".join(f"; {f}" for f in failures[:2])


def pass_modules() -> set[str]:
    """The modules that define the passes registered so far (every built-in among them)."""
    _load_everything()
    return {cls.__module__ for cls in _REGISTRY.values()}


def pass_names() -> list[str]:
    """Every registered pass, installed plugins' included."""
    _load_everything()
    load_entry_points()
    return sorted(_REGISTRY)


def get_pass(name: str) -> type[Pass]:
    """A registered pass class; installed plugins are loaded only for a name irperf lacks."""
    _ensure_loaded()
    if not isinstance(name, str):
        raise PassError(f"a pass name must be a string, got {show(name)}")
    name = name.strip().lower()  # names are kebab-case: FLOPS is flops
    found = _REGISTRY.get(name)
    if found is None and any(load(name) for _, load, _ in _lazy):
        found = _REGISTRY.get(name)
    if found is None:
        load_entry_points()
        found = _REGISTRY.get(name)
    if found is None:
        valid = ", ".join(pass_names())
        raise UnknownNameError(f"unknown pass {show(name)}; valid: {valid}{failures_note()}")
    return found


_ITEM = re.compile(r"\s*([A-Za-z0-9_-]+)\s*(?:\{([^{}]*)\})?\s*")


def parse_pipeline(text: str) -> list[tuple[str, dict[str, str]]]:
    """Split a pipeline string into (pass name, options) pairs.

    ``"flops{convention=full},bytes"`` -> ``[("flops", {"convention": "full"}), ("bytes", {})]``.
    An option given twice is an error: the pipeline contradicts itself.
    """
    if not isinstance(text, str):
        raise PassError(f"a pipeline must be a string, got {show(text)}")
    items: list[tuple[str, dict[str, str]]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _ITEM.match(text, pos)
        if m is None or m.end() == pos:
            raise PassError(f"cannot parse pipeline {show(text)} at position {pos}")
        options: dict[str, str] = {}
        for part in filter(None, (p.strip() for p in (m.group(2) or "").split(","))):
            key, eq, value = part.partition("=")
            key = key.strip().replace("-", "_")
            if not eq or not key:
                raise PassError(f"pass '{m.group(1)}': option {show(part)} is not key=value")
            if key in options:
                raise PassError(
                    f"pass '{m.group(1)}': option {key} is given twice "
                    f"({show(options[key])} and {show(value.strip())})"
                )
            options[key] = value.strip()
        items.append((m.group(1), options))
        pos = m.end()
        if pos < len(text):
            if text[pos] != ",":
                raise PassError(f"cannot parse pipeline {show(text)} at position {pos}")
            pos += 1
            if pos == len(text):
                raise PassError(f"pipeline {show(text)} ends with a comma")
    if not items:
        raise PassError("empty pipeline")
    return items


def _choices(kind: Any) -> list[str] | None:
    """The string values a ``Literal[...]`` option admits, else None."""
    if typing.get_origin(kind) is typing.Literal:
        return [str(a) for a in typing.get_args(kind)]
    return None


def _inner(kind: Any) -> tuple[Any, bool]:
    """``X`` and whether None is allowed, for ``X``, ``X | None`` and ``Optional[X]``."""
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        optional = len(args) < len(typing.get_args(kind))
        return (args[0] if len(args) == 1 else typing.Union[tuple(args)]), optional  # noqa: UP007
    return kind, False


def _convert(pass_name: str, key: str, value: str, kind: Any) -> Any:
    """A pipeline string's option value as the field's type (choices match without case)."""
    kind, optional = _inner(kind)
    if optional and value.lower() == "none":
        return None
    choices = _choices(kind)
    if choices is not None:
        if value.lower() in choices:
            return value.lower()
        valid = ", ".join(choices)
        raise PassError(f"pass '{pass_name}': option {key}={show(value)}; valid: {valid}")
    try:
        if kind is bool:
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if kind is int:
            return int(value)
        if kind is float:
            number = float(value)
            if not math.isfinite(number):
                raise ValueError(value)
            return number
    except ValueError:
        raise PassError(
            f"pass '{pass_name}': option {key}={show(value)} is not "
            f"{'a finite float' if kind is float else _a(kind.__name__)}"
        ) from None
    if kind is str or kind is Any or isinstance(kind, str):  # a string: an unresolved annotation
        return value
    raise PassError(
        f"pass '{pass_name}': option {key} is a {_type_name(kind)}, which a pipeline string "
        f"cannot give; build the pass in Python"
    )


def _a(noun: str) -> str:
    return f"{'an' if noun[:1] in 'aeiou' else 'a'} {noun}"


def _type_ok(value: Any, kind: Any) -> bool:
    kind, optional = _inner(kind)
    if value is None:
        return optional
    choices = _choices(kind)
    if choices is not None:
        return isinstance(value, str)  # the field's own validator names the valid values
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        return any(_type_ok(value, k) for k in typing.get_args(kind))
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return is_int(value)
    if kind is float:
        return is_number(value) and math.isfinite(value)
    if isinstance(kind, type):
        return isinstance(value, kind)
    return True  # a type irperf cannot check (a user pass's own): its validators decide


def _type_name(kind: Any) -> str:
    kind, optional = _inner(kind)
    name = "str" if _choices(kind) is not None else getattr(kind, "__name__", str(kind))
    name = "finite float" if kind is float else name
    return f"{name} or None" if optional else name


_FIELDS: dict[type, Mapping[str, attrs.Attribute[Any]]] = {}


def option_fields(cls: type[Pass]) -> Mapping[str, attrs.Attribute[Any]]:
    """A pass class's options by name, with their annotations resolved (once per class)."""
    found = _FIELDS.get(cls)
    if found is None:
        try:
            fields = attrs.fields(attrs.resolve_types(cls))
        except Exception:  # a plugin's annotation that names something out of scope
            fields = attrs.fields(cls)  # left as strings: such options go unchecked
        found = _FIELDS[cls] = {f.name: f for f in fields}
    return found


def check_option_types(cls: type[Pass], options: Mapping[str, Any]) -> None:
    """Raise PassError unless every option holds a value of its field's annotated type.

    Fields with a converter accept whatever it accepts (``target``: a name or a ``Target``).
    """
    fields = option_fields(cls)
    for key, value in options.items():
        f = fields.get(key)
        if f is None or f.converter is not None:
            continue
        if not _type_ok(value, f.type):
            raise PassError(
                f"pass '{cls.name}': option {key} must be a {_type_name(f.type)}, got {show(value)}"
            )


def make_pass(name: str, options: Mapping[str, str] | None = None) -> Pass:
    """Instantiate a registered pass from string options, converted by the fields' types."""
    cls = get_pass(name)
    fields = option_fields(cls)
    kwargs: dict[str, Any] = {}
    if options is not None and not isinstance(options, Mapping):
        raise PassError(f"pass '{name}': options must be a mapping, got {show(options)}")
    for key, value in (options or {}).items():
        f = fields.get(key)
        if f is None or f.converter is not None or not isinstance(value, str):
            kwargs[key] = value  # a converter, or the type check when the pass is built, decides
        else:
            kwargs[key] = _convert(name, key, value, f.type)
    return build_pass(cls, kwargs)


def build_pass(cls: type[Pass], options: Mapping[str, Any]) -> Pass:
    """``cls(**options)``, with every failure a PassError naming the pass."""
    prefix = f"pass '{cls.name}': "
    try:
        return cls(**options)
    except KeyboardInterrupt:
        raise
    except BaseException as e:  # a user pass's own validators may raise anything
        message = message_of(e) if isinstance(e, IrperfError | TypeError) else describe(e)
        raise PassError(message if message.startswith(prefix) else prefix + message) from None


MAX_PIPELINE_PASSES = 64
"""A pipeline runs at most this many passes (20,000 repeats of one would run for a minute)."""


def build_pipeline(spec: str | Sequence[str | Pass]) -> list[Pass]:
    """Pass objects from a pipeline string, or from a sequence of pass names and Pass objects."""
    passes = _build_pipeline(spec)
    if len(passes) > MAX_PIPELINE_PASSES:
        raise PassError(
            f"a pipeline of {len(passes):,} passes is more than {MAX_PIPELINE_PASSES} "
            f"(the same pass again computes the same records)"
        )
    _refuse_repeats(passes)
    return passes


def _refuse_repeats(passes: Sequence[Pass]) -> None:
    """An analysis run again with the same options on the same inputs (no transform since, and
    none of the records it reads recomputed) computes the same records: a mistake, refused."""
    for i, p in enumerate(passes):
        if not isinstance(p, AnalysisPass) or p.may_transform:
            continue
        for q in passes[i + 1 :]:
            if not isinstance(q, AnalysisPass) or q.may_transform:
                break  # a transform (or one that may be): a new graph, other results
            if q.record_type in p.requires or (q.record_type is p.record_type and q != p):
                break  # its inputs changed, or another pass replaced its records
            if type(q) is type(p) and q == p:
                raise PassError(
                    f"pass '{p.name}' runs twice with the same options on the same inputs; "
                    f"the second would compute the same records"
                )


def _build_pipeline(spec: str | Sequence[str | Pass]) -> list[Pass]:
    if isinstance(spec, str):
        return [make_pass(n, o) for n, o in parse_pipeline(spec)]
    if not isinstance(spec, Sequence) or isinstance(spec, bytes | bytearray):
        raise PassError(
            f"passes must be a pipeline string or a sequence of pass names and Pass objects, "
            f"got {show(spec)}"
        )
    out: list[Pass] = []
    for item in spec:
        if isinstance(item, Pass):
            out.append(item)
        elif isinstance(item, type) and issubclass(item, Pass):
            out.append(build_pass(item, {}))
        elif isinstance(item, str):
            out += _build_pipeline(item)
        else:
            raise PassError(f"a pipeline item must be a pass name or a Pass, got {show(item)}")
    if not out:
        raise PassError("empty pipeline")
    return out


def run_pipeline(graph: Graph, spec: str | Sequence[str | Pass], *, check: bool = True) -> Graph:
    """Run passes in order on a copy of ``graph`` (which is never changed) and return the
    result. Transforms are verified after they run; any failure, an irperf error
    or any other exception a (user) pass raises, is a PassError naming the pass and the passes
    that ran before it (the original exception is its ``__cause__``)."""
    if not isinstance(graph, Graph):
        raise PassError(f"passes run on an irperf Graph, got {show(graph)}")
    done: list[str] = []
    passes = build_pipeline(spec)
    graph = graph.clone()  # analyses store records on it: the caller's graph never changes
    for p in passes:
        try:
            result = p.run(graph)
            if not isinstance(result, PassResult) or not isinstance(result.graph, Graph):
                raise PassError(f"run returned {show(result)}, not a PassResult with a Graph")
            if (result.modified or result.graph is not graph) and check:
                verify(result.graph)  # a new graph is checked, whatever the pass says of it
        except KeyboardInterrupt:
            raise
        except BaseException as e:  # SystemExit included: a user pass must not end the process
            before = ", ".join(done) or "none"
            what = message_of(e) if isinstance(e, IrperfError) else describe(e)
            what = what.removeprefix(f"pass '{p.name}': ")  # said once, in front
            cause = None if isinstance(e, IrperfError) else e
            raise PassError(f"pass '{p.name}' failed (after: {before}): {what}") from cause
        graph = result.graph
        done.append(p.name)
    return graph


def one_of(*values: str) -> Callable[[Any, Any, Any], None]:
    """An attrs validator for a string option, raising PassError with the valid values."""

    def check(inst: Any, attribute: Any, value: Any) -> None:
        if value not in values:
            raise PassError(
                f"pass '{inst.name}': option {attribute.name}={show(value)}; "
                f"valid: {', '.join(values)}"
            )

    return check
