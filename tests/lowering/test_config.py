"""Model configuration records, presets and the HF / Meta loaders."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from irperf.errors import ConfigError, UnknownNameError
from lowering.config import ModelConfig, TextConfig, VisionConfig, load_model_config
from lowering.config_loaders import (
    config_from_hf,
    config_from_meta_params,
    meta_cross_attention_layers,
    meta_ffn_hidden_dim,
)
from lowering.presets import PRESET_DESCRIPTIONS, PRESETS, preset_names

CONFIGS = Path(__file__).resolve().parents[1] / "data" / "configs"

NAMES = (
    "llama-3.2-11b-vision",
    "llama-3.2-11b-vision-instruct",
    "llama-3.2-90b-vision",
    "llama-3.2-90b-vision-instruct",
)
TEXT_ONLY = (
    "llama-3.2-1b",
    "llama-3.2-3b",
    "llama-3.1-8b",
    "llama-3.1-70b",
    "llama-3.3-70b",
    "llama-3.1-405b",
)


def _read(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((CONFIGS / name).read_text())
    return data


# Minimal MllamaConfig dicts with the published values (everything else takes HF defaults).
HF_11B_INSTRUCT: dict[str, Any] = {
    "model_type": "mllama",
    "text_config": {
        "hidden_size": 4096,
        "num_hidden_layers": 40,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "intermediate_size": 14336,
        "vocab_size": 128256,
        "cross_attention_layers": [3, 8, 13, 18, 23, 28, 33, 38],
        "rms_norm_eps": 1e-5,
        "rope_theta": 500000.0,  # transformers 4.x: top level of text_config
        "rope_scaling": {"rope_type": "llama3", "factor": 8.0},
    },
    "vision_config": {
        "image_size": 560,
        "patch_size": 14,
        "hidden_size": 1280,
        "attention_heads": 16,
        "num_hidden_layers": 32,
        "num_global_layers": 8,
        "intermediate_layers_indices": [3, 7, 15, 23, 30],
        "max_num_tiles": 4,
        "supported_aspect_ratios": [[1, 1], [1, 2], [1, 3], [1, 4], [2, 1], [2, 2], [3, 1], [4, 1]],
        "vision_output_dim": 7680,
    },
}

HF_90B: dict[str, Any] = {
    "model_type": "mllama",
    "text_config": {
        "hidden_size": 8192,
        "num_hidden_layers": 100,
        "num_attention_heads": 64,
        "num_key_value_heads": 8,
        "intermediate_size": 28672,
        "vocab_size": 128256,
        "cross_attention_layers": list(range(3, 100, 5)),
        "rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0},  # transformers 5
    },
    "vision_config": {"image_size": 560, "vision_output_dim": 7680},
}


# --- presets and the reference files ---------------------------------------------------------


def test_preset_names_and_descriptions() -> None:
    assert preset_names() == NAMES + TEXT_ONLY
    assert set(PRESET_DESCRIPTIONS) == set(PRESETS)
    assert all(PRESETS[n].name == n for n in NAMES + TEXT_ONLY)
    assert "448 px" in PRESET_DESCRIPTIONS["llama-3.2-11b-vision"]
    assert all("\n" not in d for d in PRESET_DESCRIPTIONS.values())


@pytest.mark.parametrize(
    "filename",
    [
        "llama-3.2-11b-vision.config.json",
        "llama-3.2-11b-vision-instruct.config.json",
        "llama-3.2-90b-vision-instruct.config.json",
        "llama-3.2-11b-vision.params.json",
        "llama-3.2-90b-vision.params.json",
    ],
)
def test_reference_files_load_to_presets(filename: str) -> None:
    preset = PRESETS[filename.split(".json")[0].rsplit(".", 1)[0]]
    assert load_model_config(str(CONFIGS / filename)) == preset


def test_loaders_take_the_name_they_are_given() -> None:
    hf = config_from_hf(_read("llama-3.2-11b-vision.config.json"), "llama-3.2-11b-vision")
    meta = config_from_meta_params(_read("llama-3.2-11b-vision.params.json"), "mine")
    assert hf == PRESETS["llama-3.2-11b-vision"]
    assert meta == attrs.evolve(PRESETS["llama-3.2-11b-vision"], name="mine")


def test_load_model_config_by_preset_name() -> None:
    for name in NAMES:
        assert load_model_config(name) is PRESETS[name]


def test_name_of_a_checkpoint_directory_file(tmp_path: Path) -> None:
    ckpt = tmp_path / "Llama-3.2-90B-Vision"
    (ckpt / "original").mkdir(parents=True)
    (ckpt / "original" / "params.json").write_text(
        (CONFIGS / "llama-3.2-90b-vision.params.json").read_text()
    )
    (ckpt / "config.json").write_text(json.dumps(HF_90B))
    assert load_model_config(str(ckpt / "original" / "params.json")) == PRESETS[ckpt.name.lower()]
    assert load_model_config(str(ckpt / "config.json")) == PRESETS[ckpt.name.lower()]


@pytest.mark.parametrize(
    ("data", "name"),
    [(HF_11B_INSTRUCT, "llama-3.2-11b-vision-instruct"), (HF_90B, "llama-3.2-90b-vision")],
)
def test_published_hf_configs_round_trip(data: dict[str, Any], name: str) -> None:
    assert config_from_hf(data, name) == PRESETS[name]


# --- derived values, written as the formulas of the reference --------------------------------


def test_vision_tokens_at_448() -> None:
    v = PRESETS["llama-3.2-11b-vision"].vision
    assert v.grid == 448 // 14
    assert v.patches_per_tile == (448 // 14) ** 2
    assert v.tokens_per_tile == (448 // 14) ** 2 + 1 == 1025
    assert v.padded_tokens_per_tile == 1025 + 7 == 1032
    assert v.encoder_tokens == 4 * 1032 == 4128
    assert v.vision_tokens == 4 * 1025 == 4100


@pytest.mark.parametrize("name", NAMES[1:])
def test_vision_tokens_at_560(name: str) -> None:
    v = PRESETS[name].vision
    assert v.tokens_per_tile == (560 // 14) ** 2 + 1 == 1601
    assert v.padded_tokens_per_tile == 1601 + 7 == 1608
    assert v.encoder_tokens == 4 * 1608 == 6432
    assert v.vision_tokens == 4 * 1601 == 6404
    assert v.head_dim == 1280 // 16 == 80
    assert v.vision_output_dim == 1280 * (1 + 5)


def test_padding_is_zero_on_a_multiple_of_eight() -> None:
    # 14 * 14 pixels per patch; a 28-pixel tile has 2 * 2 patches + CLS = 5 tokens -> 8.
    assert VisionConfig(image_size=28).padded_tokens_per_tile == 8
    # HF pads (8 - n % 8) % 8: nothing when n is already a multiple of 8 (Meta would add 8).
    v = VisionConfig(image_size=14 * 7, patch_size=14)  # 49 + 1 = 50 tokens -> 56
    assert v.padded_tokens_per_tile == 56


def test_text_11b() -> None:
    t = PRESETS["llama-3.2-11b-vision"].text
    assert t.head_dim == 4096 // 32 == 128
    assert t.cross_attention_layers == tuple(3 + 5 * i for i in range(8))
    assert (t.num_self_layers, t.num_cross_layers) == (32, 8)
    assert t.self_attention_layers == tuple(i for i in range(40) if i % 5 != 3)
    assert (t.vocab_size, t.num_embeddings) == (128256, 128256 + 8)
    assert t.rope_theta == 500000.0


def test_text_90b() -> None:
    t = PRESETS["llama-3.2-90b-vision"].text
    assert t.head_dim == 8192 // 64 == 128
    assert t.cross_attention_layers == tuple(3 + 5 * i for i in range(20))
    assert (t.num_self_layers, t.num_cross_layers) == (80, 20)
    assert len(t.self_attention_layers) == 80


def test_meta_ffn_formula() -> None:
    # int(2 * 4D / 3) -> int(1.3 * that) -> round up to multiple_of.
    assert int(1.3 * int(2 * 4 * 4096 / 3)) == 14198
    assert meta_ffn_hidden_dim(4096, 1024, 1.3) == math.ceil(14198 / 1024) * 1024 == 14336
    assert int(1.3 * int(2 * 4 * 8192 / 3)) == 28398
    assert meta_ffn_hidden_dim(8192, 4096, 1.3) == math.ceil(28398 / 4096) * 4096 == 28672
    assert meta_ffn_hidden_dim(4096, 256, None) == 11008  # Llama 2 7B


def test_meta_fusion_schedule() -> None:
    # Self layers 3, 7, ..., 31 (every 4th from the end); cross i sits before self layer 4i + 3.
    assert meta_cross_attention_layers(32, 8) == tuple(4 * i + 3 + i for i in range(8))
    assert meta_cross_attention_layers(80, 20) == tuple(4 * i + 3 + i for i in range(20))


@given(st.integers(1, 160).flatmap(lambda n: st.tuples(st.just(n), st.integers(1, n))))
def test_fusion_schedule_properties(layers: tuple[int, int]) -> None:
    n_self, n_cross = layers
    cross = meta_cross_attention_layers(n_self, n_cross)
    assert len(set(cross)) == len(cross) <= n_cross
    if n_self % n_cross == 0:
        assert len(cross) == n_cross
    assert list(cross) == sorted(cross)
    # The last self layer always runs after every cross layer.
    assert cross[0] >= 0
    assert cross[-1] < n_self + len(cross) - 1


# --- records reject bad values -----------------------------------------------------------------


def test_records_are_frozen_and_keyword_only() -> None:
    cfg = PRESETS["llama-3.2-11b-vision"]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        cfg.vision.image_size = 560  # type: ignore[misc]
    with pytest.raises(TypeError):
        VisionConfig(448)  # type: ignore[call-arg]
    instruct = "llama-3.2-11b-vision-instruct"
    assert hash(PRESETS[instruct]) == hash(config_from_hf(HF_11B_INSTRUCT, instruct))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"image_size": 450}, r"image_size 450 is not a multiple of patch_size 14"),
        (
            {"hidden_size": -1280},
            r"VisionConfig\.hidden_size must be an integer from 1 to 65,536, got -1280",
        ),
        ({"attention_heads": 3}, r"hidden_size 1280 is not divisible by attention_heads 3"),
        ({"intermediate_layers_indices": (3, 3)}, r"repeated indices"),
        ({"intermediate_layers_indices": (3, 32)}, r"\[32\] outside \[0, 32\)"),
        ({"vision_output_dim": 6400}, r"vision_output_dim 6400 != hidden_size 1280"),
        ({"norm_eps": 0.0}, r"norm_eps must be a number from 1e-30 to 1, got 0.0"),
        ({"max_num_tiles": True}, r"max_num_tiles must be an integer from 1 to 64, got True"),
        ({"intermediate_layers_indices": [3]}, r"must be a tuple of integers"),
    ],
)
def test_vision_config_errors(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        attrs.evolve(PRESETS["llama-3.2-11b-vision"].vision, **change)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"hidden_size": -4096},
            r"TextConfig\.hidden_size must be an integer from 1 to 65,536, got -4096",
        ),
        ({"num_key_value_heads": 6}, r"num_attention_heads 32 is not divisible by .* 6"),
        ({"head_dim": 64}, r"hidden_size 4096 != num_attention_heads 32 \* head_dim 64"),
        ({"cross_attention_layers": (8, 3)}, r"not sorted: \[8, 3\]"),
        ({"cross_attention_layers": (3, 3)}, r"repeated indices"),
        ({"cross_attention_layers": (3, 40)}, r"\[40\] outside \[0, 40\)"),
        ({"num_embeddings": 100}, r"num_embeddings 100 < vocab_size 128256"),
        ({"rope_theta": float("nan")}, r"rope_theta must be a number from 1 to 1e\+15, got nan"),
    ],
)
def test_text_config_errors(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        attrs.evolve(PRESETS["llama-3.2-11b-vision"].text, **change)


def test_head_dim_default_with_bad_heads_reports_heads() -> None:
    with pytest.raises(
        ConfigError, match=r"num_attention_heads must be an integer from 1 to 1,024"
    ):
        TextConfig(
            hidden_size=4096,
            num_hidden_layers=40,
            num_attention_heads=0,
            num_key_value_heads=8,
            intermediate_size=14336,
            cross_attention_layers=(3,),
        )


def test_model_config_checks_its_parts() -> None:
    with pytest.raises(ConfigError, match=r"ModelConfig\.name must be a non-empty string"):
        attrs.evolve(PRESETS["llama-3.2-11b-vision"], name="")
    with pytest.raises(ConfigError, match=r"ModelConfig\.vision must be a VisionConfig"):
        ModelConfig(name="x", vision="vision", text=HF_90B)  # type: ignore[arg-type]
    text_90b = PRESETS["llama-3.2-90b-vision"].text
    with pytest.raises(ConfigError, match="cross_attention_layers need a vision encoder"):
        ModelConfig(name="x", vision=None, text=text_90b)


# --- loaders reject bad input --------------------------------------------------------------------


def _hf_with(section: str, key: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(HF_11B_INSTRUCT)
    if value is None:
        del data[section][key]
    else:
        data[section][key] = value
    return data


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("text_config", "hidden_size", None, r"^text_config\.hidden_size missing in m$"),
        ("vision_config", "image_size", None, r"vision_config\.image_size missing in m"),
        (
            "text_config",
            "hidden_size",
            -4096,
            r"text_config\.hidden_size must be an integer from 1 to 65,536, got -4096 in ",
        ),
        ("text_config", "num_key_value_heads", 6, r"not divisible by num_key_value_heads 6 in m"),
        ("text_config", "num_attention_heads", 24, r"hidden_size 4096 != num_attention_heads 24"),
        ("vision_config", "image_size", 450, r"image_size 450 is not a multiple of patch_size"),
        ("vision_config", "vision_output_dim", 6400, r"vision_output_dim 6400 != hidden_size"),
        ("vision_config", "supported_aspect_ratios", [], r"supported_aspect_ratios must be a non"),
        ("text_config", "cross_attention_layers", "3,8", r"must be a list of layer indices"),
        ("text_config", "rope_parameters", {"rope_theta": 10000.0}, r"contradictory rope_theta"),
        ("text_config", "rope_scaling", [1], r"text_config\.rope_scaling must be a JSON object"),
    ],
)
def test_hf_errors(section: str, key: str, value: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_hf(_hf_with(section, key, value), "m")


def test_hf_missing_section() -> None:
    with pytest.raises(ConfigError, match=r"^vision_config missing in m$"):
        config_from_hf({"text_config": HF_90B["text_config"]}, "m")


def test_hf_optional_fields_are_read() -> None:
    data = _hf_with("vision_config", "supported_aspect_ratios", [[1, 1], [2, 2]])
    assert config_from_hf(data, "m").vision.num_aspect_ratios == 2
    data = _hf_with("text_config", "rope_theta", None)
    assert config_from_hf(data, "m").text.rope_theta == 500000.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"dim": None}, r"^dim missing in m$"),
        (
            {"vision_chunk_size": 450},
            r"vision_chunk_size 450 is not a multiple of the encoder's patch size 14 in m",
        ),
        ({"n_kv_heads": 5}, r"n_heads 32 is not divisible by n_kv_heads 5"),
        ({"vision_num_cross_attention_layers": 33}, r"33 exceeds n_layers 32"),
        ({"n_layers": 4, "vision_num_cross_attention_layers": 3}, r"places only 2 in m"),
        (
            {"ffn_dim_multiplier": 1e308},
            r"ffn_dim_multiplier must be a number from 0.001 to 1000, got 1e\+308",
        ),
        (
            {"dim": 10**400},
            r"dim must be an integer from 1 to 65,536, got an integer of 401 digits",
        ),
    ],
)
def test_meta_errors(change: dict[str, Any], message: str) -> None:
    data = {**_read("llama-3.2-11b-vision.params.json"), **change}
    data = {k: v for k, v in data.items() if v is not None}
    with pytest.raises(ConfigError, match=message):
        config_from_meta_params(data, "m")


def test_malformed_json_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"dim": 4096,\n "n_layers": }')
    with pytest.raises(ConfigError, match=r"bad\.json: malformed JSON at line 2 column 14"):
        load_model_config(str(path))


def test_json_list_file(tmp_path: Path) -> None:
    path = tmp_path / "list.json"
    path.write_text("[1, 2]")
    with pytest.raises(ConfigError, match=r"list\.json: expected a JSON object .* got an array"):
        load_model_config(str(path))


def test_json_of_unknown_shape(tmp_path: Path) -> None:
    path = tmp_path / "other.json"
    path.write_text('{"name": "llama"}')
    with pytest.raises(ConfigError, match=r"neither a Hugging Face config.json"):
        load_model_config(str(path))
    path.write_text('{"model_type": "gpt2", "n_embd": 768}')  # another architecture, by name
    with pytest.raises(ConfigError, match=r"architecture 'gpt2' is not supported"):
        load_model_config(str(path))
    path.write_text('{"model_type": "llama"}')  # a Llama config missing what it must hold
    with pytest.raises(ConfigError, match=r"hidden_size missing"):
        load_model_config(str(path))


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"not found: .*nope\.json"):
        load_model_config(str(tmp_path / "nope.json"))
    with pytest.raises(ConfigError, match=r"is a directory"):
        load_model_config(str(tmp_path))


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.json"
    path.write_bytes(b'{"dim": "\xff"}')
    with pytest.raises(ConfigError, match=r"not UTF-8"):
        load_model_config(str(path))


def test_unknown_preset_lists_valid_names() -> None:
    with pytest.raises(UnknownNameError, match=r"unknown model 'llama-3.2-11b'") as info:
        load_model_config("llama-3.2-11b")
    assert all(name in str(info.value) for name in NAMES)


# Any JSON value in any field either loads or fails as one ConfigError, never a raw exception.
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)


@given(st.sampled_from(["text_config", "vision_config"]), st.data())
def test_hf_fuzz_only_config_errors(section: str, data: st.DataObject) -> None:
    key = data.draw(st.sampled_from(sorted(HF_11B_INSTRUCT[section])))
    value = data.draw(_JSON)
    doc = copy.deepcopy(HF_11B_INSTRUCT)
    doc[section][key] = value
    try:
        config_from_hf(doc, "fuzz")
    except ConfigError as e:
        assert "\n" not in str(e)


@given(st.data())
def test_meta_fuzz_only_config_errors(data: st.DataObject) -> None:
    doc = _read("llama-3.2-11b-vision.params.json")
    doc[data.draw(st.sampled_from(sorted(doc)))] = data.draw(_JSON)
    try:
        config_from_meta_params(doc, "fuzz")
    except ConfigError as e:
        assert "\n" not in str(e)


def test_a_file_with_both_hf_and_meta_fields_is_ambiguous(tmp_path: Path) -> None:
    data = json.loads((CONFIGS / "llama-3.2-11b-vision.config.json").read_text())
    data.update({"dim": 8192, "n_layers": 80})
    path = tmp_path / "both.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="both Hugging Face .* and Meta"):
        load_model_config(str(path))
