"""Text-only Llamas (LlamaForCausalLM): parameters exact by formula, configs written here, the
whole pipeline on them, and the errors a text-only model gives."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import irperf
from irperf.cli import main
from irperf.errors import ConfigError
from lowering import load_model_config
from passes.params import ParamCount

# name: (D, layers, heads, KV heads, head_dim, FFN, tied), as each checkpoint's config.json says
LLAMAS = {
    "llama-3.2-1b": (2048, 16, 32, 8, 64, 8192, True),
    "llama-3.2-3b": (3072, 28, 24, 8, 128, 8192, True),
    "llama-3.1-8b": (4096, 32, 32, 8, 128, 14336, False),
    "llama-3.1-70b": (8192, 80, 64, 8, 128, 28672, False),
    "llama-3.3-70b": (8192, 80, 64, 8, 128, 28672, False),
    "llama-3.1-405b": (16384, 126, 128, 8, 128, 53248, False),
}
VOCAB = 128256


def expected_params(d: int, layers: int, heads: int, kv: int, hd: int, ffn: int, tied: bool) -> int:
    attention = d * heads * hd + 2 * d * kv * hd + heads * hd * d  # q, k, v, o
    mlp = 3 * d * ffn  # gate, up, down
    norms = 2 * d  # input and post-attention RMSNorm
    head = 0 if tied else d * VOCAB
    return VOCAB * d + layers * (attention + mlp + norms) + d + head


@pytest.mark.parametrize("name", list(LLAMAS))
def test_parameters_exact(name: str) -> None:
    spec = LLAMAS[name]
    g = irperf.run(irperf.lower(name, phase="decode"), "params")
    total = sum(p.params for p in g.records(ParamCount).values())
    assert total == expected_params(*spec)
    if name == "llama-3.1-8b":
        assert total == 8_030_261_248  # Hugging Face's count for Llama 3.1 8B


def _config_json(d: int, layers: int, heads: int, kv: int, hd: int, ffn: int, tied: bool) -> str:
    return json.dumps(
        {
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "hidden_size": d,
            "num_hidden_layers": layers,
            "num_attention_heads": heads,
            "num_key_value_heads": kv,
            "head_dim": hd,
            "intermediate_size": ffn,
            "vocab_size": VOCAB,
            "hidden_act": "silu",
            "rms_norm_eps": 1e-5,
            "rope_theta": 500000.0,
            "rope_scaling": {"factor": 32.0, "rope_type": "llama3"},
            "max_position_embeddings": 131072,
            "tie_word_embeddings": tied,
            "attention_bias": False,
            "mlp_bias": False,
            "torch_dtype": "bfloat16",
        }
    )


@pytest.mark.parametrize("name", ["llama-3.2-1b", "llama-3.1-8b"])
def test_a_config_json_is_the_preset(tmp_path: Path, name: str) -> None:
    path = tmp_path / "config.json"
    path.write_text(_config_json(*LLAMAS[name]))
    cfg = load_model_config(str(path))
    assert cfg.vision is None and cfg.text == load_model_config(name).text


def test_a_tied_head_counts_its_parameters_once() -> None:
    g = irperf.run(irperf.lower("llama-3.2-1b", phase="decode"), "params")
    head = g.node("text.lm_head.weight")
    assert head.op.tied_to == "text.embed.weight"  # type: ignore[attr-defined]
    counts = g.records(ParamCount)
    assert counts["text.lm_head.weight"].params == 0
    assert counts["text.lm_head.weight"].weight_bytes == 2048 * VOCAB * 2  # stored, BF16


def test_the_whole_pipeline_on_text_models(capsys: Any) -> None:
    def schedule(*argv: str) -> dict[str, Any]:
        assert main(["schedule", *argv, "--json"]) == 0
        return json.loads(capsys.readouterr().out)

    small = schedule("llama-3.1-8b", "--target", "n150")
    assert small["tp"] == 1 and small["ttft_ms"] > 0 and small["tpot_ms"] > 0
    big = schedule("llama-3.1-70b", "--target", "t3000", "--phase", "decode", "--batch", "32")
    assert big["tp"] == 8 and big["tpot_ms"] > 0
    assert main(["place", "llama-3.1-405b", "--target", "t3000", "--json"]) == 0
    chip = json.loads(capsys.readouterr().out)["chips"][0]
    assert not chip["fits"]  # 405B in BFP8 over 8 chips of 12 GB: reported, never a crash


def test_what_a_text_model_refuses() -> None:
    with pytest.raises(ConfigError, match="text-only Llama"):
        irperf.lower("llama-3.1-8b", image=True)
    with pytest.raises(ConfigError, match="text-only Llama"):
        irperf.lower("llama-3.1-8b", part="vision")
    with pytest.raises(ConfigError, match="images"):
        irperf.lower("llama-3.1-8b", images=2)
    bad = json.loads(_config_json(*LLAMAS["llama-3.1-8b"]))
    bad["mlp_bias"] = True
    with pytest.raises(ConfigError, match="mlp_bias"):
        from lowering.config_loaders import config_from_hf_llama

        config_from_hf_llama(bad, "x")
