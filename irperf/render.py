"""Graphviz pictures of a graph: clusters per block, colours per op family, repeats collapsed."""

from __future__ import annotations

import html
import itertools
import shutil
import subprocess
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import graphviz
from attrs import define, field, frozen

from irperf.errors import IrperfError
from irperf.graph import Graph, Node
from irperf.ops import Constant, Input, OpFamily, Weight

FORMATS = ("dot", "svg", "png")

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

_FONT = "Helvetica"
_NO_DOT = (
    "needs the graphviz 'dot' program: install graphviz (apt-get install graphviz) or use --dot"
)

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


# ---- repeated blocks ----------------------------------------------------------------------


@frozen
class Repeat:
    """A run of consecutive, structurally identical blocks of one kind; ``blocks[0]`` is drawn."""

    kind: str | None
    blocks: tuple[str, ...]


def block_members(graph: Graph) -> dict[str, list[Node]]:
    """The nodes of each block, blocks in order of their first node, nodes in graph order."""
    members: dict[str, list[Node]] = {}
    for node in graph:
        if node.block is not None:
            members.setdefault(node.block, []).append(node)
    return members


def _relative(name: str, scope: str) -> str:
    dotted = scope + "."
    return name[len(dotted) :] if name.startswith(dotted) else name


def _signature(graph: Graph, scope: str, nodes: Sequence[Node]) -> tuple[Any, ...]:
    """What must agree for two blocks to be drawn as one: names relative to the block, ops, types,
    and operands (relative when inside the block, else only marked external)."""

    def operand(name: str) -> str | None:
        return _relative(name, scope) if graph.node(name).block == scope else None

    return tuple(
        (_relative(n.name, scope), n.op, n.type, tuple(operand(o) for o in n.operands))
        for n in nodes
    )


def find_repeats(graph: Graph) -> list[Repeat]:
    """Runs (two or more) of consecutive blocks of the same kind with identical signatures."""
    members = block_members(graph)
    runs: list[Repeat] = []
    run: list[str] = []
    previous: tuple[Any, ...] = ()
    for scope, nodes in members.items():
        sig = (graph.blocks.get(scope), _signature(graph, scope, nodes))
        if run and sig == previous:
            run.append(scope)
            continue
        if len(run) > 1:
            runs.append(Repeat(graph.blocks.get(run[0]), tuple(run)))
        run, previous = [scope], sig
    if len(run) > 1:
        runs.append(Repeat(graph.blocks.get(run[0]), tuple(run)))
    return runs


# ---- analysis records, by duck typing (irperf does not know the passes) -------------------


def _int_attr(record: object, attr: str) -> int | None:
    value = getattr(record, attr, None)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _cost_lines(name: str, tables: Sequence[Mapping[str, Any]]) -> list[str]:
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


def _fusion_groups(graph: Graph, drawn: Iterable[str]) -> dict[str, list[str]]:
    """Group id -> drawn members, from the first record kind with a ``str`` ``fusion_group``;
    groups of one are left out."""
    tables = [graph.records(kind) for kind in graph.record_kinds()]
    table = next(
        (
            t
            for t in tables
            if any(isinstance(getattr(r, "fusion_group", None), str) for r in t.values())
        ),
        None,
    )
    if table is None:
        return {}
    groups: dict[str, list[str]] = {}
    for name in drawn:
        group = getattr(table.get(name), "fusion_group", None)
        if isinstance(group, str):
            groups.setdefault(group, []).append(name)
    return {g: names for g, names in groups.items() if len(names) > 1}


# ---- the cluster tree ---------------------------------------------------------------------


@define
class _Cluster:
    label: str
    style: dict[str, str]
    nodes: list[str] = field(factory=list)
    children: dict[tuple[str, str], _Cluster] = field(factory=dict)


_STAGE_STYLE = {"style": "rounded,filled", "fillcolor": "#f7f7f7", "color": "#bbbbbb"}
_BLOCK_STYLE = {"style": "rounded", "color": "#888888"}
_REPEAT_STYLE = {"style": "rounded,filled", "fillcolor": "#eef3fb", "color": "#3b5b92"}
_FUSION_STYLE = {"style": "dashed,rounded", "color": "#d62728", "penwidth": "1.5"}


def _emit(parent: Any, cluster: _Cluster, ids: Mapping[str, str], counter: Iterator[int]) -> None:
    for child in cluster.children.values():
        with parent.subgraph(name=f"cluster_{next(counter)}") as sub:
            sub.attr(label=escape_label(child.label), **child.style)
            _emit(sub, child, ids, counter)
    for name in cluster.nodes:
        parent.node(ids[name])


