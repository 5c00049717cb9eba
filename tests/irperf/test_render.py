"""Tests for the graphviz renderer: clusters, collapsed repeats, escaping, annotations, the CLI."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import graphviz
import pytest
from attrs import define, field, frozen

import irperf.render
from irperf.builder import Builder
from irperf.cli import main
from irperf.dtypes import BF16
from irperf.errors import IrperfError
from irperf.graph import Graph
from irperf.ops import Add, Constant, Gelu, MatMul, OpFamily, Weight
from irperf.pass_manager import run_pipeline
from irperf.render import PALETTE, escape_label, find_repeats, render_to_file, to_dot
from irperf.types import TensorType
from lowering import load_model_config
from lowering.model import lower

MODEL = "llama-3.2-11b-vision"
CFG = load_model_config(MODEL).vision
LOCAL, GLOBAL = CFG.num_hidden_layers, CFG.num_global_layers  # 32 and 8
TOKENS = CFG.max_num_tiles * CFG.padded_tokens_per_tile  # 4 * 1032
WIDTH = CFG.hidden_size
BF16_BYTES = 2

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz 'dot' not installed")


# ---- reading the DOT back -----------------------------------------------------------------

NODE = re.compile(r"^\s*(\S+) \[label=")
EDGE = re.compile(r"^\s*(\S+) -> (\S+)")
QUOTED = r'"((?:[^"\\]|\\.)*)"'


@define
class Cluster:
    label: str = ""
    parent: str | None = None
    nodes: list[str] = field(factory=list)


def clusters(src: str) -> list[Cluster]:
    """The clusters of DOT written by the graphviz package (one statement per line)."""
    found: list[Cluster] = []
    stack: list[Cluster] = []
    for line in src.splitlines():
        s = line.strip()
        if s.startswith("subgraph cluster_"):
            c = Cluster(parent=stack[-1].label if stack else None)
            found.append(c)
            stack.append(c)
        elif s == "}":
            if stack:
                stack.pop()
        elif stack and not stack[-1].label and (m := re.search(r"label=(" + QUOTED + r"|\S+)", s)):
            stack[-1].label = m.group(2) if m.group(2) is not None else m.group(1)
        elif stack and re.fullmatch(r"n\d+", s):
            stack[-1].nodes.append(s)
    return found


def declared(src: str) -> list[str]:
    return [m.group(1) for line in src.splitlines() if (m := NODE.match(line))]


def edges(src: str) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for line in src.splitlines() if (m := EDGE.match(line))]


def node_id(src: str, name: str) -> str:
    """The id of the node whose tooltip is ``name``."""
    for line in src.splitlines():
        quoted = f'tooltip="{name}"' in line or f"tooltip={name}]" in line  # x: no quotes
        if quoted and (m := NODE.match(line)):
            return m.group(1)
    raise AssertionError(f"no node {name} in the DOT")


def label_lines(src: str, name: str) -> list[str]:
    for line in src.splitlines():
        if f'tooltip="{name}"' in line and (m := re.search(r"\[label=" + QUOTED, line)):
            return m.group(1).split("\\n")
    raise AssertionError(f"no node {name} in the DOT")


def drawn_in_block(graph: Graph, scope: str) -> int:
    """Nodes of a block drawn by default: all but its weights and constants."""
    return sum(1 for n in graph if n.block == scope and not isinstance(n.op, Weight | Constant))


@pytest.fixture(scope="module")
def vision() -> Graph:
    return lower(MODEL, "vision")


@pytest.fixture(scope="module")
def plain(vision: Graph) -> str:
    return to_dot(vision)


@pytest.fixture(scope="module")
def collapsed(vision: Graph) -> str:
    return to_dot(vision, collapse_repeats=True)


# ---- clusters and collapsed repeats -------------------------------------------------------


def test_one_cluster_per_block(vision: Graph, plain: str) -> None:
    labels = [c.label for c in clusters(plain)]
    local = [lb for lb in labels if lb.endswith("(vision.local)")]
    global_ = [lb for lb in labels if lb.endswith("(vision.global)")]
    assert len(local) == LOCAL and len(global_) == GLOBAL
    assert local[3] == "vision.local.3 (vision.local)"
    by_label = {c.label: c for c in clusters(plain)}
    assert by_label["vision.local.3 (vision.local)"].parent == "vision"  # inside its stage
    assert len(by_label["vision.local.3 (vision.local)"].nodes) == drawn_in_block(
        vision, "vision.local.3"
    )
    assert "projector" in by_label


def test_find_repeats_on_the_vision_encoder(vision: Graph) -> None:
    runs = find_repeats(vision)
    assert [(r.kind, len(r.blocks)) for r in runs] == [
        ("vision.local", LOCAL),
        ("vision.global", GLOBAL),
    ]
    assert runs[0].blocks[0] == "vision.local.0" and runs[1].blocks[-1] == "vision.global.7"


def test_collapse_keeps_one_block_per_run(vision: Graph, plain: str, collapsed: str) -> None:
    blocks = [c for c in clusters(collapsed) if "(vision." in c.label]
    assert len(blocks) == 2
    assert f"x{LOCAL}" in blocks[0].label and "vision.local.0 .. vision.local.31" in blocks[0].label
    assert f"x{GLOBAL}" in blocks[1].label
    per_local = drawn_in_block(vision, "vision.local.0")
    per_global = drawn_in_block(vision, "vision.global.0")
    dropped = (LOCAL - 1) * per_local + (GLOBAL - 1) * per_global
    assert len(declared(collapsed)) == len(declared(plain)) - dropped
    assert 5 * len(declared(collapsed)) < len(declared(plain))


def test_collapsed_edges_join_declared_nodes(collapsed: str) -> None:
    ids = set(declared(collapsed))
    es = edges(collapsed)
    assert es and all(a in ids and b in ids for a, b in es)
    assert len(es) == len(set(es)), "duplicate edges"
    assert all(a != b for a, b in es)


def test_node_ids_are_synthetic(plain: str) -> None:
    assert all(re.fullmatch(r"n\d+", i) for i in declared(plain))
    assert len(set(declared(plain))) == len(declared(plain))


def test_collapse_redirects_edges_to_the_drawn_block(collapsed: str) -> None:
    # The encoder's output concatenates the residual stream entering blocks 3, 7, 15, 23, 30,
    # i.e. the outputs of local blocks 2, 6, ...: all are drawn as local.0's output.
    rep_out = node_id(collapsed, "vision.local.0.mlp_residual")
    concat = node_id(collapsed, "vision.output.concat")
    ln_post = node_id(collapsed, "vision.ln_post")
    rep_in = node_id(collapsed, "vision.local.0.ln_1")
    es = set(edges(collapsed))
    assert (rep_out, concat) in es
    assert (rep_out, ln_post) in es  # local.31's output, redirected
    assert (rep_out, rep_in) not in es  # local.i -> local.i+1 is what "x32" says


def test_collapse_is_a_no_op_without_repeats() -> None:
    g = _chain([64, 32, 64])  # neighbours differ in width
    assert find_repeats(g) == []
    assert to_dot(g, collapse_repeats=True) == to_dot(g)


def test_a_different_block_splits_a_run() -> None:
    g = _chain([64, 64, 64, 32, 64, 64])
    assert [r.blocks for r in find_repeats(g)] == [("b.0", "b.1", "b.2"), ("b.4", "b.5")]


def test_find_repeats_takes_periods_of_several_blocks() -> None:
    runs = find_repeats(_chain([64, 32] * 3 + [16]))
    assert [(r.blocks, r.period, r.times) for r in runs] == [
        (tuple(f"b.{i}" for i in range(6)), 2, 3)
    ]
    assert runs[0].drawn == ("b.0", "b.1") and runs[0].kinds == ("mlp", "mlp")


def test_find_repeats_prefers_the_longest_run_then_the_shortest_period() -> None:
    # 64 64 64 32 64 | 64 64 64 32 64: a period of 1 covers 3 blocks, one of 5 covers all 10.
    runs = find_repeats(_chain([64, 64, 64, 32, 64] * 2))
    assert [(r.period, r.times) for r in runs] == [(5, 2)]
    # Eight equal blocks are a period of 1, 2, 4 or 8 repeated: the shortest is taken.
    assert [(r.period, r.times) for r in find_repeats(_chain([64] * 8))] == [(1, 8)]


def test_find_repeats_stops_at_the_longest_period() -> None:
    widths = [64, 32, 16] * 2
    assert find_repeats(_chain(widths), max_period=2) == []
    assert [r.period for r in find_repeats(_chain(widths), max_period=3)] == [3]


def test_collapse_draws_one_period() -> None:
    g = _chain([64, 32] * 3)
    src = to_dot(g, collapse_repeats=True)
    by_label = {c.label: c for c in clusters(src)}
    assert by_label["b.0 (mlp)"].parent == "b.0 .. b.5 (mlp x2)  x3"
    assert by_label["b.1 (mlp)"].parent == "b.0 .. b.5 (mlp x2)  x3"
    assert len(clusters(src)) == 1 + 2  # the run and its period's two blocks
    assert len(declared(src)) == len(declared(to_dot(g))) - (3 - 1) * 2 * len(["up", "act", "down"])
    es = set(edges(src))
    assert (node_id(src, "x"), node_id(src, "b.0.up")) in es
    assert (node_id(src, "b.0.down"), node_id(src, "b.1.up")) in es  # within a period
    assert (node_id(src, "b.1.down"), node_id(src, "b.0.up")) not in es  # between: the x3


def _chain(widths: list[int]) -> Graph:
    """``x`` through one block per width (matmul to the width, then back to 64)."""
    b = Builder(Graph("chain"))
    x = b.input("x", (8, 64), BF16)
    for i, w in enumerate(widths):
        with b.block(f"b.{i}", "mlp"):
            h = b.add(MatMul(), x, b.weight("up.weight", (64, w), BF16), name="up")
            h = b.add(Gelu(), h, name="act")
            x = b.add(MatMul(), h, b.weight("down.weight", (w, 64), BF16), name="down")
    return b.graph


def test_to_dot_is_fast_on_the_90b_encoder() -> None:
    g = lower("llama-3.2-90b-vision", "vision")
    start = time.perf_counter()
    to_dot(g)
    to_dot(g, collapse_repeats=True)
    assert time.perf_counter() - start < 2.0  # linear: a few tens of ms for ~1,100 nodes


# ---- the full model: the decoder's layers repeat with a period of 5 -----------------------

# Text layers 0..L-1 with cross layers at 3, 8, ..., L-2 (11B: L = 40, 90B: L = 100): from layer
# 0 on, each five layers 5j .. 5j+4 are (self, self, self, cross, self), L / 5 times. A period of
# one covers only layers 0-2 (or 4 self layers between two cross ones), so the whole decoder is
# one run of period 5: 8 (11B) or 20 (90B) repetitions.
FULL = {"llama-3.2-11b-vision": 40 // 5, "llama-3.2-90b-vision": 100 // 5}
PERIOD_KINDS = "text.self x3, text.cross, text.self"


@pytest.mark.parametrize(("model", "times"), FULL.items())
def test_collapse_folds_the_text_decoder_to_one_period(model: str, times: int) -> None:
    text = load_model_config(model).text
    layers = text.num_hidden_layers
    assert text.cross_attention_layers == tuple(range(3, layers, 5)) and layers == 5 * times
    g = lower(model, "full")
    runs = find_repeats(g)
    assert [(r.blocks[0], r.blocks[-1], r.period, r.times) for r in runs] == [
        ("vision.local.0", f"vision.local.{LOCAL - 1}", 1, LOCAL),
        ("vision.global.0", f"vision.global.{GLOBAL - 1}", 1, GLOBAL),
        ("text.0", f"text.{layers - 1}", 5, times),
    ]
    src = to_dot(g, collapse_repeats=True)
    run = f"text.0 .. text.{layers - 1} ({PERIOD_KINDS})  x{times}"
    labels = [(c.label, c.parent) for c in clusters(src)]
    assert labels == [
        ("vision", None),
        (f"vision.local.0 .. vision.local.{LOCAL - 1} (vision.local)  x{LOCAL}", "vision"),
        (f"vision.global.0 .. vision.global.{GLOBAL - 1} (vision.global)  x{GLOBAL}", "vision"),
        ("projector", None),
        ("text", None),
        (run, "text"),
        ("text.0 (text.self)", run),
        ("text.1 (text.self)", run),
        ("text.2 (text.self)", run),
        ("text.3 (text.cross)", run),
        ("text.4 (text.self)", run),
        ("lm_head", None),
    ]  # 12 clusters: 4 stages, 3 runs, 5 blocks

    def drawn(*scopes: str) -> int:
        return sum(drawn_in_block(g, s) for s in scopes)

    period = drawn("text.0", "text.1", "text.2", "text.3", "text.4")
    dropped = (
        (LOCAL - 1) * drawn("vision.local.0")
        + (GLOBAL - 1) * drawn("vision.global.0")
        + (times - 1) * period
    )
    assert len(declared(src)) == len(declared(to_dot(g))) - dropped


def test_collapsed_full_edges_join_declared_nodes() -> None:
    src = to_dot(lower(MODEL, "full"), collapse_repeats=True)
    ids = set(declared(src))
    es = edges(src)
    assert es and all(a in ids and b in ids for a, b in es)
    assert len(es) == len(set(es)) and all(a != b for a, b in es)
    edge_set = set(es)

    def edge(a: str, b: str) -> bool:
        return (node_id(src, a), node_id(src, b)) in edge_set

    assert edge("text.embed.lookup", "text.0.attn_norm")
    assert edge("text.0.mlp_residual", "text.1.attn_norm")  # within the period
    assert not edge("text.4.mlp_residual", "text.0.attn_norm")  # between repetitions: the x8
    assert edge("text.4.mlp_residual", "text.norm")  # text.39's output, redirected
    assert edge("projector.proj.bias_add", "text.3.attn.wk")  # every cross layer's, merged


@needs_dot
def test_collapsed_90b_full_png_is_quick_and_small(tmp_path: Path) -> None:
    src = to_dot(lower("llama-3.2-90b-vision", "full"), collapse_repeats=True)
    start = time.perf_counter()
    done = subprocess.run(["dot", "-Tpng"], input=src.encode(), capture_output=True, check=True)
    assert time.perf_counter() - start < 10.0  # about 0.7 s; 26 s before periods were folded
    png = done.stdout
    assert png.startswith(b"\x89PNG")
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert height < 32767 // 2 and width < 32767 // 2  # about 2,800 x 8,200 px


# ---- labels -------------------------------------------------------------------------------


def test_labels_show_name_op_type_and_weights(plain: str) -> None:
    lines = label_lines(plain, "vision.local.0.attn.wq")
    assert lines == [
        "attn.wq",
        "matmul",
        f"bf16[1x{TOKENS}x{WIDTH}]",
        f"weight: bf16[{WIDTH}x{WIDTH}]",
    ]
    assert label_lines(plain, "vision.local.0.ln_1")[3:] == [
        f"weight: bf16[{WIDTH}]",
        f"bias: bf16[{WIDTH}]",
    ]
    assert "FLOPs" not in plain and "bytes " not in plain


def test_labels_show_flops_and_bytes_after_analysis() -> None:
    import passes  # noqa: F401  (registers flops and bytes)

    g = run_pipeline(lower(MODEL, "vision"), "flops,bytes")
    src = to_dot(g, collapse_repeats=True)
    lines = label_lines(src, "vision.local.0.attn.wq")
    flops = 2 * TOKENS * WIDTH * WIDTH  # a multiply-add per output element and input feature
    moved = (TOKENS * WIDTH + WIDTH * WIDTH + TOKENS * WIDTH) * BF16_BYTES  # x, w in; y out
    assert f"FLOPs {flops:,}" in lines and f"bytes {moved:,}" in lines
    assert "FLOPs 13,526,630,400" in lines
    assert not any(line.startswith("FLOPs") for line in label_lines(src, "vision.pad"))


def test_show_weights_draws_weights_as_nodes(vision: Graph, plain: str) -> None:
    shown = to_dot(vision, show_weights=True)
    sources = sum(1 for n in vision if isinstance(n.op, Weight | Constant))
    assert len(declared(shown)) == len(declared(plain)) + sources
    wq_w = node_id(shown, "vision.local.0.attn.wq.weight")
    assert (wq_w, node_id(shown, "vision.local.0.attn.wq")) in set(edges(shown))
    assert "weight: bf16" not in shown
    assert label_lines(shown, "vision.gated_positional_embedding.one")[1] == "constant"


def test_colours_follow_the_op_family(plain: str) -> None:
    assert set(PALETTE) == set(OpFamily)
    line = next(ln for ln in plain.splitlines() if 'tooltip="vision.local.0.attn.sdpa"' in ln)
    assert f'fillcolor="{PALETTE[OpFamily.ATTENTION]}"' in line
    assert f'bgcolor="{PALETTE[OpFamily.ATTENTION]}">attention<' in plain  # the legend


NASTY = ['q"uote', "<b>html</b>", "{rec|ord}", "back\\slash", "new\nline", "\\N", 'end\\"', "x>"]


def _nasty_graph() -> Graph:
    g = Graph('<g "name">')
    g.blocks['blk<"{|}>'] = "kind\\"
    g.add("in<put>", Weight(type=TensorType((4, 4), BF16)), stage='st"age')
    prev = "in<put>"
    for i, name in enumerate(NASTY):
        full = f'blk<"{{|}}>.{name}' if i % 2 else name
        g.add(full, Add(), [prev, prev], stage='st"age', block='blk<"{|}>' if i % 2 else None)
        prev = full
    return g


def test_escape_label() -> None:
    assert escape_label('a"b') == 'a\\"b'
    assert escape_label("<b>") == "\\<b\\>"
    assert escape_label("{a|b}") == "\\{a\\|b\\}"
    assert escape_label("a\\b") == "a\\\\b"
    assert escape_label("a\nb") == "a\\nb"
    assert isinstance(escape_label("<x>"), graphviz.quoting.NoHtml)


@needs_dot
@pytest.mark.parametrize("show_weights", [False, True])
def test_nasty_names_render_through_dot(show_weights: bool) -> None:
    src = to_dot(_nasty_graph(), show_weights=show_weights)
    done = subprocess.run(["dot", "-Tsvg"], input=src.encode(), capture_output=True, check=False)
    assert done.returncode == 0, done.stderr.decode()
    assert not done.stderr.strip(), done.stderr.decode()
    svg = ET.fromstring(done.stdout)
    texts = {t.text for t in svg.iter("{http://www.w3.org/2000/svg}text")}
    for name in NASTY:
        assert name.split("\n")[0] in texts, name  # drawn literally, \N not substituted
    assert "line" in texts  # the newline broke the line
    assert 'blk<"{|}> (kind\\)' in texts  # the block cluster's label
    assert '<g "name">: 9 nodes' in texts  # the legend's title


# ---- fusion groups ------------------------------------------------------------------------


@frozen
class Fusion:
    """A stand-in for the fusion pass's records."""

    fusion_group: str


