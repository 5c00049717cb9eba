"""Model configurations from a preset name, a Hugging Face config.json or a Meta params.json."""

from __future__ import annotations

import difflib
import json
import math
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from attrs import frozen

from irperf.checks import ECHO_CHARS, in_range, input_file_problem, range_text, show
from irperf.errors import ConfigError, UnknownNameError
from lowering.config import WIDTH, ModelConfig, TextConfig, VisionConfig, field_range
from lowering.presets import PRESETS, preset_names

_R = TypeVar("_R")

META_DEFAULT_MULTIPLE_OF = 256
"""llama-models ``ModelArgs.multiple_of`` when params.json leaves it out."""


def _tile_layout(ratio: object) -> bool:
    """A ``[width, height]`` pair of tile counts."""
    return (
        isinstance(ratio, list)
        and len(ratio) == 2
        and all(in_range(x, 1, 64, integer=True) for x in ratio)
    )


@frozen
class _Fields:
    """Typed access to one JSON object; errors name the dotted key and the source."""

    data: Mapping[str, object]
    prefix: str
    source: str

    def error(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.prefix}{key} {problem} in {self.source}")

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None  # JSON null counts as absent

    def section(self, key: str) -> _Fields:
        value = self.data.get(key)
        if value is None:
            raise self.error(key, "missing")
        if not isinstance(value, Mapping):
            raise self.error(key, f"must be a JSON object, got {show(value)}")
        return _Fields(value, f"{self.prefix}{key}.", self.source)

    def integer(self, key: str, record: type, name: str | None = None) -> int:
        """An integer in the declared range of ``record``'s field ``name`` (default: ``key``)."""
        lo, hi = field_range(record, name or key)
        return int(self.number_in(key, lo, hi, integer=True))

    def number(self, key: str, record: type, name: str | None = None) -> float:
        """A number in the declared range of ``record``'s field ``name`` (default: ``key``)."""
        lo, hi = field_range(record, name or key)
        return float(self.number_in(key, lo, hi, integer=False))

    def number_in(self, key: str, lo: float, hi: float, *, integer: bool) -> int | float:
        value = self.data.get(key)
        if value is None:
            raise self.error(key, "missing")
        if not in_range(value, lo, hi, integer=integer):
            raise self.error(key, f"must be {range_text(lo, hi, integer)}, got {show(value)}")
        return value  # type: ignore[return-value]

    def indices(self, key: str) -> tuple[int, ...]:
        value = self.data.get(key)
        if value is None:
            raise self.error(key, "missing")
        if not isinstance(value, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in value
        ):
            raise self.error(key, f"must be a list of layer indices, got {show(value)}")
        return tuple(value)

    def aspect_ratios(self, key: str) -> int:
        """How many ``[width, height]`` tile layouts HF ``supported_aspect_ratios`` lists."""
        value = self.data.get(key)
        if not isinstance(value, list) or not value or not all(_tile_layout(r) for r in value):
            raise self.error(
                key, f"must be a non-empty list of [width, height] tile counts, got {show(value)}"
            )
        return len(value)

    def check_keys(self, read: tuple[str, ...], strict: tuple[str, ...] | None = None) -> None:
        """A key that is a near miss of one irperf reads (``n_kv_head``) is a typo, not an extra:
        silently taking the default would change the answer. ``strict``: the only other keys
        this section may hold."""
        missing = [k for k in read if k not in self.data]
        for key in self.data:
            if key in read or (strict is not None and key in strict):
                continue
            close = difflib.get_close_matches(key, missing, n=1, cutoff=0.8)
            if close:
                raise self.error(key, f"is not a key irperf reads; did you mean {close[0]!r}?")
            if strict is not None:
                raise self.error(key, f"is not a key irperf reads; it reads {', '.join(read)}")

    def refuse(self, key: str, value: object, modelled: str) -> None:
        """A value that changes the architecture irperf lowers is an error, never ignored."""
        if self.has(key) and self.data.get(key) != value:
            raise self.error(key, f"{show(self.data.get(key))} is not modelled: {modelled}")