# ---- DOT ----------------------------------------------------------------------------------


def to_dot(graph: Graph, *, collapse_repeats: bool = False, show_weights: bool = False) -> str:
    """DOT source for ``graph``.

    One cluster per block (label: scope and kind) inside a cluster per stage; a node's label is
    its name relative to its cluster, ``op.describe()``, its result type, the weights it reads
    (unless ``show_weights`` draws them as nodes) and, when the graph carries analysis records,
    its FLOPs and bytes. Fusion groups are dashed clusters. ``collapse_repeats`` draws one block
    of each run of identical blocks, labelled ``xN``, and redirects edges from the others to it.
    """
    runs = find_repeats(graph) if collapse_repeats else []
    members = block_members(graph)
    alias, member_of = _collapse(runs, members)

    def folded(node: Node) -> bool:
        return (
            not show_weights
            and isinstance(node.op, Weight | Constant)
            and bool(graph.users(node.name))
        )

    drawn = [n for n in graph if n.name not in alias and not folded(n)]
    ids = {n.name: f"n{i}" for i, n in enumerate(drawn)}

    dot = graphviz.Digraph("irperf")
    dot.attr(
        rankdir="TB",
        newrank="true",
        nodesep="0.25",
        ranksep="0.3",
        fontname=_FONT,
        fontsize="12",
        labelloc="t",
        labeljust="l",
        label=_legend(graph, drawn, runs),
    )
    dot.attr("node", shape="box", style="rounded,filled", fontname=_FONT, fontsize="10")
    dot.attr("edge", arrowsize="0.6", color="#555555")
    _emit(dot, _cluster_tree(graph, drawn, members, runs), ids, itertools.count())

    tables = [graph.records(kind) for kind in graph.record_kinds()]
    for node in drawn:
        where = node.block if node.block is not None else node.stage
        short = _relative(node.name, where) if where is not None else node.name
        lines = [short, node.op.describe(), str(node.type)]
        operands = (graph.node(o) for o in dict.fromkeys(node.operands))
        lines += [_source_line(src, node) for src in operands if folded(src)]
        lines += _cost_lines(node.name, tables)
        attrs = {"fillcolor": PALETTE.get(node.op.family, "#ffffff")}
        if isinstance(node.op, Input):
            attrs["shape"] = "invhouse"
        elif isinstance(node.op, Weight | Constant):
            attrs.update(fontsize="8", height="0.2", margin="0.04,0.02")
        dot.node(
            ids[node.name],
            label=graphviz.nohtml("\\n".join(escape_label(line) for line in lines)),
            tooltip=escape_label(node.name),
            **attrs,
        )

    edges: dict[tuple[str, str], None] = {}  # an ordered set
    for node in graph:
        for o in node.operands:
            a, b = member_of.get(o), member_of.get(node.name)
            if a is not None and b is not None and a[0] == b[0] and a[1] != b[1]:
                continue  # between members of one run: the xN badge says it
            tail, head = alias.get(o, o), alias.get(node.name, node.name)
            if tail != head and tail in ids and head in ids:
                edges[(ids[tail], ids[head])] = None
    for tail, head in edges:
        dot.edge(tail, head)
    source: str = dot.source
    return source


def _collapse(
    runs: Sequence[Repeat], members: Mapping[str, Sequence[Node]]
) -> tuple[dict[str, str], dict[str, tuple[int, int]]]:
    """``alias``: each node of a dropped block -> its counterpart in the run's drawn block;
    ``member_of``: each node of a run -> (run index, member index)."""
    alias: dict[str, str] = {}
    member_of: dict[str, tuple[int, int]] = {}
    for r, run in enumerate(runs):
        first = members[run.blocks[0]]
        for m, scope in enumerate(run.blocks):
            for node, rep in zip(members[scope], first, strict=True):
                member_of[node.name] = (r, m)
                if m:
                    alias[node.name] = rep.name
    return alias, member_of


def _source_line(source: Node, user: Node) -> str:
    """A folded weight or constant in its user's label: ``weight: bf16[1280x1280]``."""
    dotted = user.name + "."
    rel = source.name[len(dotted) :] if source.name.startswith(dotted) else ""
    rel = rel or source.name.rsplit(".", 1)[-1]
    if isinstance(source.op, Constant):
        rel += f" = {source.op.value:g}"
    return f"{rel}: {source.type}"


