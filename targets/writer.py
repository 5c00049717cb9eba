"""A Target written back as a TOML target file that ``load_target`` reads to the same record."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import attrs

from targets.target import Target

_LOADER_SET = frozenset({"origin"})
_TABLES = ("link", "fit")
"""Fields written as tables of their own, after every plain key (TOML's order)."""


def target_toml(target: Target, comments: Sequence[str] = ()) -> str:
    """``target`` as TOML, headed by ``comments`` (one ``#`` line each)."""
    lines = [f"# {c}" if c else "#" for c in comments]
    tables = []
    for f in attrs.fields(Target):
        value = getattr(target, f.name)
        if f.name in _LOADER_SET or value is None:
            continue
        if f.name in _TABLES:
            tables.append((f.name, value))
        elif f.name == "compute":
            lines.append("compute = [")
            lines += [f"    {_value(c)}," for c in value]
            lines.append("]")
        elif f.name == "sources":
            lines.append("sources = [")
            lines += [f"    {_value(s)}," for s in value]
            lines.append("]")
        else:
            lines.append(f"{f.name} = {_value(value)}")
    for name, record in tables:
        lines += ["", f"[{name}]"]
        for k, v in attrs.asdict(record, recurse=False).items():
            if v is None or v == ():
                continue
            if isinstance(v, tuple) and len(v) > 1:  # one entry a line
                lines += [f"{k} = [", *(f"    {_value(x)}," for x in v), "]"]
            else:
                lines.append(f"{k} = {_value(v)}")
    return "\n".join(lines) + "\n"


def _value(v: Any) -> str:
    """A TOML value: strings as JSON writes them (a valid TOML basic string), floats by repr
    (exact round trip), records as inline tables."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, int | float):
        return repr(v)
    if attrs.has(type(v)):
        fields = attrs.asdict(v, recurse=False)
        return "{ " + ", ".join(f"{k} = {_value(x)}" for k, x in fields.items()) + " }"
    if isinstance(v, tuple | list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    raise TypeError(f"no TOML form for {type(v).__name__}")
