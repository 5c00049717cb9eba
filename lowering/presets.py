"""Built-in model configurations: the published Llama 3.2 Vision checkpoints, and the common
text-only Llama checkpoints (their Hugging Face ``config.json`` values)."""

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


def _llama(
    d: int, layers: int, heads: int, ffn: int, *, tied: bool = False, head_dim: int | None = None
) -> TextConfig:
    """A LlamaForCausalLM decoder: 8 KV heads and a 128,256-token vocabulary, as every Llama 3
    checkpoint has; no cross-attention layers."""
    return TextConfig(
        hidden_size=d,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=8,
        head_dim=head_dim or d // heads,
        intermediate_size=ffn,
        vocab_size=128256,
        num_embeddings=128256,
        cross_attention_layers=(),
        tie_word_embeddings=tied,
    )


_TEXT_ONLY = (
    ("llama-3.2-1b", "Llama 3.2 1B", _llama(2048, 16, 32, 8192, tied=True, head_dim=64)),
    ("llama-3.2-3b", "Llama 3.2 3B", _llama(3072, 28, 24, 8192, tied=True, head_dim=128)),
    ("llama-3.1-8b", "Llama 3.1 8B", _llama(4096, 32, 32, 14336)),
    ("llama-3.1-70b", "Llama 3.1 70B", _llama(8192, 80, 64, 28672)),
    ("llama-3.3-70b", "Llama 3.3 70B", _llama(8192, 80, 64, 28672)),
    ("llama-3.1-405b", "Llama 3.1 405B", _llama(16384, 126, 128, 53248)),
)

PRESETS: dict[str, ModelConfig] = {
    name: ModelConfig(name=name, vision=vision, text=text) for name, _, vision, text in _CHECKPOINTS
}
PRESETS.update(
    {name: ModelConfig(name=name, vision=None, text=text) for name, _, text in _TEXT_ONLY}
)

PRESET_DESCRIPTIONS: dict[str, str] = {
    name: (
        f"{title}: D={text.hidden_size}, {text.num_self_layers} self + "
        f"{text.num_cross_layers} cross layers, {vision.image_size} px tiles"
    )
    for name, title, vision, text in _CHECKPOINTS
}
PRESET_DESCRIPTIONS.update(
    {
        name: f"{title} (text only): D={text.hidden_size}, {text.num_hidden_layers} layers"
        + (", lm_head tied to the embeddings" if text.tie_word_embeddings else "")
        for name, title, text in _TEXT_ONLY
    }
)
"""One line per preset, for ``irperf models``."""


def preset_names() -> tuple[str, ...]:
    """Names of the built-in models: the Vision checkpoints, then the text-only ones."""
    return tuple(PRESETS)