def test_fusion_groups_are_dashed_clusters(vision: Graph) -> None:
    g = vision.copy()
    blk = "vision.local.0.attn."
    groups = {blk + n: "local0-qkv" for n in ("wq", "wk", "wv", "sdpa")}
    groups |= {"vision.local.0.mlp_residual": "seam", "vision.local.1.ln_1": "seam"}
    groups |= {"vision.ln_pre": "alone"}
    g.set_records(Fusion, {name: Fusion(group) for name, group in groups.items()})
    src = to_dot(g)
    by_label = {c.label: c for c in clusters(src)}
    qkv = by_label["fusion local0-qkv"]
    assert qkv.parent == "vision.local.0 (vision.local)"  # inside the block
    assert sorted(qkv.nodes) == sorted(node_id(src, n) for n in groups if n.startswith(blk))
    assert by_label["fusion seam"].parent == "vision"  # spans two blocks: in their stage
    assert "fusion alone" not in by_label  # a group of one is no group
    assert 'style="dashed,rounded"' in src


def test_records_without_fusion_groups_draw_no_fusion_cluster(vision: Graph) -> None:
    g = vision.copy()
    g.set_records(int, {"vision.ln_pre": 3})
    assert "fusion" not in to_dot(g)


# ---- files, the CLI, errors ---------------------------------------------------------------


