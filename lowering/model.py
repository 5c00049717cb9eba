"""The whole model, per phase: lower a model configuration (preset name or file) into a graph.

Parts: ``vision`` (encoder and projector), ``text`` (the decoder; with an image, the projected
vision tokens are a graph input), ``full`` (vision, projector and decoder). Phases: ``prefill``
(the prompt, and the image if any) and ``decode`` (one new token per sequence against the caches).
A graph keeps every parameter of its part resident, read or not (see ``lowering.text``).
"""

from __future__ import annotations

import os
from typing import Literal, cast

from irperf import dtypes
from irperf.builder import Builder, Value
from irperf.checks import check_range, choose, show
from irperf.dtypes import BF16, DType
from irperf.errors import ConfigError
from irperf.graph import Graph
from irperf.ops import Reshape
from lowering.common import Formats, copy_weights
from lowering.config import ModelConfig, load_model_config
from lowering.text import Logits, Phase, TextRun, lower_text_decoder
from lowering.vision import LAYOUTS, VISION_ROWS, lower_projector, lower_vision_encoder

Part = Literal["full", "text", "vision"]
PARTS: tuple[str, ...] = ("full", "text", "vision")
PHASES: tuple[str, ...] = ("prefill", "decode")
LOGITS: tuple[str, ...] = ("last", "all")

DEFAULT_SEQ_LEN = 128
"""Prompt tokens per sequence in prefill: a short question about an image."""
DEFAULT_CONTEXT = 1024
"""Cached positions per sequence before a decode step."""


MAX_BATCH = 2**16
"""Sequences per batch, at most 65,536."""
MAX_IMAGES = 64
"""Images per sequence, at most 64."""


def _count(name: str, value: int, hi: int, bound: str) -> None:
    check_range(value, 1, hi, integer=True, what=name, error=ConfigError, bound=bound)


def _one_of(name: str, value: str, valid: tuple[str, ...]) -> str:
    return choose(value, valid, what=name, error=ConfigError)


def _check_meaningful(
    part: str, phase: str, image: bool, cross_layers: int, **given: int | str | None
) -> None:
    """Refuse options the request has no use for (a typo or a misunderstanding, never silent)."""
    if part == "vision" and phase == "decode":
        raise ConfigError("part 'vision' has no decode phase (the encoder runs in prefill)")
    if part == "vision" and not image:
        raise ConfigError("part 'vision' needs an image")
    unused: list[str] = []
    if part == "vision":
        unused += ["seq_len", "context", "logits"]
    elif phase == "prefill":
        unused.append("context")
    else:
        unused.append("seq_len")
        if given["logits"] == "all":
            raise ConfigError("logits 'all' applies to prefill; decode has one new token")
    if part == "text":
        unused += ["layout", "vision_rows"]
    # the image reaches the text decoder only through its cross-attention layers
    blind = cross_layers == 0 and not (part == "full" and phase == "prefill")
    if not image or (blind and part != "vision"):
        unused += ["images", "tiles"]
    for name in unused:
        if given[name] is not None:
            why = "without an image" if name in ("images", "tiles") else f"in {part} {phase}"
            if image and name in ("images", "tiles"):
                why = f"in {part} {phase} of a model without cross-attention layers"
            if part == "vision":
                why = "with part 'vision' (the encoder has no prompt or cache)"
            if name in ("layout", "vision_rows"):
                why = "with part 'text' (it lowers no vision weights)"
            raise ConfigError(f"{name} means nothing {why}")


ACTIVATION_DTYPES: tuple[str, ...] = tuple(
    sorted(d.name for d in dtypes.DTYPES.values() if d.is_float and not d.is_block)
)
"""Formats for ``dtype``: scalar floats. Block formats are tiled for matmul weights only."""


def _dtype(name: str, value: DType | str) -> DType:
    if isinstance(value, str):
        return dtypes.dtype(value)
    if not isinstance(value, DType):
        raise ConfigError(f"{name} must be a DType or a dtype name, got {show(value)}")
    return value


