"""Properties of the tensor-parallel transform over random small models and requests.

Random valid configs whose heads, KV heads and split widths the chip count divides, lowered through
the API in BF16 (2 bytes an element, so every per-chip byte count is exact), then split by
``tensor_parallel``: the result verifies, the global parameter count and the matmul work are those
of the unsplit graph, each split weight holds one share per chip, every layer has the collectives
of its pattern, and each collective's link bytes are the ring formula from its per-chip types.
A chip count that does not divide the heads is a PassError naming the node.

Every expected number is derived here from the config, the request, the unsplit graph and the
split graph's per-chip types (the split roles are restated from the rule table in the docstring
of ``passes/tensor_parallel.py``, not imported), never from the counts the passes report for the
split graph.
"""

from __future__ import annotations

import math
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import irperf
from irperf.errors import PassError
from irperf.graph import Graph
from irperf.ops import Attention, MatMul, Weight
from irperf.roles import Role
from lowering import ModelConfig, TextConfig, VisionConfig
from passes.bytes import count_bytes
from passes.flops import count_flops
from passes.params import count_params
from passes.tensor_parallel import tensor_parallel
from tests.passes.test_tensor_parallel import distinct_matmul_flops
from tests.robustness.outcome import LONG
from tests.robustness.test_models import requests as model_requests

EXAMPLES = 2000 if LONG else 150
"""Examples per property: a modest fixed number in CI; ``IRPERF_ROBUSTNESS=long`` (as for
``tests/robustness``) explores more."""

PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not LONG,  # CI runs the same examples every time (a red run reproduces)
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

BF16_BYTES = 2
COLUMN_ROLES = frozenset(
    {
        Role.Q,
        Role.K,
        Role.V,
        Role.FF1,
        Role.FF3,
        Role.FC1,
        Role.CROSS_Q,
        Role.CROSS_KV,
        Role.PROJECTOR,
        Role.LM_HEAD,
    }
)
"""Weights split on their output columns (the rule table of ``passes/tensor_parallel.py``)."""
ROW_ROLES = frozenset({Role.O, Role.FF2, Role.FC2, Role.CROSS_O})
"""Weights split on their input rows (their product a partial sum)."""
PATTERNS = ("fractured", "all-reduce")
HEAD_DIMS = (2, 4, 8, 16)  # even: RoPE rotates pairs of channels


# ---- random models the chip count divides --------------------------------------------------


@st.composite
def vision_configs(draw: st.DrawFn, chips: int, divisible_heads: bool = True) -> VisionConfig:
    patch = draw(st.sampled_from([2, 4, 7, 14]))
    if divisible_heads:
        heads = chips * draw(st.integers(1, 2))
    else:
        heads = draw(st.integers(1, 7).filter(lambda h: h % chips != 0))
    hd = draw(st.sampled_from([2, 4, 8]))
    layers = draw(st.integers(1, 2))
    saved = tuple(sorted(draw(st.sets(st.integers(0, layers - 1), max_size=layers))))
    w = heads * hd
    return VisionConfig(
        image_size=patch * draw(st.integers(1, 3)),
        patch_size=patch,
        hidden_size=w,
        intermediate_size=chips * draw(st.integers(1, 8)),
        num_hidden_layers=layers,
        num_global_layers=draw(st.integers(1, 2)),
        attention_heads=heads,
        max_num_tiles=draw(st.integers(1, 3)),
        intermediate_layers_indices=saved,
        num_aspect_ratios=draw(st.integers(1, 4)),
        vision_output_dim=w * (1 + len(saved)),
    )


@st.composite
def text_configs(
    draw: st.DrawFn, chips: int, divisible_heads: bool = True, pattern: str = "all-reduce"
) -> TextConfig:
    if divisible_heads:
        kv = chips * draw(st.integers(1, 2))
        hd = draw(st.sampled_from(HEAD_DIMS))
        group = draw(st.integers(1, 2))
    else:
        # KV heads the chips do not divide, and a packed K/V width (kv * head_dim) they do not
        # divide either. Head dims are even (RoPE). Where the packed query width divides but
        # the query heads do not, the tests below check the message, so here: under
        # all-reduce the query width does not divide either; under fractured (the residual
        # stream split on the width, which must divide) the query heads divide.
        kv = draw(st.integers(1, 5).filter(lambda k: any((k * d) % chips for d in HEAD_DIMS)))
        hd = draw(st.sampled_from([d for d in HEAD_DIMS if (kv * d) % chips]))
        if pattern == "fractured":
            groups = [g for g in range(1, 5) if (kv * g) % chips == 0]
        else:
            groups = [g for g in range(1, 5) if (kv * g * hd) % chips]
        group = draw(st.sampled_from(groups))
    layers = draw(st.integers(1, 4))
    cross = tuple(j for j in range(layers) if draw(st.booleans()))  # about half cross
    return TextConfig(
        hidden_size=kv * group * hd,
        num_hidden_layers=layers,
        num_attention_heads=kv * group,
        num_key_value_heads=kv,
        head_dim=hd,
        intermediate_size=chips * draw(st.integers(1, 8)),
        vocab_size=chips * draw(st.integers(1, 40)),
        cross_attention_layers=cross,
        max_position_embeddings=4096,
    )


