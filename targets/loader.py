"""Load a Target by registered name or from a user's TOML file; every failure is a TargetError."""

from __future__ import annotations

import difflib
import functools
import os
import types
import typing
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import attrs

from irperf.checks import RangeCheck, input_file_problem, parse_toml, show
from irperf.errors import TargetError
from targets.fitted import CollectiveFit, DramFit, Fitted, KernelFit
from targets.target import ComputeRate, Link, Target

_SUFFIX = ".toml"
_PER_CORE = "flops_per_s_per_core"
_PER_CHIP = "flops_per_s_per_chip"
_FLOAT_SAFE = 2**1000
_HINT_NAMES = {
    "Fitted": Fitted,
    "KernelFit": KernelFit,
    "DramFit": DramFit,
    "CollectiveFit": CollectiveFit,
}
"""Names a record's annotations use that its module imports only for type checking."""
_NOT_IN_FILES = frozenset({"origin"})
"""Target fields the loader sets, which a file may not."""


def _data_dir() -> Traversable:
    return resources.files("targets").joinpath("data")


def target_names() -> list[str]:
    """Names of the targets shipped in ``targets/data``, sorted."""
    return list(_shipped_names())


@functools.cache
def _shipped_names() -> tuple[str, ...]:
    return tuple(
        sorted(
            f.name.removesuffix(_SUFFIX) for f in _data_dir().iterdir() if f.name.endswith(_SUFFIX)
        )
    )


def list_targets() -> list[Target]:
    """Every shipped target, in name order."""
    return [load_target(name) for name in target_names()]


def load_target(name_or_path: str | os.PathLike[str] | Target) -> Target:
    """A shipped target by name (``n300``, in any case), or one read from a ``.toml`` file; a
    loaded ``Target`` is returned as it is (pass options take either: this is their converter).

    A file is parsed once per process (again only if it changes on disk): sweeps and pipelines
    that name one target many times share one frozen ``Target``.
    """
    if isinstance(name_or_path, Target):
        return name_or_path
    if not isinstance(name_or_path, str | os.PathLike):
        raise TargetError(
            f"a target is a name or a path to a {_SUFFIX} file, got {show(name_or_path)}"
        )
    text = os.fspath(name_or_path)
    names = target_names()
    if not isinstance(name_or_path, os.PathLike) and text.lower() in names:
        return _shipped(text.lower())
    if not (
        text.endswith(_SUFFIX)
        or os.sep in text
        or "/" in text
        or isinstance(name_or_path, os.PathLike)
    ):
        raise TargetError(
            f"unknown target {show(text)}; valid names: {', '.join(names)}, "
            f"or a path to a {_SUFFIX} file"
        )
    problem = input_file_problem(text)
    if problem is not None:
        raise TargetError(f"target {problem}")
    path = Path(text)
    stat = path.stat()
    return _from_file(str(path.resolve()), stat.st_mtime_ns, stat.st_size, text)


@functools.cache
def _shipped(name: str) -> Target:
    source = f"targets/data/{name}{_SUFFIX}"
    target = parse_target(_data_dir().joinpath(name + _SUFFIX).read_text("utf-8"), source)
    if target.name != name:
        raise TargetError(f"{source}: name {show(target.name)} does not match the file name")
    return target


@functools.lru_cache(maxsize=256)
def _from_file(resolved: str, mtime_ns: int, size: int, shown: str) -> Target:
    """One parse per file version: (path, modification time, size) is the key."""
    try:
        text = Path(resolved).read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise TargetError(f"{show(shown)}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise TargetError(
            f"cannot read target file {show(shown)}: {e.strerror or _one_line(e)}"
        ) from None
    return parse_target(text, shown)


DEFAULT_TARGET = "n300-seed"
"""The target of passes not told one: the seed post's idealised n300."""


def default_target() -> Target:
    return load_target(DEFAULT_TARGET)


def parse_target(text: str, source: str = "<string>") -> Target:
    """A Target from TOML text; ``source`` names the file in error messages."""
    if not isinstance(text, str):
        raise TargetError(f"{source}: target text must be a str, got {show(text)}")
    table = parse_toml(text, source, TargetError)
    try:
        return Target(**_record_kwargs(table, Target, ""), origin=source)
    except TargetError as e:
        raise TargetError(f"{source}: {e}") from None