def _formats(dtype: DType | str, weight_dtype: DType | str | None = None) -> Formats:
    """The checked formats: ``dtype`` for activations, ``weight_dtype`` (default ``dtype``) for
    the linear weights. DTypes or names (``"bf16"``)."""
    act = _dtype("dtype", dtype)
    weights = act if weight_dtype is None else _dtype("weight_dtype", weight_dtype)
    for name, dt in (("dtype", act), ("weight_dtype", weights)):
        if not dt.is_float:
            raise ConfigError(f"{name} {dt} is not a floating-point format")
    if act.is_block:
        raise ConfigError(
            f"dtype {act} is a block format, for matmul weights only: pass it with "
            f"--weight-dtype (weight_dtype= in the API); activations take "
            f"{', '.join(ACTIVATION_DTYPES)}"
        )
    return Formats(activations=act, weights=weights)


def _vision(
    b: Builder,
    cfg: ModelConfig,
    *,
    batch: int,
    images: int,
    fmt: Formats,
    layout: str,
    rows: str = "hf",
) -> Value:
    """Encoder and projector: the projected vision tokens ``[batch, images * 4n, D]``."""
    assert cfg.vision is not None, "lower() refuses vision work for a text-only model"
    with b.stage("vision"):
        feats = lower_vision_encoder(
            b, cfg.vision, images=batch * images, fmt=fmt, layout=layout, token_rows=rows
        )
        tokens = images * feats.shape[1]
        with b.scope("vision.output"):
            feats = b.add(
                Reshape(shape=(batch, tokens, feats.shape[2])), feats, name="per_sequence"
            )
    with b.stage("projector"):
        return lower_projector(b, feats, cfg.text.hidden_size, fmt=fmt)


def _resident_vision_weights(graph: Graph, cfg: ModelConfig, *, fmt: Formats, layout: str) -> None:
    """The encoder's and projector's weights alone, for a graph that does not run them."""
    scratch = Builder(Graph())
    _vision(scratch, cfg, batch=1, images=1, fmt=fmt, layout=layout)
    copy_weights(scratch.graph, graph)


