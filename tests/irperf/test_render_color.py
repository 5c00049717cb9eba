"""Tests for ``--color family|role|chip`` and ``irperf lower --tp N``: fills, legends, shapes."""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path

import pytest

import irperf
from irperf.cli import main
from irperf.cli.lower import COLORS
from irperf.errors import IrperfError
from irperf.graph import Graph
from irperf.ops import AllReduce, OpFamily
from irperf.render import COLOR_MODES, PALETTE, to_dot
from irperf.render_labels import CHIP_PALETTE, COLLECTIVE_SHAPE, ROLE_PALETTE
from irperf.roles import Role
from lowering import load_model_config
from lowering.model import lower
from passes.tensor_parallel import tensor_parallel

MODEL = "llama-3.2-11b-vision"
VISION = load_model_config(MODEL).vision
LAYERS = VISION.num_hidden_layers + VISION.num_global_layers  # 32 local + 8 global
ALL_REDUCES_PER_LAYER = 2  # after the attention output (wo) and the MLP's fc2
PROJECTOR_GATHERS = 1  # the vision projection's result, gathered whole
CHIPS = 2

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz 'dot' not installed")

NODE = re.compile(r"^\s*(n\d+) \[label=")
ATTR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+?)(?=[ \]])')
CELL = re.compile(r'<td bgcolor="([^"]+)">([^<]*)</td>')


def node_attrs(src: str) -> dict[str, dict[str, str]]:
    """Node name (its tooltip) -> its DOT attributes, quotes removed."""
    found: dict[str, dict[str, str]] = {}
    for line in src.splitlines():
        if NODE.match(line):
            attrs = {k: v.strip('"') for k, v in ATTR.findall(line)}
            found[attrs["tooltip"]] = attrs
    return found


def legend_cells(src: str) -> dict[str, str]:
    """Legend swatch text -> its fill."""
    return {html.unescape(text): bg for bg, text in CELL.findall(src)}


@pytest.fixture(scope="module")
def vision() -> Graph:
    return lower(MODEL, "vision")


@pytest.fixture(scope="module")
def split(vision: Graph) -> Graph:
    return tensor_parallel(vision, CHIPS)


@pytest.fixture(scope="module")
def text() -> Graph:
    return lower(MODEL, "text")


def test_cli_choices_are_the_renderers() -> None:
    assert COLORS == COLOR_MODES


# ---- role ---------------------------------------------------------------------------------


def test_role_palette_is_one_distinct_colour_per_role() -> None:
    assert set(ROLE_PALETTE) == set(Role)
    assert len(set(ROLE_PALETTE.values())) == len(Role)


def test_role_fills_and_legend(text: Graph) -> None:
    src = to_dot(text, color="role")
    nodes = node_attrs(src)
    q, ff1 = nodes["text.0.attn.wq"], nodes["text.0.mlp.w1"]
    assert q["fillcolor"] == ROLE_PALETTE[Role.Q]
    assert ff1["fillcolor"] == ROLE_PALETTE[Role.FF1]
    assert q["fillcolor"] != ff1["fillcolor"]
    cells = legend_cells(src)
    drawn_roles = {text.node(name).role for name in nodes}
    assert {Role.Q, Role.K, Role.V, Role.O, Role.FF1, Role.FF2, Role.FF3} <= drawn_roles
    # one swatch per drawn role, in its own colour, and nothing else
    assert cells == {r.value: ROLE_PALETTE[r] for r in drawn_roles if r is not None}
    for name, attrs in nodes.items():
        role = text.node(name).role
        assert role is not None
        assert attrs["fillcolor"] == ROLE_PALETTE[role], name


# ---- chip ---------------------------------------------------------------------------------


