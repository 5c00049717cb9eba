"""Built-in model configurations for the published Llama 3.2 Vision checkpoints."""

from __future__ import annotations

from lowering.config import ModelConfig, TextConfig, VisionConfig

# Text decoders in HF merged order: a cross-attention layer every 5th index from 3, i.e. one
# before every 4th self layer (Meta's fusion schedule).
TEXT_11B = TextConfig(
    hidden_size=4096,
    num_hidden_layers=32 + 8,
    num_attention_heads=32,
    num_key_value_heads=8,
    intermediate_size=14336,
    cross_attention_layers=tuple(range(3, 40, 5)),
)
TEXT_90B = TextConfig(
    hidden_size=8192,
    num_hidden_layers=80 + 20,
    num_attention_heads=64,
    num_key_value_heads=8,
    intermediate_size=28672,
    cross_attention_layers=tuple(range(3, 100, 5)),
)

# The 11B base checkpoint uses 448-pixel tiles; the Instruct and 90B checkpoints 560.
VISION_448 = VisionConfig(image_size=448)
VISION_560 = VisionConfig(image_size=560)

_CHECKPOINTS = (
    ("llama-3.2-11b-vision", "Llama 3.2 11B Vision (base)", VISION_448, TEXT_11B),
    ("llama-3.2-11b-vision-instruct", "Llama 3.2 11B Vision Instruct", VISION_560, TEXT_11B),
    ("llama-3.2-90b-vision", "Llama 3.2 90B Vision (base)", VISION_560, TEXT_90B),
    ("llama-3.2-90b-vision-instruct", "Llama 3.2 90B Vision Instruct", VISION_560, TEXT_90B),
)

PRESETS: dict[str, ModelConfig] = {
    name: ModelConfig(name=name, vision=vision, text=text) for name, _, vision, text in _CHECKPOINTS
}

PRESET_DESCRIPTIONS: dict[str, str] = {
    name: (
        f"{title}: D={text.hidden_size}, {text.num_self_layers} self + "
        f"{text.num_cross_layers} cross layers, {vision.image_size} px tiles"
    )
    for name, title, vision, text in _CHECKPOINTS
}
"""One line per preset, for ``irperf models``."""


def preset_names() -> tuple[str, ...]:
    """Names of the built-in models, smallest first."""
    return tuple(PRESETS)
