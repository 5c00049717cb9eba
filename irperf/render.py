"""Graphviz pictures of a graph: clusters per block, colours per op family, role or chip split,
repeats collapsed."""

from __future__ import annotations

import errno
import itertools
import os
import shutil
import subprocess
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import graphviz
from attrs import define, field, frozen

from irperf.checks import show
from irperf.errors import OutputError
from irperf.graph import Graph, Node
from irperf.ops import Constant, Input, OpFamily, Weight
from irperf.render_labels import (
    COLLECTIVE_SHAPE,
    COLOR_MODES,
    PALETTE,
    cost_lines,
    escape_label,
    fill,
    legend,
    run_label,
    source_line,
    titled,
)
from irperf.repeats import Repeat, block_members, find_repeats, relative_name

FORMATS = ("dot", "svg", "png")

_FONT = "Helvetica"
_NO_DOT = (
    "needs the graphviz 'dot' program: install graphviz (apt-get install graphviz) or use --dot"
)

__all__ = [
    "COLOR_MODES",
    "FORMATS",
    "PALETTE",
    "Drawing",
    "Repeat",
    "escape_label",
    "find_repeats",
    "render_to_file",
    "to_dot",
]


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


LAYOUT_NODES = 3000
"""Drawn nodes graphviz lays out in well under a minute here (90B full decode: 2,044 in ~1 s);
a larger SVG/PNG collapses its repeats, or is refused up front."""
FAST_LAYOUT_NODES = 400
"""Above this, the DOT source cuts dot's crossing minimisation short (``mclimit``, ``nslimit``):
a minute becomes seconds, with a few more crossings."""
FAN_OUT_BLOCKS = 2
"""A node read by more blocks than this has its edges drawn without ranking constraints."""
FAN_IN_BLOCKS = 8
"""A node reading results of more blocks than this draws one of those edges, lists the rest."""
DOT_TIMEOUT_S = 60.0
"""The longest ``dot`` may run before irperf gives up with an error."""


@frozen
class Drawing:
    """What ``render_to_file`` drew: how many nodes, and whether repeats were collapsed."""

    nodes: int
    collapsed: bool
    note: str = ""


def to_dot(
    graph: Graph,
    *,
    collapse_repeats: bool = False,
    show_weights: bool = False,
    color: str = "family",
    homes: Mapping[str, str] | None = None,
) -> str:
    """DOT source for ``graph``.

    One cluster per block (label: scope and kind) inside a cluster per stage; a node's label is
    its name relative to its cluster, ``op.describe()``, its result type, the weights it reads
    (unless ``show_weights`` draws them as nodes) and, when the graph carries analysis records,
    its FLOPs and bytes. Fusion groups are dashed clusters. ``collapse_repeats`` draws one period
    of each run found by ``find_repeats``, labelled ``xN``: an edge of another repetition is
    drawn from or to the drawn period's counterpart, an edge between repetitions not at all.

    Unless ``show_weights``, weights and constants are listed in their readers' labels (weights
    no node reads, such as a decode graph's resident vision encoder, are counted in the legend).
    A graph input read by more than one block (the RoPE tables, the vision tokens) always is:
    edges from one node to every layer are what makes graphviz take many minutes.

    ``color`` fills nodes by op ``family`` (the default), by ``role``, or by ``chip``: how the
    node's result lies over the chips of a tensor-parallel graph (replicated, split, partial
    sum) with collectives apart, or by ``home``: each node's memory home in ``homes`` (node name
    -> home, a placement's ``output_home``); the legend lists what is drawn. Collectives are
    hexagons under every colouring.
    """
    return _to_dot(
        graph,
        collapse_repeats=collapse_repeats,
        show_weights=show_weights,
        color=color,
        homes=homes,
    )[0]