HF_VISION_INTS = (
    "patch_size",
    "num_channels",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_global_layers",
    "attention_heads",
    "max_num_tiles",
    "vision_output_dim",
)
"""vision_config's optional integer keys, each a VisionConfig field of the same name."""
HF_VISION_READ = (
    "image_size",
    *HF_VISION_INTS,
    "norm_eps",
    "intermediate_layers_indices",
    "supported_aspect_ratios",
    "hidden_act",
)
HF_TEXT_REQUIRED = (
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "intermediate_size",
)
HF_TEXT_INTS = ("head_dim", "vocab_size", "max_position_embeddings")
"""text_config's optional integer keys."""
HF_TEXT_READ = (
    *HF_TEXT_REQUIRED,
    "cross_attention_layers",
    *HF_TEXT_INTS,
    "rms_norm_eps",
    "rope_theta",
    "rope_parameters",
    "rope_scaling",
    "hidden_act",
    "tie_word_embeddings",
)
"""The keys of a config.json's sections that irperf reads; the many others (token ids, label
maps, dtypes) change no cost."""
META_READ = (
    "dim",
    "n_layers",
    "n_heads",
    "n_kv_heads",
    "vocab_size",
    "multiple_of",
    "ffn_dim_multiplier",
    "norm_eps",
    "rope_theta",
    "vision_chunk_size",
    "vision_max_num_chunks",
    "vision_num_cross_attention_layers",
)
META_IGNORED = ("use_scaled_rope", "max_batch_size", "max_seq_len", "model_parallel_size")
"""llama-models ``ModelArgs`` fields a params.json may hold that change no cost (``max_seq_len``
bounds the positions a request may use, as HF's ``max_position_embeddings``)."""

HF_KEYS = {"VisionConfig.": "vision_config.", "TextConfig.": "text_config."}
META_NAMES = {
    "hidden_size": "dim",
    "num_attention_heads": "n_heads",
    "num_key_value_heads": "n_kv_heads",
    "num_hidden_layers": "n_layers + vision_num_cross_attention_layers",
    "head_dim": "head_dim (dim / n_heads)",
    "intermediate_size": "the FFN width (from dim, multiple_of and ffn_dim_multiplier)",
    "rms_norm_eps": "norm_eps",
    "image_size": "vision_chunk_size",
    "max_num_tiles": "vision_max_num_chunks",
    "patch_size": "the encoder's patch size",
}
"""What a record's field is in a params.json, for messages: its key, or how it is derived."""
"""A record's field is the same-named key of these sections of an HF config.json."""


def _build(
    source: str, make: Callable[..., _R], kwargs: Mapping[str, Any], keys: Mapping[str, str]
) -> _R:
    """Construct a record; a failed consistency check names the file and, through ``keys``,
    the file's own names for the record's fields."""
    try:
        return make(**kwargs)
    except ConfigError as e:
        message = str(e)
        for name, key in keys.items():
            if name.endswith("."):  # a record prefix
                message = message.replace(name, key)
            else:  # a field, prefixed or not
                message = re.sub(rf"\b((?:Text|Vision)Config\.)?{name}\b", key, message)
        message = (
            re.sub(r"\b(?:Text|Vision)Config\.", "", message) if keys is META_NAMES else message
        )
        raise ConfigError(f"{message} in {source}") from None


def _hf_rope_theta(text: _Fields) -> float | None:
    """``rope_theta`` sits in ``rope_parameters`` (transformers >= 5) or directly in text_config."""
    places = [text] + [text.section(k) for k in ("rope_parameters", "rope_scaling") if text.has(k)]
    found = {
        f.prefix + "rope_theta": f.number("rope_theta", TextConfig)
        for f in places
        if f.has("rope_theta")
    }
    if len(set(found.values())) > 1:
        clash = " vs ".join(f"{key} = {theta}" for key, theta in found.items())
        raise ConfigError(f"contradictory rope_theta: {clash} in {text.source}")
    return next(iter(found.values()), None)


def _hf_text(t: _Fields) -> dict[str, Any]:
    """A decoder's TextConfig fields from an HF text section (Mllama's ``text_config``, or a
    LlamaConfig's top level): the required sizes, the optional ones, eps and rope theta."""
    text: dict[str, Any] = {key: t.integer(key, TextConfig) for key in HF_TEXT_REQUIRED}
    for key in HF_TEXT_INTS:
        if t.has(key):
            text[key] = t.integer(key, TextConfig)
    if t.has("rms_norm_eps"):
        text["rms_norm_eps"] = t.number("rms_norm_eps", TextConfig)
    rope_theta = _hf_rope_theta(t)
    if rope_theta is not None:
        text["rope_theta"] = rope_theta
    return text


LLAMA_ARCHITECTURES = ("LlamaForCausalLM",)
"""Text-only Hugging Face architectures irperf lowers (``model_type`` ``llama``)."""
HF_LLAMA_READ = (
    *HF_TEXT_READ,
    "architectures",
    "model_type",
    "attention_bias",
    "mlp_bias",
    "pretraining_tp",
)