def requests(cfg: ModelConfig) -> st.SearchStrategy[dict[str, Any]]:
    """A request as ``tests/robustness/test_models.py`` draws one, the whole model first: its
    simplest example runs the encoder and the decoder."""
    return model_requests(cfg, ("full", "text", "vision"))


@st.composite
def split_cases(draw: st.DrawFn) -> tuple[ModelConfig, int, dict[str, Any], str]:
    """A model every split width of which ``chips`` divides, a request, and a pattern."""
    chips = draw(st.sampled_from([2, 3, 4]))
    cfg = ModelConfig(
        name="random-tp",
        vision=draw(vision_configs(chips)),
        text=draw(text_configs(chips)),
    )
    r = draw(requests(cfg), label="request")
    return cfg, chips, r, draw(st.sampled_from(PATTERNS), label="pattern")


def lower(cfg: ModelConfig, r: dict[str, Any]) -> Graph:
    return irperf.lower(cfg, dtype="bf16", **r)


def vision_runs(r: dict[str, Any]) -> bool:
    """The encoder runs for a vision request and a full prefill with an image."""
    full_prefill = r["part"] == "full" and r["phase"] == "prefill"
    return r["part"] == "vision" or (full_prefill and bool(r["image"]))


def text_layers_run(cfg: ModelConfig, r: dict[str, Any]) -> list[int]:
    """The decoder layers with ops: every self layer, and the cross layers given an image."""
    if r["part"] == "vision":
        return []
    t = cfg.text
    cross = set(t.cross_attention_layers)
    return [j for j in range(t.num_hidden_layers) if j not in cross or r["image"]]


def vision_layers(cfg: ModelConfig) -> list[str]:
    v = cfg.vision
    local = [f"vision.local.{i}" for i in range(v.num_hidden_layers)]
    return local + [f"vision.global.{i}" for i in range(v.num_global_layers)]


def collective_kinds(graph: Graph, scope: str) -> list[str]:
    return sorted(n.op.kind for n in graph.scope(scope) if n.role is Role.COLLECTIVE)


def ring_link_bytes(graph: Graph, name: str, chips: int) -> int:
    """Bytes one chip sends in a ring collective, from its per-chip operand and result types."""
    node = graph.node(name)
    out = node.type.nbytes
    kind = node.op.kind
    if kind == "all_gather":
        return (chips - 1) * graph.node(node.operands[0]).type.nbytes
    if kind == "reduce_scatter":
        return (chips - 1) * out
    if kind == "all_reduce":
        return 2 * (chips - 1) * math.ceil(out / chips)
    assert kind == "mesh_split", f"{name}: unexpected collective {kind}"
    return 0  # each chip keeps its own part of a whole tensor: nothing crosses a link


# ---- the properties -------------------------------------------------------------------------