def _to_dot(
    graph: Graph,
    *,
    collapse_repeats: bool,
    show_weights: bool,
    color: str,
    homes: Mapping[str, str] | None = None,
) -> tuple[str, int]:
    """The DOT source and the number of nodes it draws."""
    if color not in COLOR_MODES:
        raise OutputError(f"unknown colouring {show(color)}; use one of {', '.join(COLOR_MODES)}")
    if color == "home" and homes is None:
        raise OutputError("colouring by home needs the memory homes of a placement")
    runs = find_repeats(graph) if collapse_repeats else []
    members = block_members(graph)
    alias, member_of = _collapse(runs, members)

    def reader_blocks(node: Node) -> int:
        return len({graph.node(u).block for u in graph.users(node.name)})

    def folded(node: Node) -> bool:
        if isinstance(node.op, Input):  # an input every layer reads is listed, never drawn
            return reader_blocks(node) > 1
        return not show_weights and isinstance(node.op, Weight | Constant)

    hidden = [n for n in graph if folded(n)]
    unread = sum(1 for n in hidden if not graph.users(n.name))
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
        label=legend(graph, drawn, runs, unread, color, homes),
    )
    if len(drawn) > FAST_LAYOUT_NODES:
        dot.attr(mclimit="0.1", nslimit="1", nslimit1="1")
    dot.attr("node", shape="box", style="rounded,filled", fontname=_FONT, fontsize="10")
    dot.attr("edge", arrowsize="0.6", color="#555555")
    _emit(dot, _cluster_tree(graph, drawn, members, runs), ids, itertools.count())

    edges, gathered = _edges(graph, drawn, alias, member_of)
    tables = [graph.records(kind) for kind in graph.record_kinds()]
    for node in drawn:
        where = node.block if node.block is not None else node.stage
        short = relative_name(node.name, where) if where is not None else node.name
        lines = [short, node.op.describe(), str(node.type)]
        operands = (graph.node(o) for o in dict.fromkeys(node.operands))
        lines += [source_line(src, node) for src in operands if folded(src)]
        lines += gathered.get(node.name, [])
        lines += cost_lines(node.name, tables)
        attrs = {"fillcolor": fill(node, color, homes)}
        if isinstance(node.op, Input):
            attrs["shape"] = "invhouse"
        elif isinstance(node.op, Weight | Constant):
            attrs.update(fontsize="8", height="0.2", margin="0.04,0.02")
        elif node.op.family is OpFamily.COLLECTIVE:
            attrs["shape"] = COLLECTIVE_SHAPE
        dot.node(
            ids[node.name],
            label=graphviz.nohtml("\\n".join(escape_label(line) for line in lines)),
            tooltip=escape_label(node.name),
            **attrs,
        )

    # A result read across many blocks (the vision tokens every cross layer reads) would pull
    # its readers' ranks together: its edges are drawn but do not constrain the layout.
    fan_out = {n.name for n in drawn if reader_blocks(n) > FAN_OUT_BLOCKS}
    for tail, head in edges:
        if tail in fan_out:
            dot.edge(ids[tail], ids[head], constraint="false")
        else:
            dot.edge(ids[tail], ids[head])
    source: str = dot.source
    return source, len(drawn)


def _edges(
    graph: Graph,
    drawn: Sequence[Node],
    alias: Mapping[str, str],
    member_of: Mapping[str, tuple[int, int]],
) -> tuple[list[tuple[str, str]], dict[str, list[str]]]:
    """The drawn edges (tail, head), and a label line per node that gathers the results of more
    than ``FAN_IN_BLOCKS`` blocks (every layer's output saved for the projector): of those, only
    the edge from the last is drawn, the line names the rest. A hundred edges into one node from
    a hundred layers is what keeps graphviz busy for minutes."""
    shown = {n.name for n in drawn}
    tails: dict[str, dict[str, None]] = {}  # head -> tails, ordered
    for node in graph:
        for o in node.operands:
            a, b = member_of.get(o), member_of.get(node.name)
            if a is not None and b is not None and a[0] == b[0] and a[1] != b[1]:
                continue  # between repetitions of one run: the xN badge says it
            tail, head = alias.get(o, o), alias.get(node.name, node.name)
            if tail != head and tail in shown and head in shown:
                tails.setdefault(head, {})[tail] = None
    order = {n.name: i for i, n in enumerate(drawn)}
    edges: list[tuple[str, str]] = []
    gathered: dict[str, list[str]] = {}
    for head, found in tails.items():
        own = graph.node(head).block
        far = sorted(
            (t for t in found if graph.node(t).block not in (own, None)), key=order.__getitem__
        )
        if len({graph.node(t).block for t in far}) > FAN_IN_BLOCKS:
            hidden = far[:-1]  # the nearest, far[-1], stays an edge
            dropped = set(hidden)
            edges += [(t, head) for t in found if t not in dropped]
            first, last = graph.node(hidden[0]).block, graph.node(hidden[-1]).block
            gathered[head] = [f"reads {len(hidden)} more results: {first} .. {last}"]
        else:
            edges += [(t, head) for t in found]
    return edges, gathered


