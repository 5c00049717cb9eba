"""irperf calibrate and irperf compare: the fitted file loads and schedules, compare's matches
and statistics against hand-computed ones, and malformed profiles as one line, exit code 2."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from irperf.cli import main
from targets import load_target
from tests.profile_csv import HEADER, csv_text, row, tensor
from tests.targets.test_profile import known_curve

MODEL = ["llama-3.2-1b", "--phase", "prefill", "--tp", "1"]
"""A small request: one chip, a 128-token prompt (hidden 2048, KV width 512, FFN 8192)."""


def _json(capsys: Any, *argv: str) -> dict[str, Any]:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out, parse_constant=lambda c: pytest.fail(c))


def _error(capsys: Any, *argv: str) -> str:
    assert main(list(argv)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_a_calibrated_file_loads_and_schedules(capsys: Any, tmp_path: Path) -> None:
    profile = tmp_path / "ops_perf_results.csv"
    profile.write_text(known_curve())
    out = tmp_path / "my-n300.toml"
    assert main(["calibrate", "--profile", str(profile), "--target", "n300", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed
    text = out.read_text()
    assert text.startswith(f"# irperf calibrate: n300 fitted to the profile {profile}\n")
    assert "#   matmul: 12 rows, 0.0%" in text and "#   binary: 3 rows, 0.0%" in text
    t = load_target(str(out))
    assert t.name == "my-n300" and t.fit is not None and t.fit.rows_used == 21
    kernels = {(k.dtype, k.fidelity): k for k in t.fit.kernels}
    assert kernels[("bf16", "hifi4")].e_max == pytest.approx(0.8, rel=0.01)
    # every other field is n300's
    n300 = load_target("n300")
    assert t.compute == n300.compute and t.grid == n300.grid and t.link == n300.link
    assert main(["targets", "show", str(out)]) == 0
    assert "from " in capsys.readouterr().out
    got = _json(capsys, "schedule", *MODEL, "--target", str(out))
    base = _json(capsys, "schedule", *MODEL, "--target", "n300")
    assert got["target"] == "my-n300" and got["ttft_ms"] > 0
    assert got["ttft_ms"] != base["ttft_ms"]  # the fit moves the kernels
    summary = _json(capsys, "calibrate", "--profile", str(profile), "-o", str(out))
    assert summary["rows_used"] == 21 and summary["unused"] == []
    assert summary["dispatch"] == "trace"


def _predicted(capsys: Any) -> dict[str, float]:
    ops = _json(capsys, "schedule", *MODEL)["phases"]["prefill"]["ops"]
    return {o["name"]: o["end_us"] - o["start_us"] for o in ops}


def test_compare_matches_in_order_and_states_its_errors(capsys: Any, tmp_path: Path) -> None:
    us = _predicted(capsys)
    wq, wk, norm = us["text.0.attn.wq"], us["text.0.attn.wk"], us["text.0.attn_norm"]
    bfp8 = {"dtype": "BFLOAT8_B"}
    x, q, kv = tensor((128, 2048)), tensor((2048, 2048), **bfp8), tensor((2048, 512), **bfp8)
    rows = [
        # measured 1.25 x and 0.8 x the prediction: errors -20% and +25%; the norm exact
        row("Matmul", round(wq * 1.25e3), [x, q], [x], fidelity="HiFi2"),
        row("Matmul", round(wk * 0.8e3), [x, kv], [tensor((128, 512))], fidelity="HiFi2"),
        row("RMSNorm", round(norm * 1e3), [x], [x], fidelity=""),
        row("Matmul", 5000, [tensor((128, 4096)), tensor((4096, 4096))], [tensor((128, 4096))]),
        row("Tilize", 5000, [x], [x], fidelity=""),
        row("Conv2d", 5000, [x], [x]),
        row("Matmul", 5000, [x, q], [x], op_type="tt_dnn_cpu"),
    ]
    profile = tmp_path / "ops.csv"
    profile.write_text(csv_text(rows))
    out = _json(capsys, "compare", "--profile", str(profile), *MODEL)
    assert [(o["name"], o["rows"]) for o in out["ops"]] == [
        ("text.0.attn_norm", [4]),
        ("text.0.attn.wq", [2]),
        ("text.0.attn.wk", [3]),
    ]
    assert [(u["row"], u["reason"]) for u in out["unmatched"]] == [
        (5, "no irperf matmul op of shape key [128, 4096, 4096]"),
        (6, "op code 'Tilize' maps to no irperf op class"),
        (7, "irperf's graph has no conv2d op"),
        (8, "a host op (tt_dnn_cpu): no device time"),
    ]
    errors = {o["name"]: o["error_pct"] for o in out["ops"]}
    close = {"abs": 0.01}  # the rows are rounded to 1 ns
    assert errors["text.0.attn.wq"] == pytest.approx(-20, **close)
    assert errors["text.0.attn.wk"] == pytest.approx(25, **close)
    assert errors["text.0.attn_norm"] == pytest.approx(0, **close)
    overall, matmul = out["overall"], out["classes"]["matmul"]
    assert overall["ops"] == 3 and out["matched_rows"] == 3 and out["device_rows"] == 6
    assert overall["mean_abs_error_pct"] == pytest.approx((20 + 25 + 0) / 3, **close)
    # |ln(p/m)| is ln 1.25 for both matmuls and 0 for the norm
    geomean = 100 * (math.exp(2 * math.log(1.25) / 3) - 1)
    assert overall["geomean_abs_error_pct"] == pytest.approx(geomean, **close)
    assert matmul["mean_abs_error_pct"] == pytest.approx(22.5, **close)
    assert matmul["geomean_abs_error_pct"] == pytest.approx(25.0, **close)
    assert matmul["predicted_us"] == pytest.approx(wq + wk)
    assert matmul["measured_us"] == pytest.approx(1.25 * wq + 0.8 * wk, abs=1e-3)
    assert main(["compare", "--profile", str(profile), *MODEL, "--top", "1"]) == 0
    text = capsys.readouterr().out
    assert "ops, largest error first (1 of 3; --top N)" in text
    assert "text.0.attn.wk" in text and "text.0.attn.wq " not in text
    assert "irperf's graph has no conv2d op" in text


def test_compare_averages_the_devices_and_handles_exact_predictions(
    capsys: Any, tmp_path: Path
) -> None:
    norm = _predicted(capsys)["text.0.attn_norm"]
    x = tensor((128, 2048))
    ns = round(norm * 1e3)
    rows = [row("RMSNorm", ns, [x], [x], device=d, fidelity="") for d in (0, 1)]
    profile = tmp_path / "ops.csv"
    profile.write_text(csv_text(rows))
    out = _json(capsys, "compare", "--profile", str(profile), *MODEL)
    (op,) = out["ops"]
    assert op["rows"] == [2, 3] and op["measured_us"] == pytest.approx(ns / 1e3)
    assert out["overall"]["geomean_abs_error_pct"] == pytest.approx(0, abs=0.01)


def test_malformed_profiles_are_one_line(capsys: Any, tmp_path: Path) -> None:
    path = tmp_path / "ops.csv"
    out = str(tmp_path / "x.toml")
    for text, message in [
        ("", "empty file"),
        ("ID,Kernel Name,Duration\n1,k,3\n", "missing column 'DEVICE KERNEL DURATION [ns]'"),
        (
            csv_text([row("Softmax", "12x", [tensor((32, 32))], [tensor((32, 32))])]),
            "row 2, column 'DEVICE KERNEL DURATION [ns]': must be a duration in ns",
        ),
    ]:
        path.write_text(text)
        for argv in (
            ["calibrate", "--profile", str(path), "-o", out],
            ["compare", "--profile", str(path), *MODEL],
        ):
            assert message in _error(capsys, *argv)
    path.write_bytes(b"\xff" + ",".join(HEADER).encode())
    assert "not UTF-8 text" in _error(capsys, "calibrate", "--profile", str(path), "-o", out)
    assert not Path(out).exists()


def test_bad_requests(capsys: Any, tmp_path: Path) -> None:
    path = tmp_path / "ops.csv"
    path.write_text(known_curve())
    cal = ["calibrate", "--profile", str(path)]
    assert "would overwrite an input" in _error(capsys, *cal, "-o", str(path))
    assert "names no calibration" in _error(capsys, *cal, "--target", "h100", "-o", "x.toml")
    assert "required: -o" in _error(capsys, *cal)
    assert "-o takes a file name" in _error(capsys, *cal, "-o", "-")
    shipped = Path(__file__).parents[1] / "targets" / "data" / "n300.toml"
    before = shipped.read_bytes()
    assert "inside irperf's own targets" in _error(capsys, *cal, "-o", str(shipped))
    assert shipped.read_bytes() == before
    cmp = ["compare", "--profile", str(path), "llama-3.2-1b"]
    assert "--phase 'both'" in _error(capsys, *cmp, "--phase", "both")
    assert "--context means nothing" in _error(capsys, *cmp, "--context", "5")
    assert "--top 0" in _error(capsys, *cmp, "--top", "0")
    assert "--strategy means nothing" in _error(
        capsys, *cmp, "--target", "h100", "--strategy", "dram"
    )


def test_the_documented_example(capsys: Any, tmp_path: Path, monkeypatch: Any) -> None:
    """docs/calibrate.md's synthetic profile: the fit recovers the curve its script states
    (matmuls at 5 us + ideal / 0.72, a +-5% ripple) and prints what the docs show."""
    import runpy

    monkeypatch.chdir(tmp_path)
    script = Path(__file__).resolve().parents[1] / "examples" / "synthetic_profile.py"
    monkeypatch.setattr("sys.argv", [str(script), "ops_perf_results.csv"])
    runpy.run_path(str(script), run_name="__main__")
    argv = ["calibrate", "--profile", "ops_perf_results.csv", "-o", "my-n300.toml"]
    assert main(argv) == 0
    first = capsys.readouterr().out.splitlines()[0]
    docs = (script.parents[1] / "docs" / "calibrate.md").read_text()
    assert first in docs
    (kernel,) = load_target("my-n300.toml").fit.kernels  # type: ignore[union-attr]
    assert kernel.e_max == pytest.approx(0.72, rel=0.01)
    assert kernel.fixed_s == pytest.approx(5e-6, rel=0.2)  # the ripple moves the floor most
    out = _json(
        capsys,
        "compare",
        "--profile",
        "ops_perf_results.csv",
        "llama-3.2-1b",
        "--seq-len",
        "2048",
        "--tp",
        "1",
        "--target",
        "my-n300.toml",
    )
    shown = f"mean abs error {out['overall']['mean_abs_error_pct']:.1f}%"
    assert shown in docs and [u["op_code"] for u in out["unmatched"]] == ["Tilize", "Untilize"]


def test_two_devices_with_collectives(capsys: Any, tmp_path: Path) -> None:
    """A 2-chip decode profile (tensor parallel, fractured): each device's rows match the same
    ops, whose measured time is the two devices' mean; the collectives fit their floor."""
    from targets.calibration import link_models
    from targets.profile import parse_profile
    from targets.profile_fit import fit_profile

    half, whole = tensor((1, 1024)), tensor((1, 2048))
    q = tensor((2048, 1024), dtype="BFLOAT8_B")
    rows = []
    for device, ns in ((0, (10_000, 1_000, 12_000, 9_000)), (1, (12_000, 1_000, 14_000, 11_000))):
        rows += [
            row("AllGatherAsync", ns[0], [half], [whole], device=device, fidelity=""),
            row("RMSNorm", ns[1], [whole], [whole], device=device, fidelity=""),
            row("Matmul", ns[2], [whole, q], [half], device=device, fidelity="HiFi2"),
            row("ReduceScatter", ns[3], [whole], [half], device=device, fidelity=""),
        ]
    profile = tmp_path / "ops.csv"
    profile.write_text(csv_text(rows))
    decode = ["llama-3.2-1b", "--phase", "decode", "--context", "64"]
    out = _json(capsys, "compare", "--profile", str(profile), *decode)
    got = [(o["name"], o["rows"], o["measured_us"]) for o in out["ops"]]
    assert got == [
        ("text.0.attn_norm.all_gather", [2, 6], 11.0),
        ("text.0.attn_norm", [3, 7], 1.0),
        ("text.0.attn.wq", [4, 8], 13.0),
        ("text.0.attn.wo.reduce_scatter", [5, 9], 10.0),
    ]
    assert out["unmatched"] == []
    fit = fit_profile(parse_profile(csv_text(rows), "ops.csv"), load_target("n300"))
    base = link_models(load_target("n300"))
    gathers = {c.kind: c for c in fit.fitted.collectives}
    # one size: the calibration's s_per_byte, the floor the mean of what is left; a chip sends
    # half the gathered 32-row tile (tile-padded [32, 2048] BF16) and half the scattered input
    sent = 32 * 2048 * 2 // 2
    for kind, mean_s in (("all_gather", 11e-6), ("reduce_scatter", 10e-6)):
        c = base[kind].s_per_byte
        assert gathers[kind].s_per_byte == c
        assert gathers[kind].latency_s == pytest.approx(mean_s - c * sent)


def test_no_matched_op_is_no_error_figure(capsys: Any, tmp_path: Path) -> None:
    """A profile none of whose rows the graph has: the errors are unknown (null), not 0%."""
    path = tmp_path / "ops.csv"
    path.write_text(csv_text([row("Tilize", 1000, [tensor((32, 32))], [tensor((32, 32))])]))
    out = _json(capsys, "compare", "--profile", str(path), *MODEL)
    assert out["matched_rows"] == 0
    assert out["overall"]["mean_abs_error_pct"] is None
    assert out["overall"]["geomean_abs_error_pct"] is None
    assert main(["compare", "--profile", str(path), *MODEL]) == 0
    assert "mean abs error -%" in capsys.readouterr().out
