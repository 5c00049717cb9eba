"""Entry point: lower a model configuration (by preset name or file) into a graph."""

from __future__ import annotations

from typing import Literal

from irperf.builder import Builder
from irperf.dtypes import BF16, DType
from irperf.errors import ConfigError
from irperf.graph import Graph
from irperf.ops import Reshape
from lowering.config import ModelConfig, load_model_config
from lowering.vision import lower_projector, lower_vision_encoder

Part = Literal["vision"]
PARTS: tuple[str, ...] = ("vision",)


def _positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")


def lower(
    model: str | ModelConfig,
    part: str = "vision",
    *,
    batch: int = 1,
    images: int = 1,
    tiles: int | None = None,
    dtype: DType = BF16,
) -> Graph:
    """Lower ``model`` (a preset name, a config file path, or a ModelConfig) into a graph.

    ``part="vision"``: the vision encoder and the projector for ``batch`` sequences of ``images``
    images each. ``tiles`` (1..max) is how many tiles of each image hold picture; the encoder
    runs all ``max_num_tiles`` regardless, as both reference implementations do.
    """
    cfg = model if isinstance(model, ModelConfig) else load_model_config(model)
    if part not in PARTS:
        raise ConfigError(f"unknown part {part!r}; valid: {', '.join(PARTS)}")
    _positive("batch", batch)
    _positive("images", images)
    max_tiles = cfg.vision.max_num_tiles
    tiles = max_tiles if tiles is None else tiles
    _positive("tiles", tiles)
    if tiles > max_tiles:
        raise ConfigError(f"tiles must be at most max_num_tiles={max_tiles}, got {tiles}")

    graph = Graph(f"{cfg.name}:{part}")
    graph.meta.update(
        model=cfg.name, part=part, batch=batch, images=images, tiles=tiles, dtype=dtype.name
    )
    b = Builder(graph)
    with b.stage("vision"):
        feats = lower_vision_encoder(b, cfg.vision, images=batch * images, dtype=dtype)
        tokens = images * feats.shape[1]
        with b.scope("vision.output"):
            feats = b.add(
                Reshape(shape=(batch, tokens, feats.shape[2])), feats, name="per_sequence"
            )
    with b.stage("projector"):
        lower_projector(b, feats, cfg.text.hidden_size, dtype=dtype)
    return graph