def lower(
    model: str | os.PathLike[str] | ModelConfig,
    part: str = "full",
    *,
    batch: int = 1,
    images: int | None = None,
    tiles: int | None = None,
    dtype: DType | str = BF16,
    weight_dtype: DType | str | None = None,
    phase: str = "prefill",
    seq_len: int | None = None,
    context: int | None = None,
    image: bool | None = None,
    logits: str | None = None,
    layout: str | None = None,
    vision_rows: str | None = None,
) -> Graph:
    """Lower ``model`` (a preset name, a config file path, or a ModelConfig) into a graph.

    ``part``: ``vision``, ``text`` or ``full`` (see the module docstring); ``phase``:
    ``prefill`` (``seq_len`` prompt tokens per sequence) or ``decode`` (one token per sequence
    after ``context`` cached positions). ``image``: each sequence holds ``images`` images (the
    encoder always runs ``max_num_tiles`` tiles; ``tiles`` of them hold picture), else the prompt
    is text only and every cross-attention layer is skipped (None: an image where the model has
    a vision encoder; a text-only Llama has none, and its ``full`` part is its decoder).
    ``logits``: ``last`` (HF
    ``generate``) or ``all`` positions (Meta's reference) in prefill. ``layout``: the parameter
    layout of the tile embeddings, ``hf`` (default) or ``meta`` (see ``lowering.vision``).
    ``vision_rows``: how the encoder pads a tile's tokens, ``hf`` (to a multiple of 8, default)
    or ``tile`` (to whole 32-row tiles, as the device does: a placement's choice).
    ``dtype``: the activation format, a scalar float (``bf16`` default); ``weight_dtype``: the
    format of the linear weights, block formats allowed (default ``dtype``); see
    ``lowering.common.Formats``. Formats are DTypes or names.

    Options that mean nothing for the request are errors, not silently ignored: ``seq_len`` and
    ``logits="all"`` in decode, ``context`` in prefill, ``images``/``tiles`` without an image, any
    text option with ``part="vision"``, ``layout`` with ``part="text"``. Unset options (None)
    take the defaults (``DEFAULT_SEQ_LEN``, ``DEFAULT_CONTEXT``, one image, every tile,
    last-position logits, the HF layout).
    """
    cfg = model if isinstance(model, ModelConfig) else load_model_config(model)
    part = _one_of("part", part, PARTS)
    phase = _one_of("phase", phase, PHASES)
    if logits is not None:
        logits = _one_of("logits", logits, LOGITS)
    if layout is not None:
        layout = _one_of("layout", layout, LAYOUTS)
    if vision_rows is not None:
        vision_rows = _one_of("vision_rows", vision_rows, tuple(VISION_ROWS))
    text_only = cfg.vision is None
    if image is None:
        image = not text_only
    if not isinstance(image, bool):
        raise ConfigError(f"image must be True or False, got {show(image)}")
    if text_only and (image or part == "vision"):
        what = "part 'vision'" if part == "vision" else "an image"
        raise ConfigError(
            f"{cfg.name} is a text-only Llama (no vision encoder): {what} means nothing"
        )
    if text_only and (layout is not None or vision_rows is not None):
        raise ConfigError(f"{cfg.name} is a text-only Llama: it has no vision layout or rows")
    fmt = _formats(dtype, weight_dtype)
    _check_meaningful(
        part,
        phase,
        image,
        cfg.text.num_cross_layers,
        images=images,
        tiles=tiles,
        seq_len=seq_len,
        context=context,
        logits=logits,
        layout=layout,
        vision_rows=vision_rows,
    )
    positions = cfg.text.max_position_embeddings
    max_tiles = cfg.vision.max_num_tiles if cfg.vision is not None else 1
    checks = [
        ("batch", batch, MAX_BATCH, ""),
        ("images", 1 if images is None else images, MAX_IMAGES, ""),
        ("tiles", max_tiles if tiles is None else tiles, max_tiles, "the model's max_num_tiles"),
    ]
    # The prompt and the cache are checked only where the request has them (a model with 512
    # positions has no 1024-position cache in prefill), with their defaults said as such.
    if part != "vision" and phase == "prefill":
        given = "" if seq_len is not None else f"; {DEFAULT_SEQ_LEN} is the default"
        seq_len = DEFAULT_SEQ_LEN if seq_len is None else seq_len
        checks.append(("seq_len", seq_len, positions, f"max_position_embeddings{given}"))
    if part != "vision" and phase == "decode":
        if positions < 2:
            raise ConfigError(
                f"max_position_embeddings {positions} leaves no room for a decode step: the "
                f"cache needs a position before the new token's"
            )
        given = "" if context is not None else f"; {DEFAULT_CONTEXT} is the default"
        context = DEFAULT_CONTEXT if context is None else context
        bound = f"max_position_embeddings, less the new token{given}"
        checks.append(("context", context, positions - 1, bound))
    for name, value, hi, bound in checks:
        _count(name, value, hi, bound)
    images = 1 if images is None else images
    tiles = max_tiles if tiles is None else tiles
    seq_len = DEFAULT_SEQ_LEN if seq_len is None else seq_len
    context = DEFAULT_CONTEXT if context is None else context
    logits = "last" if logits is None else logits
    layout = "hf" if layout is None else layout
    rows = "hf" if vision_rows is None else vision_rows

    graph = Graph(f"{cfg.name}:{part}" if part == "vision" else f"{cfg.name}:{part}:{phase}")
    graph.meta.update(
        model=cfg.name,
        part=part,
        phase=phase,
        batch=batch,
        images=images,
        tiles=tiles,
        dtype=fmt.activations.name,
        weight_dtype=fmt.weights.name,
    )
    if part != "text" and not text_only:
        graph.meta["layout"] = layout
        graph.meta["vision_rows"] = rows
    b = Builder(graph)
    if part == "vision":
        _vision(b, cfg, batch=batch, images=images, fmt=fmt, layout=layout, rows=rows)
        return graph

    graph.meta.update(image=image, logits=logits)
    if phase == "prefill":
        graph.meta["seq_len"] = seq_len
    else:
        graph.meta["context"] = context
    image_tokens = images * cfg.vision.vision_tokens if image and cfg.vision is not None else 0
    run = TextRun(
        phase=cast(Phase, phase),
        batch=batch,
        tokens=seq_len if phase == "prefill" else 1,
        context=0 if phase == "prefill" else context,
        image_tokens=image_tokens,
        logits=cast(Logits, logits),
    )
    vision: Value | None = None
    if part == "full":
        if phase == "prefill" and image:
            vision = _vision(b, cfg, batch=batch, images=images, fmt=fmt, layout=layout, rows=rows)
        elif not text_only:
            _resident_vision_weights(graph, cfg, fmt=fmt, layout=layout)
    elif phase == "prefill" and image:
        shape = (batch, image_tokens, cfg.text.hidden_size)
        with b.stage("text"):
            vision = b.input("text.vision_tokens", shape, fmt.activations)
    lower_text_decoder(b, cfg.text, run, vision=vision, fmt=fmt)
    return graph