def test_render_to_file_writes_dot(tmp_path: Path) -> None:
    g = _chain([64, 64])
    render_to_file(g, tmp_path / "g.dot", "dot", collapse_repeats=True)
    assert (tmp_path / "g.dot").read_text() == to_dot(g, collapse_repeats=True)


@needs_dot
@pytest.mark.parametrize("fmt", ["svg", "png"])
def test_render_to_file_draws(tmp_path: Path, vision: Graph, fmt: str) -> None:
    path = tmp_path / f"g.{fmt}"
    render_to_file(vision, path, fmt, collapse_repeats=True)
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG") if fmt == "png" else b"<svg" in data


def test_render_to_file_rejects_unknown_formats(tmp_path: Path) -> None:
    with pytest.raises(IrperfError, match="unknown picture format 'pdf'"):
        render_to_file(_chain([64]), tmp_path / "g.pdf", "pdf")


def test_unwritable_path_is_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(IrperfError, match="cannot write"):
        render_to_file(_chain([64]), tmp_path / "missing" / "g.dot", "dot")


def test_missing_dot_is_an_irperf_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(IrperfError, match=r"install graphviz.*--dot") as e:
        render_to_file(_chain([64]), tmp_path / "g.svg", "svg")
    assert "\n" not in str(e.value)
    assert not (tmp_path / "g.svg").exists()


