"""Model configuration records for Llama 3.2 Vision: vision encoder, text decoder, the pair."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import attrs
from attrs import Attribute, Factory, field, frozen

from irperf.checks import check_range, is_int, show
from irperf.errors import ConfigError

HF_EMBEDDING_EXTRA_ROWS = 8
"""HF's ``embed_tokens`` has ``vocab_size + 8`` rows (image token and padding); lm_head has not."""

TOKEN_PAD_MULTIPLE = 8
"""Both implementations pad each tile's token count to a multiple of 8."""


RANGE = "range"
"""Field metadata key: the ``(lo, hi)`` a config number must lie in."""


def _where(inst: object, attr: Attribute[Any]) -> str:
    return f"{type(inst).__name__}.{attr.name}"


def _in_declared_range(inst: object, attr: Attribute[Any], value: object) -> None:
    lo, hi = attr.metadata[RANGE]
    check_range(
        value, lo, hi, integer=attr.type in (int, "int"), what=_where(inst, attr), error=ConfigError
    )


def _count(lo: int, hi: int, **kwargs: Any) -> Any:
    """An integer field with a declared range: generous bounds around every real checkpoint,
    so a typo (a 400-digit layer count, 10**7 layers) is an error, not an hour of lowering."""
    return field(validator=_in_declared_range, metadata={RANGE: (lo, hi)}, **kwargs)


def _number(lo: float, hi: float, **kwargs: Any) -> Any:
    """A float field with a declared range (finite: NaN and infinities are never in range)."""
    return field(validator=_in_declared_range, metadata={RANGE: (lo, hi)}, **kwargs)


def field_range(cls: type, name: str) -> tuple[float, float]:
    """The declared range of config field ``name`` of ``cls`` (loaders check file keys by it)."""
    bounds: tuple[float, float] = attrs.fields_dict(cls)[name].metadata[RANGE]
    return bounds


LAYERS = 256
"""At most this many layers in a stack: twice Llama 3.1 405B's 126 (3.2 90B has 100); 10**7
would never finish, and 1,024 made the fusion comparison of a maximal model take a minute."""
WIDTH = 2**16
"""Widths (hidden sizes) up to 65,536; FFN widths up to four times that."""
HEADS = 1024
VOCAB = 2**22
"""Vocabulary rows up to 4,194,304 (Llama 3 has 128,256)."""
POSITIONS = 2**24
"""Positions (prompt plus cache) up to 16,777,216."""


def _int_tuple(inst: object, attr: Attribute[Any], value: object) -> None:
    if not isinstance(value, tuple) or not all(is_int(v) for v in value):
        raise ConfigError(
            f"{type(inst).__name__}.{attr.name} must be a tuple of integers, got {show(value)}"
        )