def test_chip_colours_split_partial_and_collectives(vision: Graph, split: Graph) -> None:
    src = to_dot(split, color="chip")
    nodes = node_attrs(src)
    all_reduces = [n for n, a in nodes.items() if split.node(n).op.kind == AllReduce.kind]
    assert len(all_reduces) == ALL_REDUCES_PER_LAYER * LAYERS  # 80
    collective = [n for n in split if n.op.family is OpFamily.COLLECTIVE]
    assert len(collective) == ALL_REDUCES_PER_LAYER * LAYERS + PROJECTOR_GATHERS
    assert len(split) == len(vision) + len(collective)
    for node in collective:
        attrs = nodes[node.name]
        assert attrs["shape"] == COLLECTIVE_SHAPE
        assert attrs["fillcolor"] == CHIP_PALETTE["collective"]
    hexagons = [n for n, a in nodes.items() if a.get("shape") == COLLECTIVE_SHAPE]
    assert len(hexagons) == len(collective)

    # column-parallel wq: its result split on the width (dim 2 of [1, tokens, width])
    wq = "vision.local.0.attn.wq"
    assert split.node(wq).type.layout.sharded and split.node(wq).type.layout.dim == 2
    assert nodes[wq]["fillcolor"] == CHIP_PALETTE["sharded"]
    # row-parallel wo: a partial sum until its all-reduce; the residual after it is whole
    assert nodes["vision.local.0.attn.wo"]["fillcolor"] == CHIP_PALETTE["partial"]
    assert nodes["vision.local.0.attn_residual"]["fillcolor"] == CHIP_PALETTE["replicated"]

    cells = legend_cells(src)
    assert cells == {
        "replicated": CHIP_PALETTE["replicated"],
        f"split d2/{CHIPS}": CHIP_PALETTE["sharded"],
        f"partial sum /{CHIPS}": CHIP_PALETTE["partial"],
        f"collective ({COLLECTIVE_SHAPE})": CHIP_PALETTE["collective"],
    }
    assert f"{len(split):,} nodes, tensor-parallel over {CHIPS} chips" in src


def test_collectives_keep_their_shape_under_every_colouring(split: Graph) -> None:
    wo = "vision.local.0.attn.wo.all_reduce"
    homes = {n.name: "dram_interleaved" for n in split}
    for color in COLOR_MODES:
        drawn = to_dot(split, color=color, homes=homes)
        assert node_attrs(drawn)[wo]["shape"] == COLLECTIVE_SHAPE
    assert node_attrs(to_dot(split))[wo]["fillcolor"] == PALETTE[OpFamily.COLLECTIVE]
    assert node_attrs(to_dot(split, color="role"))[wo]["fillcolor"] == ROLE_PALETTE[Role.COLLECTIVE]


def test_collapsed_split_graph_draws_one_period_with_its_collectives(
    vision: Graph, split: Graph
) -> None:
    plain = node_attrs(to_dot(vision, collapse_repeats=True))
    nodes = node_attrs(to_dot(split, collapse_repeats=True, color="chip"))
    # one local and one global layer drawn, each with its two all-reduces; the projector's gather
    drawn_collectives = 2 * ALL_REDUCES_PER_LAYER + PROJECTOR_GATHERS
    assert len(nodes) == len(plain) + drawn_collectives
    hexagons = [n for n, a in nodes.items() if a.get("shape") == COLLECTIVE_SHAPE]
    assert len(hexagons) == drawn_collectives
    assert "vision.local.0.mlp.fc2.all_reduce" in hexagons
    assert "vision.global.0.mlp.fc2.all_reduce" in hexagons


def test_unknown_colouring_is_an_error(vision: Graph) -> None:
    with pytest.raises(IrperfError, match="unknown colouring"):
        to_dot(vision, color="rainbow")


# ---- the CLI ------------------------------------------------------------------------------


def lower_dot(tmp_path: Path, name: str, *flags: str) -> str:
    path = tmp_path / f"{name}.dot"
    assert main(["lower", MODEL, "--part", "vision", *flags, "--dot", str(path)]) == 0
    return path.read_text()


