"""Labels of a graph picture: escaping, per-node lines, cluster titles, fills and the legend."""

from __future__ import annotations

import html
import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import graphviz

from irperf.graph import Graph, Node
from irperf.ops import Constant, Input, OpFamily
from irperf.repeats import Repeat
from irperf.roles import Role

PALETTE: dict[OpFamily, str] = {
    OpFamily.SOURCE: "#e5e5e5",
    OpFamily.LINALG: "#9ecae1",
    OpFamily.ATTENTION: "#fdae6b",
    OpFamily.ELEMENTWISE: "#c7e9c0",
    OpFamily.NORMALIZATION: "#dadaeb",
    OpFamily.MOVEMENT: "#fff2ae",
    OpFamily.EMBEDDING: "#fbb4c4",
    OpFamily.COLLECTIVE: "#fb8072",
    OpFamily.FUSED: "#80cdc1",
}
"""Fill colour per op family; the picture's legend lists the families it uses."""

COLOR_MODES: tuple[str, ...] = ("family", "role", "chip", "home")
"""What a node's fill says: its op family (the default), its role, or how it lies over chips."""

ROLE_PALETTE: dict[Role, str] = {
    Role.Q: "#80b1d3",
    Role.K: "#b3cde3",
    Role.V: "#cbd5e8",
    Role.O: "#bebada",
    Role.FF1: "#b3de69",
    Role.FF2: "#ccebc5",
    Role.FF3: "#e6f5c9",
    Role.FC1: "#fdb462",
    Role.FC2: "#fed9a6",
    Role.CROSS_Q: "#bc80bd",
    Role.CROSS_KV: "#decbe4",
    Role.CROSS_O: "#f4cae4",
    Role.ATTENTION: "#ffed6f",
    Role.ROPE: "#ffffcc",
    Role.KV_CACHE: "#8dd3c7",
    Role.PROJECTOR: "#b3e2cd",
    Role.LM_HEAD: "#fccde5",
    Role.EMBED: "#fbb4ae",
    Role.NORM: "#dadaeb",
    Role.RESIDUAL: "#e5d8bd",
    Role.GATE: "#f1e2cc",
    Role.ACTIVATION: "#fdcdac",
    Role.MASK: "#cccccc",
    Role.INPUT: "#e5e5e5",
    Role.COLLECTIVE: "#fb8072",
    Role.OTHER: "#f2f2f2",
}
"""Fill colour per role (``--color role``): the projections of one layer in neighbouring hues."""

CHIP_PALETTE: dict[str, str] = {
    "replicated": "#e5e5e5",
    "sharded": "#9ecae1",
    "partial": "#fdae6b",
    "collective": "#fb8072",
}
"""Fill colour per layout kind, and for collectives (``--color chip``)."""

HOME_PALETTE: dict[str, str] = {
    "dram_interleaved": "#d9d9d9",
    "dram_sharded": "#9e9ac8",
    "l1_interleaved": "#a1d99b",
    "l1_height_sharded": "#74c476",
    "l1_width_sharded": "#fdd0a2",
    "l1_block_sharded": "#fd8d3c",
}
"""Fill colour per memory home (``--color home``; a placement's ``output_home`` per node)."""

COLLECTIVE_SHAPE = "hexagon"
"""The node shape of a collective, whatever the colouring."""

_NO_FILL = "#ffffff"
_LEGEND_ROW = 10
"""Swatches per legend row (the op families fit in one)."""


def _chip_kind(node: Node) -> str:
    return "collective" if node.op.family is OpFamily.COLLECTIVE else node.type.layout.kind


def fill(node: Node, color: str = "family", homes: Mapping[str, str] | None = None) -> str:
    """``node``'s fill colour under the colouring ``color`` (one of ``COLOR_MODES``); ``home``
    reads the node's memory home from ``homes``."""
    if color == "home":
        return HOME_PALETTE.get((homes or {}).get(node.name, ""), _NO_FILL)
    if color == "role":
        return ROLE_PALETTE.get(node.role, _NO_FILL) if node.role is not None else _NO_FILL
    if color == "chip":
        return CHIP_PALETTE[_chip_kind(node)]
    return PALETTE.get(node.op.family, _NO_FILL)


def swatches(
    drawn: Sequence[Node], color: str = "family", homes: Mapping[str, str] | None = None
) -> list[tuple[str, str]]:
    """The legend's (fill, text) pairs for what ``drawn`` uses, in a fixed order. Under
    ``chip``, the split swatch names each (dimension, parts) drawn: ``split d1/2, d2/2``."""
    if color == "home":
        used = {(homes or {}).get(n.name) for n in drawn}
        return [(fill_, home) for home, fill_ in HOME_PALETTE.items() if home in used]
    if color == "role":
        roles = dict.fromkeys(n.role for n in drawn)
        found = [(ROLE_PALETTE[r], r.value) for r in Role if r in roles]
        return found + ([(_NO_FILL, "no role")] if None in roles else [])
    if color == "chip":
        kinds = {_chip_kind(n) for n in drawn}
        layouts = [n.type.layout for n in drawn if _chip_kind(n) != "collective"]
        splits = sorted({(lay.dim or 0, lay.parts) for lay in layouts if lay.sharded})
        partial = sorted({lay.parts for lay in layouts if lay.partial})
        text = {
            "replicated": "replicated",
            "sharded": "split " + ", ".join(f"d{d}/{p}" for d, p in splits),
            "partial": "partial sum " + ", ".join(f"/{p}" for p in partial),
            "collective": f"collective ({COLLECTIVE_SHAPE})",
        }
        return [(CHIP_PALETTE[k], text[k]) for k in CHIP_PALETTE if k in kinds]
    families = dict.fromkeys(n.op.family for n in drawn)
    return [(PALETTE.get(f, _NO_FILL), f.value) for f in OpFamily if f in families]