def test_graphviz_failures_are_irperf_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/dot")

    def not_found(*args: object, **kwargs: object) -> object:
        raise FileNotFoundError(2, "No such file or directory")

    monkeypatch.setattr(subprocess, "run", not_found)
    with pytest.raises(IrperfError, match="install graphviz"):
        render_to_file(_chain([64]), tmp_path / "g.png", "png")

    def fails(*args: object, **kwargs: object) -> object:
        return subprocess.CompletedProcess(["dot"], 1, b"", b"Error: syntax error\nmore\n")

    monkeypatch.setattr(subprocess, "run", fails)
    with pytest.raises(IrperfError, match=r"failed drawing png: Error: syntax error$"):
        render_to_file(_chain([64]), tmp_path / "g.png", "png")

    def hangs(*args: object, timeout: float, **kwargs: object) -> object:
        raise subprocess.TimeoutExpired(["dot"], timeout)

    monkeypatch.setattr(subprocess, "run", hangs)
    with pytest.raises(IrperfError, match=r"did not finish the svg within 7 s"):
        render_to_file(_chain([64]), tmp_path / "g.svg", "svg", timeout_s=7)
    assert not (tmp_path / "g.svg").exists()


def test_cli_lower_writes_collapsed_dot(tmp_path: Path) -> None:
    path = tmp_path / "vision.dot"
    argv = ["lower", MODEL, "--part", "vision", "--dot", str(path), "--collapse-repeats"]
    assert main(argv) == 0
    src = path.read_text()
    assert f"x{LOCAL}" in src and f"x{GLOBAL}" in src