def test_default_output_is_the_family_colouring(tmp_path: Path, vision: Graph) -> None:
    default = lower_dot(tmp_path, "default", "--collapse-repeats")
    assert lower_dot(tmp_path, "family", "--collapse-repeats", "--color", "family") == default
    assert lower_dot(tmp_path, "upper", "--collapse-repeats", "--color", "FAMILY") == default
    assert lower_dot(tmp_path, "tp1", "--collapse-repeats", "--tp", "1") == default
    assert lower_dot(tmp_path, "off", "--collapse-repeats", "--tp", "OFF") == default
    assert default == to_dot(vision, collapse_repeats=True)
    assert COLLECTIVE_SHAPE not in default  # an unsplit graph has no collectives
    for name, attrs in node_attrs(default).items():
        assert attrs["fillcolor"] == PALETTE[vision.node(name).op.family], name


def test_cli_tp_and_chip(tmp_path: Path, split: Graph) -> None:
    src = lower_dot(tmp_path, "chip", "--tp", str(CHIPS), "--color", "Chip")
    assert src == to_dot(split, color="chip")


@needs_dot
def test_cli_collapsed_split_svg(capsys, tmp_path: Path, vision: Graph, split: Graph) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "vision-tp.svg"
    argv = ["lower", MODEL, "--part", "vision", "--tp", "2", "--color", "chip"]
    assert main([*argv, "--collapse-repeats", "--svg", str(out)]) == 0
    drawn = len(node_attrs(to_dot(split, collapse_repeats=True)))
    line = capsys.readouterr().out.strip()
    assert line == f"wrote {out} ({len(split):,} nodes, {drawn:,} drawn)"
    hexagons = 2 * ALL_REDUCES_PER_LAYER + PROJECTOR_GATHERS  # one local, one global layer
    assert out.read_text().count(f'<path fill="{CHIP_PALETTE["collective"]}"') == hexagons


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--color", "rainbow", "--dot", "x.dot"], "invalid choice: 'rainbow'"),
        (["--color", "role"], "--color needs --dot, --svg or --png"),
        (["--tp", "0"], "--tp: a chip count from 1 to"),
        (["--tp", "two"], "--tp: a chip count from 1 to"),
        (["--tp", "3"], "3 chips do not divide"),
    ],
)
def test_cli_bad_flags_are_one_line_exit_2(capsys, flags: list[str], says: str) -> None:  # type: ignore[no-untyped-def]
    assert main(["lower", MODEL, "--part", "vision", *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and says in err, err


def test_color_home_draws_each_nodes_memory_home() -> None:
    from irperf.errors import OutputError
    from irperf.render import to_dot
    from irperf.render_labels import HOME_PALETTE
    from passes.placement import Placement

    g = irperf.run(
        irperf.lower("llama-3.2-11b-vision", part="text", phase="decode"),
        "tensor-parallel{chips=2},place{strategy=tt-metal}",
    )
    homes = {k: p.output_home.value for k, p in g.records(Placement).items()}
    source = to_dot(g, collapse_repeats=True, color="home", homes=homes)
    # tt-metal's decode: activations width-sharded in L1, the caches in DRAM.
    assert homes["text.0.attn.wq"] == "l1_width_sharded"
    assert HOME_PALETTE["l1_width_sharded"] in source
    assert "l1_width_sharded" in source and "dram_interleaved" in source  # the legend
    with pytest.raises(OutputError, match="needs the memory homes"):
        to_dot(g, color="home")


def test_cli_color_home(tmp_path: Path) -> None:
    from irperf.cli import main

    out = tmp_path / "home.dot"
    argv = ["lower", "llama-3.2-11b-vision", "--part", "vision", "--color", "home"]
    assert main([*argv, "--strategy", "l1-greedy", "--dot", str(out)]) == 0
    assert "l1_interleaved" in out.read_text()
    assert main(["lower", "llama-3.2-11b-vision", "--strategy", "dram", "--dot", str(out)]) == 2