def _collapse(
    runs: Sequence[Repeat], members: Mapping[str, Sequence[Node]]
) -> tuple[dict[str, str], dict[str, tuple[int, int]]]:
    """``alias``: each node of a dropped block -> its counterpart in the run's drawn period;
    ``member_of``: each node of a run -> (run index, repetition index)."""
    alias: dict[str, str] = {}
    member_of: dict[str, tuple[int, int]] = {}
    for r, run in enumerate(runs):
        for b, scope in enumerate(run.blocks):
            m, k = divmod(b, run.period)
            for node, rep in zip(members[scope], members[run.blocks[k]], strict=True):
                member_of[node.name] = (r, m)
                if m:
                    alias[node.name] = rep.name
    return alias, member_of


def _cluster_tree(
    graph: Graph,
    drawn: Sequence[Node],
    members: Mapping[str, Sequence[Node]],
    runs: Sequence[Repeat],
) -> _Cluster:
    """Stage clusters holding block clusters (a block sits in its first node's stage; a drawn
    period's blocks in a run cluster, in its first block's stage), and a fusion group's cluster
    in the innermost cluster that holds all its members."""
    block_stage = {b: nodes[0].stage for b, nodes in members.items()}
    in_run: dict[str, str] = {}  # block of a drawn period of two or more -> the period's first
    for run in runs:
        if run.period > 1:
            for scope in run.drawn:
                in_run[scope] = run.blocks[0]
                block_stage[scope] = block_stage[run.blocks[0]]
    paths: dict[str, tuple[tuple[str, str], ...]] = {}
    for node in drawn:
        path: tuple[tuple[str, str], ...] = ()
        stage = block_stage[node.block] if node.block is not None else node.stage
        if stage is not None:
            path += (("stage", stage),)
        if node.block in in_run:
            path += (("run", in_run[node.block]),)
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

    # A run's cluster: its block's for a period of one, else one around the period's blocks.
    run_labels = {
        ("block" if run.period == 1 else "run", run.blocks[0]): run_label(run) for run in runs
    }
    root = _Cluster("", {})
    for node in drawn:
        cluster = root
        for key in paths[node.name]:
            child = cluster.children.get(key)
            if child is None:
                child = _new_cluster(key, graph, run_labels)
                cluster.children[key] = child
            cluster = child
        cluster.nodes.append(node.name)
    return root


def _new_cluster(
    key: tuple[str, str], graph: Graph, run_labels: Mapping[tuple[str, str], str]
) -> _Cluster:
    what, name = key
    if key in run_labels:
        return _Cluster(run_labels[key], _REPEAT_STYLE | {"penwidth": "2", "fontsize": "14"})
    if what == "stage":
        return _Cluster(name, _STAGE_STYLE)
    if what == "block":
        return _Cluster(titled(name, graph.blocks.get(name)), _BLOCK_STYLE)
    return _Cluster(f"fusion {name}", _FUSION_STYLE)


