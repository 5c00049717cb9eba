"""Drawing never waits without end: every graph irperf lowers is drawn within a minute, a graph
too large for graphviz collapses its repeats (saying so) or is refused before ``dot`` starts."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import attrs
import pytest

from irperf.cli import main
from irperf.errors import OutputError
from irperf.ops import Constant, Input, Weight
from irperf.render import FAST_LAYOUT_NODES, LAYOUT_NODES, render_to_file, to_dot
from lowering import PRESETS, lower

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz 'dot' not installed")
DRAWN = re.compile(r"^\s*n\d+ \[label=", re.M)
MINUTE_S = 60.0

GRAPHS = [
    (model, part, phase)
    for model in ("llama-3.2-11b-vision", "llama-3.2-90b-vision")
    for part, phase in (
        ("vision", None),
        ("text", "prefill"),
        ("text", "decode"),
        ("full", "prefill"),
        ("full", "decode"),
    )
]


@needs_dot
@pytest.mark.parametrize(("model", "part", "phase"), GRAPHS)
def test_every_whole_graph_draws_within_a_minute(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], model: str, part: str, phase: str | None
) -> None:
    path = tmp_path / "g.svg"
    argv = ["lower", model, "--part", part, "--svg", str(path)]
    argv += ["--phase", phase] if phase else []
    start = time.perf_counter()
    assert main(argv) == 0
    assert time.perf_counter() - start < MINUTE_S
    assert path.read_text().rstrip().endswith("</svg>")
    out = capsys.readouterr().out
    assert "note:" not in out  # every node drawn: these graphs are within the layout bound


def test_shared_inputs_are_folded_into_their_readers() -> None:
    """The RoPE tables are read by every layer: drawn, they tie every layer to one node."""
    g = lower("llama-3.2-11b-vision", "text")
    cos = g.node("text.rope.cos")
    assert isinstance(cos.op, Input) and len({g.node(u).block for u in g.users(cos.name)}) > 1
    src = to_dot(g)
    assert 'tooltip="text.rope.cos"' not in src
    assert f"input text.rope.cos: {cos.type}" in src
    shown = to_dot(g, show_weights=True)  # it is an input, not a weight: listed there too
    assert 'tooltip="text.rope.cos"' not in shown and "input text.rope.cos" in shown


def test_unread_weights_are_counted_not_drawn() -> None:
    """A decode graph holds the vision encoder's (and the cross layers' K/V) weights but runs
    none of them: the cross-attention caches were filled in prefill."""
    g = lower("llama-3.2-11b-vision", "full", phase="decode")
    unread = [n for n in g if isinstance(n.op, Weight | Constant) and not g.users(n.name)]
    assert any(n.name.startswith("vision.") for n in unread)
    src = to_dot(g)
    assert f"{len(unread):,} weights held in memory but read by no op" in src
    assert 'tooltip="vision.' not in src


def _tall_model(layers: int) -> object:
    """The 11B with ``layers`` text layers (cross layers every fifth, as the 90B)."""
    cfg = PRESETS["llama-3.2-11b-vision"]
    cross = tuple(range(3, layers, 5))
    text = attrs.evolve(cfg.text, num_hidden_layers=layers, cross_attention_layers=cross)
    return attrs.evolve(cfg, text=text)


def test_a_drawing_too_large_collapses_its_repeats_and_says_so(tmp_path: Path) -> None:
    g = lower(_tall_model(250), "text")  # 250 layers: more nodes than graphviz lays out fast
    assert len(DRAWN.findall(to_dot(g))) > LAYOUT_NODES
    path = tmp_path / "g.dot"
    full = render_to_file(g, path, "dot", collapse_repeats=None)
    assert not full.collapsed and full.nodes > LAYOUT_NODES  # DOT source: every node, fast
    if shutil.which("dot") is None:
        return
    drawing = render_to_file(g, tmp_path / "g.svg", "svg", collapse_repeats=None)
    assert drawing.collapsed and drawing.nodes < FAST_LAYOUT_NODES
    assert "each run of repeated blocks is drawn once" in drawing.note


def test_a_drawing_too_large_even_collapsed_is_refused_up_front(tmp_path: Path) -> None:
    g = lower(_tall_model(250), "text")
    with pytest.raises(OutputError, match=r"would take graphviz more than a minute"):
        render_to_file(g, tmp_path / "g.svg", "svg", collapse_repeats=False)
    assert not (tmp_path / "g.svg").exists()


@needs_dot
def test_drawing_the_weights_too_stays_fast(tmp_path: Path) -> None:
    """--show-weights draws ~1,100 more nodes, each next to its reader: seconds, not minutes."""
    path = tmp_path / "g.svg"
    argv = ["lower", "llama-3.2-11b-vision", "--svg", str(path), "--show-weights", "--annotate"]
    start = time.perf_counter()
    assert main(argv) == 0
    assert time.perf_counter() - start < MINUTE_S