def config_from_hf_llama(
    data: Mapping[str, object], name: str, *, source: str | None = None
) -> ModelConfig:
    """A text-only ModelConfig from a Hugging Face ``LlamaConfig`` (``config.json``) object:
    Llama 3.1 8B / 70B / 405B, 3.2 1B / 3B, 3.3 70B and the like."""
    src = source or name
    t = _Fields(data, "", src)
    t.check_keys(HF_LLAMA_READ)
    t.refuse("hidden_act", "silu", "the decoder's MLP is SwiGLU (silu)")
    t.refuse("attention_bias", False, "Llama's attention projections have no bias")
    t.refuse("mlp_bias", False, "Llama's MLP projections have no bias")
    tied = data.get("tie_word_embeddings", False)
    if not isinstance(tied, bool):
        raise t.error("tie_word_embeddings", f"must be true or false, got {show(tied)}")
    text = _hf_text(t)
    text["vocab_size"] = text.get("vocab_size", 32000)  # LlamaConfig's default
    text["num_embeddings"] = text["vocab_size"]  # no extra rows: one table, V rows
    text["cross_attention_layers"] = ()
    text["tie_word_embeddings"] = tied
    return ModelConfig(name=name, vision=None, text=_build(src, TextConfig, text, {}))


def architecture_of(data: Mapping[str, object]) -> str | None:
    """The HF architecture a config.json names (its first ``architectures`` entry, else its
    ``model_type``), or None."""
    names = data.get("architectures")
    if isinstance(names, list) and names and isinstance(names[0], str):
        return names[0]
    kind = data.get("model_type")
    return kind if isinstance(kind, str) else None


def config_from_hf(
    data: Mapping[str, object], name: str, *, source: str | None = None
) -> ModelConfig:
    """A ModelConfig from a Hugging Face ``MllamaConfig`` (``config.json``) object.

    Absent optional keys take the HF defaults, which the record defaults equal.
    """
    src = source or name
    if not isinstance(data, Mapping):
        raise ConfigError(f"expected a JSON object, got {type(data).__name__} in {src}")
    root = _Fields(data, "", src)
    v, t = root.section("vision_config"), root.section("text_config")
    root.check_keys(("vision_config", "text_config", "tie_word_embeddings"))
    v.check_keys(HF_VISION_READ)
    t.check_keys(HF_TEXT_READ)
    untied = "irperf lowers Llama 3.2 Vision's own lm_head, not tied to the embeddings"
    root.refuse("tie_word_embeddings", False, untied)
    t.refuse("tie_word_embeddings", False, untied)
    t.refuse("hidden_act", "silu", "the decoder's MLP is SwiGLU (silu)")
    v.refuse("hidden_act", "gelu", "the encoder's MLP is GELU")

    vision: dict[str, Any] = {"image_size": v.integer("image_size", VisionConfig)}
    for key in HF_VISION_INTS:
        if v.has(key):
            vision[key] = v.integer(key, VisionConfig)
    if v.has("norm_eps"):
        vision["norm_eps"] = v.number("norm_eps", VisionConfig)
    if v.has("intermediate_layers_indices"):
        vision["intermediate_layers_indices"] = v.indices("intermediate_layers_indices")
    if v.has("supported_aspect_ratios"):
        vision["num_aspect_ratios"] = v.aspect_ratios("supported_aspect_ratios")

    text = _hf_text(t)
    text["cross_attention_layers"] = t.indices("cross_attention_layers")

    return ModelConfig(
        name=name,
        vision=_build(src, VisionConfig, vision, HF_KEYS),
        text=_build(src, TextConfig, text, HF_KEYS),
    )