def render_to_file(
    graph: Graph,
    path: str | os.PathLike[str],
    fmt: str,
    *,
    collapse_repeats: bool | None = False,
    show_weights: bool = False,
    color: str = "family",
    homes: Mapping[str, str] | None = None,
    timeout_s: float = DOT_TIMEOUT_S,
) -> Drawing:
    """Write ``graph`` as DOT source, or as SVG/PNG drawn by graphviz's ``dot`` program.

    ``collapse_repeats=None`` (the CLI's default) draws every node unless an SVG/PNG would hold
    more than ``LAYOUT_NODES``; then repeats are collapsed and the returned ``Drawing`` says so.
    A drawing still too large is refused before ``dot`` starts, and ``dot`` is stopped after
    ``timeout_s``: either is an OutputError, never a wait without end. ``color`` is
    ``to_dot``'s.
    """
    if fmt not in FORMATS:
        raise OutputError(f"unknown picture format {show(fmt)}; use one of {', '.join(FORMATS)}")
    collapse = bool(collapse_repeats)
    source, drawn = _to_dot(
        graph, collapse_repeats=collapse, show_weights=show_weights, color=color, homes=homes
    )
    note = ""
    if fmt != "dot" and drawn > LAYOUT_NODES and collapse_repeats is None:
        full = drawn
        source, drawn = _to_dot(
            graph, collapse_repeats=True, show_weights=show_weights, color=color, homes=homes
        )
        collapse = True
        note = (
            f"{full:,} nodes are more than graphviz lays out in a minute: each run of repeated "
            f"blocks is drawn once (--dot writes every node)"
        )
    source_bytes = source.encode("utf-8", errors="backslashreplace")  # a non-UTF-8 file name
    if fmt == "dot":
        data = source_bytes
    else:
        if drawn > LAYOUT_NODES:
            raise OutputError(
                f"a {fmt} of {drawn:,} nodes would take graphviz more than a minute (at most "
                f"{LAYOUT_NODES:,}); draw a --part, use --collapse-repeats, or write --dot"
            )
        data = _run_dot(source_bytes, fmt, timeout_s)
    write_file(path, data)
    return Drawing(nodes=drawn, collapsed=collapse, note=note)


def write_file(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path``; a pipe nobody reads is an error, never a wait without end,
    and a reader that stops early (``/dev/stdout | head``) is a BrokenPipeError, as on stdout."""
    if not isinstance(path, str | os.PathLike):
        raise OutputError(f"an output path must be a str or os.PathLike, got {show(path)}")
    name = os.fspath(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NONBLOCK
    try:
        fd = os.open(name, flags, 0o666)
    except OSError as e:
        if e.errno == errno.ENXIO:
            raise OutputError(f"cannot write {show(name)}: a pipe that nobody reads") from None
        raise OutputError(f"cannot write {show(name)}: {e.strerror or e}") from None
    except ValueError as e:  # a NUL in the name
        raise OutputError(f"cannot write {show(name)}: {e}") from None
    try:
        os.set_blocking(fd, True)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    except BrokenPipeError:
        raise
    except OSError as e:
        raise OutputError(f"cannot write {show(name)}: {e.strerror or e}") from None


def _run_dot(source: bytes, fmt: str, timeout_s: float) -> bytes:
    exe = shutil.which("dot")
    if exe is None:
        raise OutputError(f"{fmt} output {_NO_DOT}")
    try:
        done = subprocess.run(
            [exe, f"-T{fmt}"], input=source, capture_output=True, timeout=timeout_s
        )
    except subprocess.TimeoutExpired:
        raise OutputError(
            f"graphviz 'dot' did not finish the {fmt} within {timeout_s:g} s; use "
            f"--collapse-repeats, a smaller --part, or --dot"
        ) from None
    except OSError as e:
        raise OutputError(f"{fmt} output {_NO_DOT} ({e.strerror or e})") from None
    if done.returncode != 0:
        raise OutputError(f"graphviz 'dot' failed drawing {fmt}: {_first_line(done)}")
    return done.stdout


def _first_line(done: subprocess.CompletedProcess[bytes]) -> str:
    text = done.stderr.decode(errors="replace")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else f"exit status {done.returncode}"
