"""Load a Target by registered name or from a user's TOML file; every failure is a TargetError."""

from __future__ import annotations

import os
import tomllib
import types
import typing
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import attrs

from irperf.errors import TargetError
from targets.target import ComputeRate, Link, Target

_SUFFIX = ".toml"
_PER_CORE = "flops_per_s_per_core"
_PER_CHIP = "flops_per_s_per_chip"


def _data_dir() -> Traversable:
    return resources.files("targets").joinpath("data")


def target_names() -> list[str]:
    """Names of the targets shipped in ``targets/data``, sorted."""
    return sorted(
        f.name.removesuffix(_SUFFIX) for f in _data_dir().iterdir() if f.name.endswith(_SUFFIX)
    )


def list_targets() -> list[Target]:
    """Every shipped target, in name order."""
    return [load_target(name) for name in target_names()]


def load_target(name_or_path: str) -> Target:
    """A shipped target by name (``n300``), or one read from a path to a ``.toml`` file."""
    names = target_names()
    if name_or_path in names:
        source = f"targets/data/{name_or_path}{_SUFFIX}"
        target = parse_target(
            _data_dir().joinpath(name_or_path + _SUFFIX).read_text("utf-8"), source
        )
        if target.name != name_or_path:
            raise TargetError(f"{source}: name {target.name!r} does not match the file name")
        return target
    if not (name_or_path.endswith(_SUFFIX) or os.sep in name_or_path or "/" in name_or_path):
        raise TargetError(
            f"unknown target {name_or_path!r}; valid names: {', '.join(names)}, "
            f"or a path to a {_SUFFIX} file"
        )
    path = Path(name_or_path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TargetError(f"target file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise TargetError(f"cannot read target file {path}: {_one_line(e)}") from None
    return parse_target(text, str(path))


def parse_target(text: str, source: str = "<string>") -> Target:
    """A Target from TOML text; ``source`` names the file in error messages."""
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise TargetError(f"{source}: malformed TOML: {_one_line(e)}") from None
    try:
        return Target(**_record_kwargs(table, Target, ""))
    except TargetError as e:
        raise TargetError(f"{source}: {e}") from None


def _record_kwargs(table: dict[str, Any], cls: type[Any], prefix: str) -> dict[str, Any]:
    """Check ``table`` against the fields of attrs class ``cls`` and convert each value."""
    fields = attrs.fields(cls)
    names = [f.name for f in fields]
    for key in table:
        if key not in names:
            raise TargetError(f"unknown field {prefix + key!r}; valid fields: {', '.join(names)}")
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in fields:
        where = prefix + f.name
        if f.name not in table:
            if f.default is attrs.NOTHING:
                raise TargetError(f"missing field {where!r}")
            continue
        value = table[f.name]
        if f.name == "compute" and cls is Target:
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
        if _PER_CHIP in entry:
            per_chip = _convert(entry.pop(_PER_CHIP), float, f"{where}.{_PER_CHIP}")
            entry[_PER_CORE] = per_chip / cores_per_chip
        rates.append(_record(entry, ComputeRate, f"{where}."))
    return tuple(rates)


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
    if tp is str and isinstance(value, str):
        return value
    # TOML booleans are Python ints; never accept one as a count or a rate.
    if tp is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if tp is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if tp in (str, int, float):
        kind = {str: "a string", int: "an integer", float: "a number"}[tp]
        raise _ill_typed(where, kind, value)
    raise TargetError(f"field {where!r} has a type the loader cannot read: {tp}")


def _ill_typed(where: str, kind: str, value: object) -> TargetError:
    return TargetError(f"field {where!r} must be {kind}, got {_show(value)}")


def _show(value: object) -> str:
    return f"{type(value).__name__} {value!r}"


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())