def _non_empty_str(inst: object, attr: Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value:
        raise ConfigError(
            f"{type(inst).__name__}.{attr.name} must be a non-empty string, got {show(value)}"
        )


def _boolean(inst: object, attr: Attribute[Any], value: object) -> None:
    if not isinstance(value, bool):
        raise ConfigError(
            f"{type(inst).__name__}.{attr.name} must be true or false, got {value!r:.40}"
        )


def _optional_instance_of(kind: type) -> Callable[[object, Attribute[Any], object], None]:
    inner = _instance_of(kind)

    def check(inst: object, attr: Attribute[Any], value: object) -> None:
        if value is not None:
            inner(inst, attr, value)

    return check


def _instance_of(kind: type) -> Callable[[object, Attribute[Any], object], None]:
    def check(inst: object, attr: Attribute[Any], value: object) -> None:
        if not isinstance(value, kind):
            raise ConfigError(
                f"{type(inst).__name__}.{attr.name} must be a {kind.__name__}, got {show(value)}"
            )

    return check


def _check_indices(owner: str, name: str, indices: tuple[int, ...], limit: int) -> None:
    """Every index is in ``[0, limit)`` and appears once."""
    if len(set(indices)) != len(indices):
        raise ConfigError(f"{owner}.{name} has repeated indices: {list(indices)}")
    bad = [i for i in indices if not 0 <= i < limit]
    if bad:
        raise ConfigError(f"{owner}.{name} has indices {bad} outside [0, {limit})")


@frozen(kw_only=True)
class VisionConfig:
    """The tiled ViT-H/14 encoder: a local stack (some outputs saved) then a gated global stack.

    ``image_size`` is the tile ("chunk") side C in pixels; an image is always padded to
    ``max_num_tiles`` tiles, which the encoder attends over as one sequence.
    """

    image_size: int = _count(1, 4096)
    patch_size: int = _count(1, 4096, default=14)
    num_channels: int = _count(1, 64, default=3)
    hidden_size: int = _count(1, WIDTH, default=1280)
    intermediate_size: int = _count(1, 4 * WIDTH, default=5120)
    num_hidden_layers: int = _count(1, LAYERS, default=32)
    num_global_layers: int = _count(1, LAYERS, default=8)
    attention_heads: int = _count(1, HEADS, default=16)
    max_num_tiles: int = _count(1, 64, default=4)
    intermediate_layers_indices: tuple[int, ...] = field(
        default=(3, 7, 15, 23, 30), validator=_int_tuple
    )
    num_aspect_ratios: int = _count(1, 1024, default=8)
    """len(HF ``supported_aspect_ratios``); HF's tile embeddings have one more row (id 0)."""
    norm_eps: float = _number(1e-30, 1.0, default=1e-5)
    vision_output_dim: int = _count(1, (LAYERS + 1) * WIDTH, default=7680)

    def __attrs_post_init__(self) -> None:
        if self.image_size % self.patch_size:
            raise ConfigError(
                f"VisionConfig.image_size {self.image_size} is not a multiple of "
                f"patch_size {self.patch_size}"
            )
        if self.hidden_size % self.attention_heads:
            raise ConfigError(
                f"VisionConfig.hidden_size {self.hidden_size} is not divisible by "
                f"attention_heads {self.attention_heads}"
            )
        _check_indices(
            "VisionConfig",
            "intermediate_layers_indices",
            self.intermediate_layers_indices,
            self.num_hidden_layers,
        )
        # The projector input: the global output plus every saved intermediate, concatenated.
        expected = self.hidden_size * (1 + len(self.intermediate_layers_indices))
        if self.vision_output_dim != expected:
            raise ConfigError(
                f"VisionConfig.vision_output_dim {self.vision_output_dim} != hidden_size "
                f"{self.hidden_size} * (1 + {len(self.intermediate_layers_indices)} "
                f"intermediate layers) = {expected}"
            )

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.attention_heads

    @property
    def grid(self) -> int:
        """Patches along one side of a tile."""
        return self.image_size // self.patch_size

    @property
    def patches_per_tile(self) -> int:
        return self.grid * self.grid

    @property
    def tokens_per_tile(self) -> int:
        """Patches plus the class token."""
        return self.patches_per_tile + 1

    @property
    def padded_tokens_per_tile(self) -> int:
        """HF pads by ``(8 - n % 8) % 8``; Meta's ``8 - n % 8`` agrees whenever n % 8 != 0."""
        return self.tokens_padded_to(TOKEN_PAD_MULTIPLE)

    def tokens_padded_to(self, multiple: int) -> int:
        """A tile's tokens padded to a multiple of ``multiple`` (HF: 8; a device's 32-row
        tiles: 32, as tt-metal pads 1601 to 1632)."""
        n = self.tokens_per_tile
        return n + (multiple - n % multiple) % multiple

    @property
    def encoder_tokens(self) -> int:
        """Sequence length inside the encoder: all tiles, padded, as one sequence."""
        return self.max_num_tiles * self.padded_tokens_per_tile

    @property
    def vision_tokens(self) -> int:
        """Tokens the text model cross-attends to: padding dropped."""
        return self.max_num_tiles * self.tokens_per_tile


def _default_head_dim(cfg: TextConfig) -> int:
    heads = cfg.num_attention_heads
    if not (is_int(cfg.hidden_size) and is_int(heads)) or heads <= 0:
        return 0  # the validators of hidden_size / num_attention_heads report the real problem
    return cfg.hidden_size // heads


def _default_num_embeddings(cfg: TextConfig) -> int:
    if not is_int(cfg.vocab_size):
        return 0  # reported by the vocab_size validator
    return cfg.vocab_size + HF_EMBEDDING_EXTRA_ROWS


@frozen(kw_only=True)
class TextConfig:
    """The Llama 3.1 decoder with gated cross-attention layers interleaved (HF merged order).

    ``num_hidden_layers`` counts self and cross layers together; ``cross_attention_layers`` are
    indices into that merged stack.
    """

    hidden_size: int = _count(1, WIDTH)
    num_hidden_layers: int = _count(1, LAYERS)
    num_attention_heads: int = _count(1, HEADS)
    num_key_value_heads: int = _count(1, HEADS)
    head_dim: int = _count(2, WIDTH, default=Factory(_default_head_dim, takes_self=True))
    intermediate_size: int = _count(1, 4 * WIDTH)
    vocab_size: int = _count(1, VOCAB, default=128256)
    """lm_head rows."""
    num_embeddings: int = _count(
        1,
        VOCAB + HF_EMBEDDING_EXTRA_ROWS,
        default=Factory(_default_num_embeddings, takes_self=True),
    )
    """embed_tokens rows."""
    cross_attention_layers: tuple[int, ...] = field(validator=_int_tuple)
    rms_norm_eps: float = _number(1e-30, 1.0, default=1e-5)
    tie_word_embeddings: bool = field(default=False, validator=_boolean)
    """The lm_head shares the token-embedding table (Llama 3.2 1B and 3B): one parameter set."""
    rope_theta: float = _number(1.0, 1e15, default=500000.0)
    max_position_embeddings: int = _count(1, POSITIONS, default=131072)

    def __attrs_post_init__(self) -> None:
        if self.num_attention_heads % self.num_key_value_heads:
            raise ConfigError(
                f"TextConfig.num_attention_heads {self.num_attention_heads} is not divisible by "
                f"num_key_value_heads {self.num_key_value_heads}"
            )
        if self.head_dim % 2:
            raise ConfigError(
                f"TextConfig.head_dim {self.head_dim} must be even: rotary position embeddings "
                f"rotate pairs of channels"
            )
        if self.hidden_size != self.num_attention_heads * self.head_dim:
            raise ConfigError(
                f"TextConfig.hidden_size {self.hidden_size} != num_attention_heads "
                f"{self.num_attention_heads} * head_dim {self.head_dim}"
            )
        if self.num_embeddings < self.vocab_size:
            raise ConfigError(
                f"TextConfig.num_embeddings {self.num_embeddings} < vocab_size {self.vocab_size}"
            )
        cross = self.cross_attention_layers
        _check_indices("TextConfig", "cross_attention_layers", cross, self.num_hidden_layers)
        if list(cross) != sorted(cross):
            raise ConfigError(f"TextConfig.cross_attention_layers is not sorted: {list(cross)}")

    @property
    def self_attention_layers(self) -> tuple[int, ...]:
        cross = set(self.cross_attention_layers)
        return tuple(i for i in range(self.num_hidden_layers) if i not in cross)

    @property
    def num_self_layers(self) -> int:
        return self.num_hidden_layers - len(self.cross_attention_layers)

    @property
    def num_cross_layers(self) -> int:
        return len(self.cross_attention_layers)


@frozen(kw_only=True)
class ModelConfig:
    """A named checkpoint: its vision encoder (None for a text-only Llama) and its decoder."""

    name: str = field(validator=_non_empty_str)
    vision: VisionConfig | None = field(validator=_optional_instance_of(VisionConfig))
    text: TextConfig = field(validator=_instance_of(TextConfig))

    def __attrs_post_init__(self) -> None:
        if self.vision is None and self.text.cross_attention_layers:
            raise ConfigError(
                "ModelConfig: cross_attention_layers need a vision encoder (a text-only Llama "
                "has none)"
            )


def load_model_config(name_or_path: str | os.PathLike[str]) -> ModelConfig:
    """A preset by name, or a ``.json`` file: HF ``config.json`` or Meta ``params.json``.

    The loaders live in ``lowering.config_loaders``; imported here on use because the presets
    they consult are built from the records above.
    """
    from lowering.config_loaders import load_model_config as load

    return load(name_or_path)