def test_cli_show_weights(tmp_path: Path) -> None:
    path = tmp_path / "vision.dot"
    argv = ["lower", MODEL, "--dot", str(path), "--collapse-repeats", "--show-weights"]
    assert main(argv) == 0
    assert 'tooltip="vision.local.0.attn.wq.weight"' in path.read_text()


def test_cli_missing_dot_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert main(["lower", MODEL, "--svg", str(tmp_path / "v.svg")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "install graphviz" in err


def test_cli_flags_need_an_output() -> None:
    assert main(["lower", MODEL, "--collapse-repeats"]) == 2


def test_render_imports_no_upper_layer() -> None:
    tree = ast.parse(Path(irperf.render.__file__).read_text())
    roots = {
        a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
    }
    roots |= {
        n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module
    }
    assert not roots & {"passes", "lowering", "targets"}


def _svg_texts(svg: str) -> list[str]:
    """The words an SVG shows, in order-free form (graphviz versions move them, not change them)."""
    return sorted(re.findall(r"<text[^>]*>([^<]*)</text>", svg))


@needs_dot
def test_the_docs_picture_is_what_the_renderer_draws(tmp_path: Path) -> None:
    """docs/img/vision-collapsed.svg is current: docs/img/regenerate.sh redraws it."""
    committed = Path(__file__).parents[2] / "docs" / "img" / "vision-collapsed.svg"
    path = tmp_path / "v.svg"
    argv = ["lower", MODEL, "--part", "vision", "--svg", str(path), "--collapse-repeats"]
    assert main([*argv, "--annotate"]) == 0
    assert _svg_texts(path.read_text()) == _svg_texts(committed.read_text())