@PROPERTY
@given(case=split_cases())
def test_split_graph_verifies_and_keeps_its_totals(
    case: tuple[ModelConfig, int, dict[str, Any], str],
) -> None:
    cfg, chips, r, pattern = case
    g = lower(cfg, r)
    tp = tensor_parallel(g, chips, pattern)
    irperf.verify(tp)
    assert tp.meta["tensor_parallel"] == {"chips": chips, "pattern": pattern}

    # The model's parameters, each counted once: a split weight by its global element count.
    params = sum(p.params for p in count_params(g).values())
    assert sum(p.params for p in count_params(tp).values()) == params

    # Each split matmul weight holds exactly one share per chip; the rest stay whole.
    before, after = count_params(g), count_params(tp)
    split = 0
    for n in g:
        if not isinstance(n.op, Weight):
            continue
        assert n.type.nbytes == BF16_BYTES * n.type.numel, n.name  # BF16 throughout
        is_split = n.role in COLUMN_ROLES or (n.role in ROW_ROLES and n.type.rank == 2)
        per_chip = after[n.name].weight_bytes
        if is_split:
            split += 1
            assert per_chip * chips == before[n.name].weight_bytes, n.name
            assert not tp.node(n.name).type.layout.replicated, n.name
        else:  # norms, embeddings, gates, row-parallel biases
            assert per_chip == before[n.name].weight_bytes, n.name
            assert tp.node(n.name).type.layout.replicated, n.name
    assert split > 0

    # Matmul-only FLOPs: the distinct work over the chips is the unsplit graph's.
    unsplit = sum(f.flops for f in count_flops(g, "matmul-only").values())
    assert distinct_matmul_flops(tp) == unsplit

    # Every split matmul reads a split weight (so the work really is divided).
    for n in tp:
        if isinstance(n.op, MatMul) and n.role in COLUMN_ROLES | ROW_ROLES:
            assert tp.node(n.operands[1]).type.layout.sharded, n.name


@PROPERTY
@given(case=split_cases())
def test_collectives_per_layer_and_their_link_bytes(
    case: tuple[ModelConfig, int, dict[str, Any], str],
) -> None:
    cfg, chips, r, pattern = case
    g = lower(cfg, r)
    tp = tensor_parallel(g, chips, pattern)

    # The vision encoder all-reduces after each of its 2 row-parallel matmuls per layer.
    encoder = vision_runs(r)
    for layer in vision_layers(cfg):
        assert collective_kinds(tp, layer) == (["all_reduce"] * 2 if encoder else []), layer

    # Decoder layers: 2 all-gathers + 2 reduce-scatters (fractured) or 2 all-reduces.
    per_layer = (
        ["all_gather"] * 2 + ["reduce_scatter"] * 2
        if pattern == "fractured"
        else ["all_reduce"] * 2
    )
    running = text_layers_run(cfg, r)
    if r["part"] != "vision":
        for j in range(cfg.text.num_hidden_layers):
            expected = per_layer if j in running else []  # a skipped cross layer runs nothing
            assert collective_kinds(tp, f"text.{j}") == expected, f"text.{j}"

    # The whole graph: the layers' collectives, the projector's and lm_head's all-gathers, and
    # under fractured the final norm's all-gather and the split that starts the residual stream.
    want: dict[str, int] = {}

    def more(kind: str, n: int) -> None:
        if n:
            want[kind] = want.get(kind, 0) + n

    if encoder:
        more("all_reduce", 2 * len(vision_layers(cfg)))
        more("all_gather", 1)
    if r["part"] != "vision":
        layers = len(running)
        more("all_gather", 1)  # lm_head
        if pattern == "fractured":
            more("all_gather", 2 * layers + 1)  # and the final norm
            more("reduce_scatter", 2 * layers)
            more("mesh_split", 1)
        else:
            more("all_reduce", 2 * layers)
    got: dict[str, int] = {}
    for n in tp:
        if n.role is Role.COLLECTIVE:
            got[n.op.kind] = got.get(n.op.kind, 0) + 1
    assert got == want, (got, want)

    # Link bytes: the ring formula from each collective's per-chip types; nothing else links.
    for convention in ("matmul-only", "full"):
        traffic = count_bytes(tp, convention)
        for n in tp:
            link = traffic[n.name].link_bytes
            assert link >= 0, n.name
            if n.role is Role.COLLECTIVE:
                assert link == ring_link_bytes(tp, n.name, chips), (convention, n.name)
            else:
                assert link == 0, (convention, n.name)
    for n in tp:  # and the per-chip types are consistent with the collective's algorithm
        x = tp.node(n.operands[0]).type if n.operands else None
        if n.op.kind == "all_gather":
            assert x is not None and n.type.nbytes == chips * x.nbytes, n.name
        elif n.op.kind == "reduce_scatter":
            assert x is not None and n.type.nbytes * chips == x.nbytes, n.name
        elif n.op.kind == "all_reduce":
            assert x is not None and n.type.nbytes == x.nbytes, n.name


# ---- chip counts that do not divide the heads ------------------------------------------------


_QUOTED = re.compile(r"'([^']+)'")


