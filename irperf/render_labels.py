"""Labels of a graph picture: escaping, per-node lines, cluster titles, the legend."""

from __future__ import annotations

import html
import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import graphviz

from irperf.graph import Graph, Node
from irperf.ops import Constant, Input, OpFamily
from irperf.repeats import Repeat

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


def legend(graph: Graph, drawn: Sequence[Node], runs: Sequence[Repeat], unread: int = 0) -> str:
    """An HTML graph label: the graph's name, a swatch per op family drawn and notes on what
    is not drawn (repetitions, ``unread`` weights that no node of this graph reads)."""
    families = dict.fromkeys(n.op.family for n in drawn)
    cells = "".join(
        f'<td bgcolor="{PALETTE.get(f, "#ffffff")}">{html.escape(f.value)}</td>'
        for f in OpFamily
        if f in families
    )
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
    title = html.escape(f"{graph.name}: {len(graph):,} nodes")
    swatches = f"<tr>{cells}</tr>" if cells else ""
    return (
        f'<<table border="0" cellspacing="2"><tr><td colspan="{max(1, len(families))}" '
        f'align="left"><b>{title}</b>{note}</td></tr>{swatches}</table>>'
    )
