"""The classes a third acceptance review found, one check each."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import attrs
import pytest

import irperf
from irperf.errors import ConfigError, IrperfError, TargetError
from irperf.render import FAN_IN_BLOCKS, to_dot
from lowering import PRESETS, load_model_config
from targets import load_target
from tests.irperf.test_render import edges, node_id
from tests.robustness.outcome import check_cli, run_cli

ROOT = Path(__file__).parents[2]
DATA = ROOT / "tests" / "data" / "configs"
M = "llama-3.2-11b-vision"


def one_line_error(argv: list[str], contains: str) -> None:
    code, _, err = run_cli(argv)
    assert code == 2 and err.count("\n") == 1 and contains in err, err


def test_deeply_nested_toml_is_malformed_input(tmp_path: Path) -> None:
    path = tmp_path / "deep.toml"
    path.write_text("x = " + "[" * 1000 + "]" * 1000)
    with pytest.raises(TargetError, match="nested too deeply"):
        load_target(path)


def test_a_package_shadowed_from_the_working_folder_is_named(tmp_path: Path) -> None:
    (tmp_path / "passes.py").write_text("X = 1\n")
    done = subprocess.run(
        [sys.executable, "-m", "irperf", "analyze", M],
        cwd=tmp_path,
        capture_output=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 2
    assert b"shadows irperf's own package 'passes'" in done.stderr
    assert done.stderr.count(b"\n") == 1


def _every_layer_saved(layers: int) -> object:
    cfg = PRESETS[M]
    saved = tuple(range(layers))
    vision = attrs.evolve(
        cfg.vision,
        num_hidden_layers=layers,
        intermediate_layers_indices=saved,
        vision_output_dim=cfg.vision.hidden_size * (1 + layers),
    )
    return attrs.evolve(cfg, vision=vision)


def test_a_node_gathering_many_blocks_draws_one_edge_and_names_the_rest() -> None:
    layers = 40  # every local layer's output saved for the projector, and the global output
    g = irperf.lower(_every_layer_saved(layers), "vision")
    concat = g.node("vision.output.concat")
    saved = [
        g.node(o).block
        for o in concat.operands
        if (g.node(o).block or "").startswith("vision.local.")
    ]
    assert len(saved) > FAN_IN_BLOCKS
    src = to_dot(g)
    # the nearest (the global stack's output) stays an edge; the saved ones are named
    assert f"reads {len(saved)} more results: {saved[0]} .. {saved[-1]}" in src
    into = [t for t, h in edges(src) if h == node_id(src, "vision.output.concat")]
    assert len(into) == len(set(concat.operands)) - len(saved)  # the gathered ones are not drawn


def test_output_files_never_alias_an_input_another_output_or_stdout(tmp_path: Path) -> None:
    cfg = tmp_path / "my.config.json"
    cfg.write_text((DATA / "llama-3.2-11b-vision.config.json").read_text())
    one_line_error(
        ["lower", str(cfg), "--part", "vision", "--dot", str(cfg)], "would overwrite an input"
    )
    out = tmp_path / "same.x"
    one_line_error(
        [
            "fusion",
            M,
            "--strategy",
            "all",
            "--dot",
            str(out),
            "--svg",
            str(tmp_path / "." / "same.x"),
        ],
        "two outputs name one file",
    )
    target = tmp_path / "t.toml"
    target.write_text((ROOT / "targets" / "data" / "n150.toml").read_text())
    one_line_error(
        ["fusion", M, "--target", str(target), "--strategy", "all", "--dot", str(target)],
        "would overwrite an input",
    )
    assert json.loads(cfg.read_text()) and "name" in target.read_text()  # untouched


def test_pass_names_and_fidelities_match_in_any_case() -> None:
    upper = check_cli(
        [
            "run",
            M,
            "--part",
            "vision",
            "--passes",
            "FLOPS,Bytes,roofline{target=N300,fidelity=HIFI2}",
            "--json",
        ]
    )
    lower = check_cli(
        [
            "run",
            M,
            "--part",
            "vision",
            "--passes",
            "flops,bytes,roofline{target=n300,fidelity=hifi2}",
            "--json",
        ]
    )
    assert upper == lower
    one_line_error(["analyze", M, "--fidelity", "none"], "valid: lofi, hifi2, hifi3, hifi4")


def test_a_file_name_that_is_not_utf8_gives_unicode_json(tmp_path: Path) -> None:
    path = tmp_path / os.fsdecode(b"\xff.config.json")
    path.write_text((DATA / "llama-3.2-11b-vision.config.json").read_text())
    code, out, _ = run_cli(["analyze", str(path), "--part", "vision", "--json"])
    assert code == 0 and "\\udc" not in out
    assert json.loads(out)["model"] == "\ufffd"


def test_images_mean_nothing_to_a_decoder_without_cross_layers() -> None:
    cfg = PRESETS[M]
    blind = attrs.evolve(cfg, text=attrs.evolve(cfg.text, cross_attention_layers=()))
    with pytest.raises(ConfigError, match="images means nothing .* without cross-attention"):
        irperf.lower(blind, "text", phase="decode", images=4)
    assert irperf.lower(blind, "full", images=2)  # a full prefill runs the encoder on them


def test_max_seq_len_bounds_the_positions(tmp_path: Path) -> None:
    data = json.loads((DATA / "llama-3.2-11b-vision.params.json").read_text())
    data["max_seq_len"] = 64
    path = tmp_path / "short.params.json"
    path.write_text(json.dumps(data))
    assert load_model_config(path).text.max_position_embeddings == 64
    one_line_error(["analyze", str(path), "--part", "text"], "128 is the default")


def test_a_plugin_that_registers_nothing_is_refused() -> None:
    one_line_error(["passes", "--load", "os"], "registers no pass and no fusion strategy")


def test_a_model_without_room_to_decode() -> None:
    cfg = PRESETS[M]
    one = attrs.evolve(cfg, text=attrs.evolve(cfg.text, max_position_embeddings=1))
    assert irperf.lower(one, "text", seq_len=1)
    with pytest.raises(ConfigError, match="leaves no room for a decode step"):
        irperf.lower(one, "text", phase="decode", context=1)


def test_a_user_target_is_named_with_its_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text((ROOT / "targets" / "data" / "n150.toml").read_text())
    one_line_error(
        ["analyze", M, "--target", str(path), "--weight-dtype", "fp8"],
        f"target 'n150' (from {path}) has no compute rate for fp8",
    )


def test_api_edges_the_third_review_found() -> None:
    assert irperf.PluginError and irperf.OutputError
    g = irperf.lower(M, "text", phase="decode")
    with pytest.raises(IrperfError, match="got b'flops'"):
        irperf.run(g, b"flops")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="lowering options are keywords"):
        irperf.lower(M, "text", 5)