def assert_names_the_culprit(g: Graph, chips: int, message: str) -> None:
    """The message says the chips do not divide, and names a node of ``g`` that they do not
    divide: a split weight with a dimension they do not divide, or an attention op whose heads
    they do not divide."""
    assert f"{chips} chips do not divide" in message, message
    named = [m for m in _QUOTED.findall(message) if m in g]
    assert len(named) == 1, message
    node = g.node(named[0])
    if isinstance(node.op, Attention):
        assert node.op.heads % chips or node.op.kv_heads % chips, message
    else:
        assert isinstance(node.op, Weight), message
        assert any(d % chips for d in node.type.shape), message


HeadsCase = tuple[ModelConfig, int, dict[str, Any], str]


@st.composite
def vision_heads_cases(draw: st.DrawFn) -> HeadsCase:
    """The encoder runs with heads the chips do not divide; every other split width divides."""
    chips = draw(st.sampled_from([2, 3, 4]))
    cfg = ModelConfig(
        name="random-tp-bad-vision",
        vision=draw(vision_configs(chips, divisible_heads=False)),
        text=draw(text_configs(chips)),
    )
    batch = draw(st.integers(1, 2))
    r: dict[str, Any]
    if draw(st.booleans()):
        r = {"part": "vision", "batch": batch, "images": draw(st.integers(1, 2))}
    else:
        r = {"part": "full", "batch": batch, "phase": "prefill", "image": True}
        r["seq_len"] = draw(st.integers(1, 8))
    return cfg, chips, r, draw(st.sampled_from(PATTERNS), label="pattern")


@st.composite
def text_heads_cases(draw: st.DrawFn) -> HeadsCase:
    """Decoder KV heads (so query heads or KV heads) the chips do not divide; vision divides."""
    chips = draw(st.sampled_from([3, 4]))  # 2 always divides kv * (an even head_dim)
    pattern = draw(st.sampled_from(PATTERNS), label="pattern")
    cfg = ModelConfig(
        name="random-tp-bad-text",
        vision=draw(vision_configs(chips)),
        text=draw(text_configs(chips, divisible_heads=False, pattern=pattern)),
    )
    r = draw(requests(cfg).filter(lambda q: q["part"] != "vision"), label="request")
    return cfg, chips, r, pattern


@PROPERTY
@given(case=st.one_of(vision_heads_cases(), text_heads_cases()))
def test_heads_the_chips_do_not_divide_are_a_pass_error(case: HeadsCase) -> None:
    cfg, chips, r, pattern = case
    g = lower(cfg, r)
    with pytest.raises(PassError) as info:
        tensor_parallel(g, chips, pattern)
    assert_names_the_culprit(g, chips, str(info.value))


def _text_model(heads: int, kv_heads: int, head_dim: int, cross: tuple[int, ...]) -> ModelConfig:
    vision = VisionConfig(
        image_size=4,
        patch_size=2,
        hidden_size=4,
        intermediate_size=4,
        num_hidden_layers=1,
        num_global_layers=1,
        attention_heads=2,
        max_num_tiles=1,
        intermediate_layers_indices=(),
        num_aspect_ratios=1,
        vision_output_dim=4,
    )
    text = TextConfig(
        hidden_size=heads * head_dim,
        num_hidden_layers=1,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        head_dim=head_dim,
        intermediate_size=4,
        vocab_size=4,
        cross_attention_layers=cross,
        max_position_embeddings=4096,
    )
    return ModelConfig(name="heads-not-packed-width", vision=vision, text=text)


@pytest.mark.parametrize(
    "heads, kv_heads, cross",
    [(3, 1, ()), (3, 1, (0,)), (6, 3, ()), (4, 1, ())],
    ids=["self-q-heads", "cross-q-heads", "self-kv-heads", "self-kv-heads-only"],
)
def test_heads_that_do_not_divide_but_their_packed_width_does(
    heads: int, kv_heads: int, cross: tuple[int, ...]
) -> None:
    cfg = _text_model(heads, kv_heads, head_dim=4, cross=cross)
    g = irperf.lower(cfg, "text", dtype="bf16", phase="prefill", seq_len=2)
    with pytest.raises(PassError) as info:
        tensor_parallel(g, 2)
    assert_names_the_culprit(g, 2, str(info.value))


def test_fractured_text_with_heads_and_width_that_do_not_divide() -> None:
    g = irperf.lower("llama-3.2-11b-vision", "text", dtype="bf16", phase="decode")
    with pytest.raises(PassError) as info:  # 3 chips: 32 heads, 8 KV heads, width 4,096
        tensor_parallel(g, 3, "fractured")
    assert_names_the_culprit(g, 3, str(info.value))
