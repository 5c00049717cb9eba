"""A user's placement policy: per op kind, role or node, and per phase, a memory home and a
core grid.

A TOML file::

    [kind.matmul]                # every op of a kind (its ``Op.kind``)
    grid = [8, 8]
    [role.ff1]                   # every node of a role (wins over its kind)
    home = "dram_interleaved"
    grid = [4, 8]
    [phase.decode.kind.matmul]   # the same, in one phase only (vision, prefill or decode)
    grid = [4, 8]
    [node."text.0.attn.wq"]      # one node (wins over everything)
    home = "l1_width_sharded"

Precedence, key by key: the node's own entry, then its role's in its phase, its role's, its
kind's in its phase, its kind's.

``home`` is one of the homes of ``irperf.homes.Home`` (a source takes a DRAM home, a result
any); ``grid`` is [rows, cols] within the target's compute grid (checked where it is used).
Unknown tables, keys, roles, homes or bad grids are one-line errors naming the table.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from attrs import field, frozen

from irperf.checks import parse_toml, read_input_text, show
from irperf.errors import PassError
from irperf.graph import Node
from irperf.homes import HOMES
from irperf.ops import Op
from irperf.roles import ROLES, Role

KEYS = ("home", "grid")


@frozen
class Override:
    home: str | None = None
    grid: tuple[int, int] | None = None


PHASES = ("vision", "prefill", "decode")
NONE = Override()


@frozen
class Overrides:
    """Parsed overrides: ``origin`` names the file for messages."""

    origin: str
    roles: Mapping[Role, Override] = field(factory=dict)
    nodes: Mapping[str, Override] = field(factory=dict)
    kinds: Mapping[str, Override] = field(factory=dict)
    phases: Mapping[str, Overrides] = field(factory=dict)
    """Per phase, its own kinds and roles."""

    def for_node(self, node: Node, phase: str | None = None) -> Override:
        """The module docstring's precedence, key by key."""
        here = self.phases.get(phase) if phase is not None else None
        chain = [self.nodes.get(node.name, NONE)]
        if node.role is not None:
            chain += [here.roles.get(node.role, NONE) if here else NONE]
            chain += [self.roles.get(node.role, NONE)]
        chain += [here.kinds.get(node.op.kind, NONE) if here else NONE]
        chain += [self.kinds.get(node.op.kind, NONE)]
        home = next((o.home for o in chain if o.home is not None), None)
        grid = next((o.grid for o in chain if o.grid is not None), None)
        return Override(home, grid)


def load_overrides(path: str | os.PathLike[str] | Overrides) -> Overrides:
    if isinstance(path, Overrides):
        return path
    if not isinstance(path, str | os.PathLike):
        raise PassError(f"overrides are a .toml file, got {show(path)}")
    text = os.fspath(path)
    where = f"placement overrides {show(text)}"
    data = parse_toml(read_input_text(text, where, PassError), where, PassError)
    unknown = [k for k in data if k not in ("role", "node", "kind", "phase")]
    if unknown:
        raise PassError(
            f"{where}: unknown table [{unknown[0]}]; use [kind.NAME], [role.NAME], "
            f"[phase.PHASE.kind.NAME], [phase.PHASE.role.NAME] or [node.NAME]"
        )
    roles, kinds = _roles_kinds(where, "", data)
    nodes = {
        name: _override(where, f"node.{name}", entry)
        for name, entry in _table(where, "node", data.get("node", {})).items()
    }
    phases: dict[str, Overrides] = {}
    for phase, entry in _table(where, "phase", data.get("phase", {})).items():
        if phase.lower() not in PHASES:
            raise PassError(f"{where}: [phase.{phase}] is not a phase; phases: {', '.join(PHASES)}")
        table = _table(where, f"phase.{phase}", entry)
        bad = [k for k in table if k not in ("role", "kind")]
        if bad:
            raise PassError(
                f"{where}: [phase.{phase}] has unknown table [{bad[0]}]; use kind or role"
            )
        r, k = _roles_kinds(where, f"phase.{phase}.", table)
        phases[phase.lower()] = Overrides(text, r, {}, k)
    return Overrides(text, roles, nodes, kinds, phases)


def _roles_kinds(
    where: str, prefix: str, data: Mapping[str, Any]
) -> tuple[dict[Role, Override], dict[str, Override]]:
    roles: dict[Role, Override] = {}
    for name, entry in _table(where, f"{prefix}role", data.get("role", {})).items():
        role = ROLES.get(name.lower())
        if role is None:
            raise PassError(
                f"{where}: [{prefix}role.{name}] is not a role; roles: {', '.join(ROLES)}"
            )
        roles[role] = _override(where, f"{prefix}role.{name}", entry)
    kinds: dict[str, Override] = {}
    known = op_kinds()
    for name, entry in _table(where, f"{prefix}kind", data.get("kind", {})).items():
        if name.lower() not in known:
            raise PassError(
                f"{where}: [{prefix}kind.{name}] is not an op kind; kinds: {', '.join(known)}"
            )
        kinds[name.lower()] = _override(where, f"{prefix}kind.{name}", entry)
    return roles, kinds


def op_kinds() -> list[str]:
    """Every op kind irperf knows (a user's op classes included once imported), sorted."""
    seen: set[str] = set()
    todo: list[type[Op]] = [Op]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if "kind" in vars(cls) and cls is not Op:
            seen.add(cls.kind)
    return sorted(seen)


def _table(where: str, key: str, value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PassError(f"{where}: [{key}] must be a table, got {show(value)}")
    return value


def _override(where: str, key: str, value: object) -> Override:
    entry = _table(where, key, value)
    for k in entry:
        if k not in KEYS:
            raise PassError(f"{where}: [{key}] has unknown key {show(k)}; valid: home, grid")
    home = entry.get("home")
    if home is not None and (not isinstance(home, str) or home.lower() not in HOMES):
        raise PassError(f"{where}: [{key}] home = {show(home)}; valid: {', '.join(HOMES)}")
    grid = entry.get("grid")
    if grid is not None:
        ok = isinstance(grid, list) and len(grid) == 2
        ok = ok and all(type(g) is int and 1 <= g <= 1024 for g in grid)
        if not ok:
            raise PassError(f"{where}: [{key}] grid = {show(grid)}; two integers from 1 to 1,024")
    return Override(
        home.lower() if isinstance(home, str) else None,
        (grid[0], grid[1]) if grid is not None else None,
    )
