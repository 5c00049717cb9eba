"""A user's overrides of the placement: per role or per node, a memory home and a core grid.

A TOML file::

    [role.ff1]                   # every node of a role
    home = "dram_interleaved"
    grid = [4, 8]
    [node."text.0.attn.wq"]      # one node (wins over its role)
    home = "l1_width_sharded"

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
from irperf.roles import ROLES, Role

KEYS = ("home", "grid")


@frozen
class Override:
    home: str | None = None
    grid: tuple[int, int] | None = None


@frozen
class Overrides:
    """Parsed overrides: ``origin`` names the file for messages."""

    origin: str
    roles: Mapping[Role, Override] = field(factory=dict)
    nodes: Mapping[str, Override] = field(factory=dict)

    def for_node(self, node: Node) -> Override:
        """The node's own override over its role's, key by key."""
        mine = self.nodes.get(node.name, Override())
        role = self.roles.get(node.role, Override()) if node.role is not None else Override()
        return Override(mine.home or role.home, mine.grid or role.grid)


def load_overrides(path: str | os.PathLike[str] | Overrides) -> Overrides:
    if isinstance(path, Overrides):
        return path
    if not isinstance(path, str | os.PathLike):
        raise PassError(f"overrides are a .toml file, got {show(path)}")
    text = os.fspath(path)
    where = f"placement overrides {show(text)}"
    data = parse_toml(read_input_text(text, where, PassError), where, PassError)
    unknown = [k for k in data if k not in ("role", "node")]
    if unknown:
        raise PassError(f"{where}: unknown table [{unknown[0]}]; use [role.NAME] or [node.NAME]")
    roles: dict[Role, Override] = {}
    for name, entry in _table(where, "role", data.get("role", {})).items():
        role = ROLES.get(name.lower())
        if role is None:
            raise PassError(f"{where}: [role.{name}] is not a role; roles: {', '.join(ROLES)}")
        roles[role] = _override(where, f"role.{name}", entry)
    nodes = {
        name: _override(where, f"node.{name}", entry)
        for name, entry in _table(where, "node", data.get("node", {})).items()
    }
    return Overrides(text, roles, nodes)


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