# Characters that must not reach graphviz raw: quotes end the string, ``<``/``>`` start HTML
# labels and record ports, ``{ } |`` are record-label syntax. A backslash-escaped one is drawn
# as itself in both plain and record labels.
_LABEL_ESCAPES = str.maketrans(
    {
        "\\": "\\\\",
        '"': '\\"',
        "<": "\\<",
        ">": "\\>",
        "{": "\\{",
        "}": "\\}",
        "|": "\\|",
        "\n": "\\n",
        "\r": "",
    }
)


def escape_label(text: str) -> str:
    """``text`` as a DOT label drawn literally (no HTML, record syntax or ``\\N`` escapes)."""
    label: str = graphviz.nohtml(text.translate(_LABEL_ESCAPES))
    return label


# ---- analysis records, by duck typing (irperf does not know the passes) -------------------


def _int_attr(record: object, attr: str) -> int | None:
    value = getattr(record, attr, None)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def cost_lines(name: str, tables: Sequence[Mapping[str, Any]]) -> list[str]:
    """``FLOPs n`` and ``bytes n`` (read + written) from the first record that has them; zero
    counts are left out to keep views and sources quiet."""
    flops: int | None = None
    moved: int | None = None
    for table in tables:
        record = table.get(name)
        if record is None:
            continue
        if flops is None:
            flops = _int_attr(record, "flops")
        if moved is None:
            read, written = _int_attr(record, "bytes_read"), _int_attr(record, "bytes_written")
            if read is not None and written is not None:
                moved = read + written
    lines = []
    if flops:
        lines.append(f"FLOPs {flops:,}")
    if moved:
        lines.append(f"bytes {moved:,}")
    return lines


def source_line(source: Node, user: Node) -> str:
    """A folded weight or constant in its user's label: ``weight: bf16[1280x1280]``; a shared
    graph input by its full name: ``input text.rope.cos: bf16[128x128]``."""
    if isinstance(source.op, Input):
        return f"input {source.name}: {source.type}"
    dotted = user.name + "."
    rel = source.name[len(dotted) :] if source.name.startswith(dotted) else ""
    rel = rel or source.name.rsplit(".", 1)[-1]
    if isinstance(source.op, Constant):
        rel += f" = {source.op.value:g}"
    return f"{rel}: {source.type}"


def titled(scope: str, kind: str | None) -> str:
    return f"{scope} ({kind})" if kind is not None else scope


def run_label(run: Repeat) -> str:
    """``vision.local.0 .. vision.local.31 (vision.local)  x32``, or for a longer period its
    kinds in order: ``text.0 .. text.39 (text.self x3, text.cross, text.self)  x8``."""
    span = f"{run.blocks[0]} .. {run.blocks[-1]}"
    if run.period == 1:
        return f"{titled(span, run.kind)}  x{run.times}"
    parts = []
    for kind, same in itertools.groupby(run.kinds):
        count = len(list(same))
        parts.append(f"{kind or 'block'} x{count}" if count > 1 else kind or "block")
    return f"{span} ({', '.join(parts)})  x{run.times}"


def legend(
    graph: Graph,
    drawn: Sequence[Node],
    runs: Sequence[Repeat],
    unread: int = 0,
    color: str = "family",
    homes: Mapping[str, str] | None = None,
) -> str:
    """An HTML graph label: the graph's name (and the chips it is split over), a swatch per
    op family, role or layout drawn (``color``) and notes on what is not drawn (repetitions,
    ``unread`` weights that no node of this graph reads)."""
    found = swatches(drawn, color, homes)
    rows = [found[i : i + _LEGEND_ROW] for i in range(0, len(found), _LEGEND_ROW)]
    note = ""
    if runs:
        note = (
            "<br/>xN: N repetitions of a block or a sequence of blocks, one drawn"
            " (its costs are per repetition)"
        )
    if unread:
        note += (
            f"<br/>{unread:,} weights held in memory but read by no op of this graph are not "
            "drawn (--show-weights draws them)"
        )
    title = f"{graph.name}: {len(graph):,} nodes"
    split = graph.meta.get("tensor_parallel")
    if isinstance(split, dict):
        title += f", tensor-parallel over {split.get('chips')} chips"
    cells = "".join(
        "<tr>"
        + "".join(f'<td bgcolor="{bg}">{html.escape(text)}</td>' for bg, text in row)
        + "</tr>"
        for row in rows
    )
    span = len(rows[0]) if rows else 1
    return (
        f'<<table border="0" cellspacing="2"><tr><td colspan="{span}" '
        f'align="left"><b>{html.escape(title)}</b>{note}</td></tr>{cells}</table>>'
    )
