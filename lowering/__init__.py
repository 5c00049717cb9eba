"""Lowering: model configurations and the functions that build their graphs."""

from lowering.config import ModelConfig, TextConfig, VisionConfig, load_model_config
from lowering.model import PARTS, lower
from lowering.presets import PRESETS, preset_names

__all__ = [
    "PARTS",
    "PRESETS",
    "ModelConfig",
    "TextConfig",
    "VisionConfig",
    "load_model_config",
    "lower",
    "preset_names",
]