def _record_kwargs(table: dict[str, Any], cls: type[Any], prefix: str) -> dict[str, Any]:
    """Check ``table`` against the fields of attrs class ``cls`` and convert each value."""
    fields = [f for f in attrs.fields(cls) if f.name not in _NOT_IN_FILES]
    names = [f.name for f in fields]
    for key in table:
        if key not in names:
            raise TargetError(f"unknown field {show(prefix + key)}; {_suggest(key, names)}")
    hints = typing.get_type_hints(cls, localns=_HINT_NAMES)
    kwargs: dict[str, Any] = {}
    for f in fields:
        where = prefix + f.name
        if f.name not in table:
            if f.default is attrs.NOTHING:
                raise TargetError(f"missing field {where!r}")
            continue
        value = table[f.name]
        if f.name == "compute" and cls is Target:
            grid = attrs.fields(Target).grid
            if grid.validator is not None:  # the per-chip rates divide by the grid's cores
                grid.validator(None, grid, kwargs["grid"])
            cores = kwargs["grid"][0] * kwargs["grid"][1]
            kwargs[f.name] = _compute(value, cores)
        elif f.name == "link" and cls is Target:
            kwargs[f.name] = _record(_table(value, where), Link, f"{where}.")
        else:
            kwargs[f.name] = _convert(value, hints[f.name], where)
    return kwargs


def _record(table: dict[str, Any], cls: type[Any], prefix: str) -> Any:
    """An instance of ``cls`` from ``table``; its own errors are prefixed with ``prefix``."""
    kwargs = _record_kwargs(table, cls, prefix)
    try:
        return cls(**kwargs)
    except TargetError as e:
        raise TargetError(f"{prefix.rstrip('.')}: {e}") from None


def _compute(value: object, cores_per_chip: int) -> tuple[ComputeRate, ...]:
    """The ``compute`` array; a rate per chip is divided over the chip's cores."""
    if not isinstance(value, list):
        raise TargetError(f"field 'compute' must be an array of tables, got {_show(value)}")
    rates = []
    for i, item in enumerate(value):
        where = f"compute[{i}]"
        entry = dict(_table(item, where))
        if (_PER_CORE in entry) == (_PER_CHIP in entry):
            raise TargetError(f"{where} needs exactly one of {_PER_CORE}, {_PER_CHIP}")
        per_chip = None
        if _PER_CHIP in entry:
            per_chip = _convert(entry.pop(_PER_CHIP), float, f"{where}.{_PER_CHIP}")
            # a per-chip rate too large for a float stays as given: the range check reports it
            entry[_PER_CORE] = (
                per_chip / cores_per_chip if isinstance(per_chip, float) else per_chip
            )
        try:
            rates.append(_record(entry, ComputeRate, f"{where}."))
        except TargetError as e:
            if per_chip is None or _PER_CORE not in str(e):
                raise
            per_core = attrs.fields(ComputeRate).flops_per_s_per_core.validator
            bounds = per_core.text if isinstance(per_core, RangeCheck) else "in range"
            raise TargetError(  # say it in the units the file gave
                f"{where}.{_PER_CHIP} {show(per_chip)} is {show(entry[_PER_CORE])} per core over "
                f"{cores_per_chip} cores; a core's rate must be {bounds} FLOP/s"
            ) from None
    return tuple(rates)


def _suggest(key: str, names: list[str]) -> str:
    """``did you mean 'x'?`` for a near miss, else every valid field."""
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else f"valid fields: {', '.join(names)}"


def _table(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TargetError(f"field {where!r} must be a table, got {_show(value)}")
    return value


def _convert(value: object, tp: Any, where: str) -> Any:
    """``value`` as Python type ``tp`` (str, int, float, optional, tuple), or a TargetError."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (types.UnionType, typing.Union):
        (inner,) = [a for a in args if a is not type(None)]
        return _convert(value, inner, where)
    if origin is tuple:
        if not isinstance(value, list):
            raise _ill_typed(where, "an array", value)
        if len(args) == 2 and args[1] is Ellipsis:
            args = (args[0],) * len(value)
        elif len(value) != len(args):
            raise _ill_typed(where, f"an array of {len(args)} values", value)
        return tuple(
            _convert(v, a, f"{where}[{i}]")
            for i, (v, a) in enumerate(zip(value, args, strict=True))
        )
    if attrs.has(tp):  # a nested record: the [fit] table and its kernels
        return _record(_table(value, where), tp, f"{where}.")
    if tp is str and isinstance(value, str):
        return value
    # TOML booleans are Python ints; never accept one as a count or a rate.
    if tp is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if tp is float and isinstance(value, int | float) and not isinstance(value, bool):
        # an integer too large for a float stays an int: the field's range check reports it
        return float(value) if abs(value) < _FLOAT_SAFE else value
    if tp in (str, int, float):
        kind = {str: "a string", int: "an integer", float: "a number"}[tp]
        raise _ill_typed(where, kind, value)
    raise TargetError(f"field {where!r} has a type the loader cannot read: {tp}")


def _ill_typed(where: str, kind: str, value: object) -> TargetError:
    return TargetError(f"field {where!r} must be {kind}, got {_show(value)}")


def _show(value: object) -> str:
    return f"{type(value).__name__} {show(value)}"


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())