def meta_ffn_hidden_dim(dim: int, multiple_of: int, ffn_dim_multiplier: float | None) -> int:
    """SwiGLU width as llama-models computes it: 2/3 of 4·dim, scaled, rounded up."""
    hidden = 8 * dim // 3  # int(2 * (4 * dim) / 3) without float rounding
    if ffn_dim_multiplier is not None:
        hidden = int(ffn_dim_multiplier * hidden)
    return multiple_of * -(-hidden // multiple_of)


def meta_cross_attention_layers(num_self_layers: int, num_cross_layers: int) -> tuple[int, ...]:
    """HF merged indices of the cross-attention layers of a Meta checkpoint.

    llama-models' ``_init_fusion_schedule`` picks every k-th self layer counting from the last,
    k = ceil(L / K) (fewer than K when that overshoots); a cross layer runs before the self layer
    it is attached to, so the i-th cross layer lands at merged index ``self_index + i``.
    """
    k = math.ceil(num_self_layers / num_cross_layers)
    schedule = list(range(num_self_layers))[::-1][::k][:num_cross_layers][::-1]
    return tuple(index + i for i, index in enumerate(schedule))


def config_from_meta_params(
    data: Mapping[str, object], name: str, *, source: str | None = None
) -> ModelConfig:
    """A ModelConfig from a Meta ``params.json``; vision hyperparameters not in it take defaults."""
    src = source or name
    if not isinstance(data, Mapping):
        raise ConfigError(f"expected a JSON object, got {type(data).__name__} in {src}")
    p = _Fields(data, "", src)
    p.check_keys(META_READ, META_IGNORED)
    n_layers = p.integer("n_layers", TextConfig, "num_hidden_layers")
    n_cross = p.integer("vision_num_cross_attention_layers", TextConfig, "num_hidden_layers")
    if n_cross > n_layers:
        raise ConfigError(
            f"vision_num_cross_attention_layers {n_cross} exceeds n_layers {n_layers} in {src}"
        )
    cross = meta_cross_attention_layers(n_layers, n_cross)
    if len(cross) != n_cross:  # llama-models would build the rest and never run them
        raise ConfigError(
            f"vision_num_cross_attention_layers {n_cross} does not fit n_layers {n_layers}: "
            f"the fusion schedule places only {len(cross)} in {src}"
        )
    dim = p.integer("dim", TextConfig, "hidden_size")
    n_heads = p.integer("n_heads", TextConfig, "num_attention_heads")
    multiple_of = (
        int(p.number_in("multiple_of", 1, WIDTH, integer=True))
        if p.has("multiple_of")
        else META_DEFAULT_MULTIPLE_OF
    )
    multiplier = (
        float(p.number_in("ffn_dim_multiplier", 1e-3, 1e3, integer=False))
        if p.has("ffn_dim_multiplier")
        else None
    )
    try:
        ffn = meta_ffn_hidden_dim(dim, multiple_of, multiplier)
    except OverflowError:
        raise p.error("ffn_dim_multiplier", f"{multiplier} times the FFN width overflows") from None

    text: dict[str, Any] = {
        "hidden_size": dim,
        "num_hidden_layers": n_layers + n_cross,
        "num_attention_heads": n_heads,
        "num_key_value_heads": (
            p.integer("n_kv_heads", TextConfig, "num_key_value_heads")
            if p.has("n_kv_heads")
            else n_heads
        ),
        "intermediate_size": ffn,
        "vocab_size": p.integer("vocab_size", TextConfig),
        "cross_attention_layers": cross,
    }
    if p.has("max_seq_len"):  # llama-models' longest sequence: the positions a request may use
        text["max_position_embeddings"] = p.integer(
            "max_seq_len", TextConfig, "max_position_embeddings"
        )
    for key, field_name in (("norm_eps", "rms_norm_eps"), ("rope_theta", "rope_theta")):
        if p.has(key):
            text[field_name] = p.number(key, TextConfig, field_name)
    vision: dict[str, Any] = {
        "image_size": p.integer("vision_chunk_size", VisionConfig, "image_size")
    }
    if p.has("vision_max_num_chunks"):
        vision["max_num_tiles"] = p.integer("vision_max_num_chunks", VisionConfig, "max_num_tiles")

    return ModelConfig(
        name=name,
        vision=_build(src, VisionConfig, vision, META_NAMES),
        text=_build(src, TextConfig, text, META_NAMES),
    )


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


def json_kind(value: object) -> str:
    """What a JSON value is, in words: ``null``, ``an array``, ``a number``..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    kinds: dict[type, str] = {dict: "an object", list: "an array", str: "a string"}
    return kinds.get(type(value), "a number")


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """A JSON object whose keys are unique: a key given twice contradicts itself."""
    out: dict[str, object] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"key {show(key)} is given twice")
        out[key] = value
    return out


def _read_json_object(path: Path, shown: str) -> Mapping[str, object]:
    problem = input_file_problem(path)
    if problem is not None:
        raise ConfigError(f"model config {problem}")
    try:
        data = json.loads(
            path.read_text(encoding="utf-8"),
            parse_constant=_reject_constant,
            object_pairs_hook=_unique_keys,
        )
    except FileNotFoundError:
        raise ConfigError(f"model config file not found: {shown}") from None
    except IsADirectoryError:
        raise ConfigError(f"model config path is a directory, not a JSON file: {shown}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{shown}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise ConfigError(f"cannot read model config {shown}: {e.strerror or e}") from None
    except json.JSONDecodeError as e:
        raise ConfigError(
            f"{shown}: malformed JSON at line {e.lineno} column {e.colno}: {e.msg}"
        ) from None
    except RecursionError:
        raise ConfigError(f"{shown}: JSON nested too deeply") from None
    except ValueError as e:  # NaN, a repeated key, an integer longer than Python converts
        raise ConfigError(f"{shown}: malformed JSON: {show(str(e))[1:-1]}") from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"{shown}: expected a JSON object at the top level, got {json_kind(data)}"
        )
    return data


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # a name too long for the file system is no file
        return False


def _name_from_path(path: Path) -> str:
    """``llama-3.2-11b-vision.config.json`` -> its stem; ``Ckpt/[original/]config.json`` -> Ckpt."""
    stem = path.name.removesuffix(".json").removesuffix(".config").removesuffix(".params")
    if stem in ("config", "params"):
        parent = path.resolve().parent
        if parent.name == "original":  # Meta weights live in <checkpoint>/original/
            parent = parent.parent
        stem = parent.name or stem
    # a file name that is not UTF-8 holds lone surrogates: not text any JSON reader takes
    return stem.encode("utf-8", "surrogateescape").decode("utf-8", "replace").lower()


def _names(text: str = "") -> str:
    """Every preset, compactly (text-only Llamas by family: ``llama-3.1-8b/70b/405b``), and the
    nearest name to ``text``."""
    names = preset_names()
    close = difflib.get_close_matches(text.lower(), names, n=1, cutoff=0.6) if text else []
    families: dict[str, list[str]] = {}
    shown = []
    for n in names:
        if PRESETS[n].vision is not None:
            shown.append(n)
        else:
            family, size = n.rsplit("-", 1)
            if family not in families:
                families[family] = []
                shown.append(family)
            families[family].append(size)
    listed = ", ".join(f"{n}-{'/'.join(families[n])}" if n in families else n for n in shown)
    return (f"did you mean {close[0]!r}? " if close else "") + listed


def load_model_config(name_or_path: str | os.PathLike[str]) -> ModelConfig:
    """A preset by name (in any case), or a ``.json`` file: HF ``config.json`` or Meta
    ``params.json`` (a ``str`` or ``os.PathLike`` path)."""
    if not isinstance(name_or_path, str | os.PathLike):
        raise ConfigError(
            f"a model is a preset name, a config path or a ModelConfig, got {show(name_or_path)}"
        )
    text = os.fspath(name_or_path)
    if "\x00" in text:
        raise ConfigError(f"the model path {show(text)} holds a NUL character")
    if not text.strip():
        raise UnknownNameError(
            f"a model name must not be empty; valid names: {_names()} "
            "(or a path to a config.json / params.json file)"
        )
    if not isinstance(name_or_path, os.PathLike) and text.lower() in PRESETS:
        return PRESETS[text.lower()]
    path = Path(text)
    if not (
        isinstance(name_or_path, os.PathLike)
        or text.endswith(".json")
        or os.sep in text
        or "/" in text
        or _is_file(path)
    ):
        raise UnknownNameError(
            f"unknown model {show(text)}; valid names: {_names(text[:200])} "
            "(or a config.json / params.json path)"
        )
    shown = show(text)[1:-1] if len(text) > ECHO_CHARS else text
    data = _read_json_object(path, shown)
    name = _name_from_path(path)
    hf = "text_config" in data or "vision_config" in data
    meta = "dim" in data or "n_layers" in data
    if hf and meta:
        raise ConfigError(
            f"{shown}: holds both Hugging Face (text_config, vision_config) and Meta (dim, "
            "n_layers) fields; which one describes the model is ambiguous"
        )
    if hf:
        return config_from_hf(data, name, source=shown)
    arch = architecture_of(data)
    if arch is not None:
        if arch in LLAMA_ARCHITECTURES or data.get("model_type") == "llama":
            return config_from_hf_llama(data, name, source=shown)
        raise ConfigError(
            f"{shown}: architecture {show(arch)} is not supported; irperf lowers "
            f"MllamaForConditionalGeneration and {', '.join(LLAMA_ARCHITECTURES)}"
        )
    if "dim" in data and "n_layers" in data:
        return config_from_meta_params(data, name, source=shown)
    raise ConfigError(
        f"{shown}: neither a Hugging Face config.json (MllamaConfig: text_config, "
        "vision_config; LlamaConfig: architectures, model_type) nor a Meta params.json (dim, "
        "n_layers)"
    )