def _cluster_tree(
    graph: Graph,
    drawn: Sequence[Node],
    members: Mapping[str, Sequence[Node]],
    runs: Sequence[Repeat],
) -> _Cluster:
    """Stage clusters holding block clusters (a block sits in its first node's stage), and a
    fusion group's cluster in the innermost cluster that holds all its members."""
    block_stage = {b: nodes[0].stage for b, nodes in members.items()}
    paths: dict[str, tuple[tuple[str, str], ...]] = {}
    for node in drawn:
        path: tuple[tuple[str, str], ...] = ()
        stage = block_stage[node.block] if node.block is not None else node.stage
        if stage is not None:
            path += (("stage", stage),)
        if node.block is not None:
            path += (("block", node.block),)
        paths[node.name] = path
    for group, names in _fusion_groups(graph, paths).items():
        common = paths[names[0]]
        for name in names[1:]:
            p = paths[name]
            k = 0
            while k < min(len(common), len(p)) and common[k] == p[k]:
                k += 1
            common = common[:k]
        for name in names:
            paths[name] = (*common, ("fusion", group))

    run_label = {}
    for run in runs:
        span = f"{run.blocks[0]} .. {run.blocks[-1]}"
        run_label[run.blocks[0]] = f"{_titled(span, run.kind)}  x{len(run.blocks)}"
    root = _Cluster("", {})
    for node in drawn:
        cluster = root
        for key in paths[node.name]:
            child = cluster.children.get(key)
            if child is None:
                child = _new_cluster(key, graph, run_label)
                cluster.children[key] = child
            cluster = child
        cluster.nodes.append(node.name)
    return root


def _new_cluster(key: tuple[str, str], graph: Graph, run_label: Mapping[str, str]) -> _Cluster:
    what, name = key
    if what == "stage":
        return _Cluster(name, _STAGE_STYLE)
    if what == "block":
        if name in run_label:
            return _Cluster(run_label[name], _REPEAT_STYLE | {"penwidth": "2", "fontsize": "14"})
        return _Cluster(_titled(name, graph.blocks.get(name)), _BLOCK_STYLE)
    return _Cluster(f"fusion {name}", _FUSION_STYLE)


def _titled(scope: str, kind: str | None) -> str:
    return f"{scope} ({kind})" if kind is not None else scope


def _legend(graph: Graph, drawn: Sequence[Node], runs: Sequence[Repeat]) -> str:
    """An HTML graph label: the graph's name and a swatch per op family drawn."""
    families = dict.fromkeys(n.op.family for n in drawn)
    cells = "".join(
        f'<td bgcolor="{PALETTE.get(f, "#ffffff")}">{html.escape(f.value)}</td>'
        for f in OpFamily
        if f in families
    )
    note = ""
    if runs:
        note = "<br/>xN: a run of N identical blocks, one drawn (its costs are per block)"
    title = html.escape(f"{graph.name}: {len(graph):,} nodes")
    swatches = f"<tr>{cells}</tr>" if cells else ""
    return (
        f'<<table border="0" cellspacing="2"><tr><td colspan="{max(1, len(families))}" '
        f'align="left"><b>{title}</b>{note}</td></tr>{swatches}</table>>'
    )


def render_to_file(
    graph: Graph,
    path: str | Path,
    fmt: str,
    *,
    collapse_repeats: bool = False,
    show_weights: bool = False,
) -> None:
    """Write ``graph`` as DOT source, or as SVG/PNG drawn by graphviz's ``dot`` program."""
    if fmt not in FORMATS:
        raise IrperfError(f"unknown picture format '{fmt}'; use one of {', '.join(FORMATS)}")
    source = to_dot(graph, collapse_repeats=collapse_repeats, show_weights=show_weights)
    if fmt == "dot":
        data = source.encode()
    else:
        if shutil.which("dot") is None:
            raise IrperfError(f"{fmt} output {_NO_DOT}")
        try:
            data = graphviz.Source(source).pipe(format=fmt, quiet=True)
        except graphviz.ExecutableNotFound:
            raise IrperfError(f"{fmt} output {_NO_DOT}") from None
        except subprocess.CalledProcessError as e:
            raise IrperfError(f"graphviz 'dot' failed drawing {fmt}: {_first_line(e)}") from None
    try:
        Path(path).write_bytes(data)
    except OSError as e:
        raise IrperfError(f"cannot write {path}: {e.strerror or e}") from None


def _first_line(error: subprocess.CalledProcessError) -> str:
    err = error.stderr
    text = err.decode(errors="replace") if isinstance(err, bytes) else str(err or "")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else f"exit status {error.returncode}"
