"""irperf schedule: TTFT, TPOT and the request, from the schedule, with its JSON contract."""

from __future__ import annotations

import json
from typing import Any

import pytest

from irperf.cli import main

B11 = "llama-3.2-11b-vision"


def _json(capsys: Any, *argv: str) -> dict[str, Any]:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out, parse_constant=lambda c: pytest.fail(c))


def test_ttft_and_tpot_are_the_schedules(capsys: Any) -> None:
    out = _json(capsys, "schedule", B11, "--batch", "2")
    for key in (
        "model",
        "target",
        "tp",
        "precision",
        "strategy",
        "overlap",
        "async_ccl",
        "dispatch",
        "fusion",
        "batch",
        "ttft_ms",
        "tpot_ms",
        "tokens_per_s_per_user",
        "tokens_per_s",
        "gen",
        "request_ms",
        "phases",
    ):
        assert key in out
    pre, dec = out["phases"]["prefill"], out["phases"]["decode"]
    assert out["ttft_ms"] == pre["latency_ms"]["scheduled"]
    assert out["tpot_ms"] == dec["latency_ms"]["scheduled"]
    assert out["tokens_per_s_per_user"] == pytest.approx(1000 / out["tpot_ms"])
    assert out["tokens_per_s"] == pytest.approx(2 * out["tokens_per_s_per_user"])
    for phase in (pre, dec):
        lat = phase["latency_ms"]
        assert lat["aggregate_roofline"] <= lat["scheduled"] <= lat["per_op"] + 1e-9
        last = max(op["end_us"] for op in phase["ops"])
        assert last / 1000 == pytest.approx(lat["scheduled"])
        assert all(
            op["bound"] in ("compute", "dram", "noc", "link", "dispatch") for op in phase["ops"]
        )
        assert all(0 <= u <= 1 + 1e-9 for u in phase["utilisation"].values())
    # TTFT's parts: the encoder, the projector, the cross-attention K/V and the prompt.
    assert {"vision", "projector", "cross_kv", "text", "lm_head"} <= set(pre["stages_ms"])


def test_a_whole_request_by_simpsons_rule(capsys: Any) -> None:
    out = _json(capsys, "schedule", B11, "--seq-len", "64", "--gen", "9")
    steps = []
    for context in (64, 64 + 4, 64 + 8):  # first, middle and last of 9 steps
        d = _json(capsys, "schedule", B11, "--phase", "decode", "--context", str(context))
        steps.append(d["tpot_ms"])
    assert out["request_ms"] == pytest.approx(
        out["ttft_ms"] + 9 * (steps[0] + 4 * steps[1] + steps[2]) / 6
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--gen", "8", "--phase", "decode"], "--gen needs both phases"),
        (["--gen", "8", "--context", "100"], "leave --context out"),
        (["--part", "text"], "need the full model"),
        (["--overlap", "1.5"], "a number from 0 to 1"),
        (["--gen", "0"], "a token count"),
        (["--phase", "train"], "valid: both, prefill, decode"),
        (["--async-ccl", "maybe"], "invalid choice"),
        (["--target", "h100", "--tp", "2"], "has 1 chip"),
        (["--target", "h100", "--strategy", "dram"], "--strategy means nothing"),
        (["--phase", "prefill", "--context", "5"], "--context means nothing"),
        (["--phase", "decode", "--seq-len", "5"], "--seq-len means nothing"),
    ],
)
def test_bad_requests(capsys: Any, argv: list[str], message: str) -> None:
    assert main(["schedule", B11, *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_an_h100_beside_an_n300(capsys: Any) -> None:
    gpu = _json(capsys, "schedule", B11, "--target", "h100")
    assert gpu["tp"] == 1 and gpu["ttft_ms"] > 0 and gpu["tpot_ms"] > 0


def test_the_chrome_trace_is_the_schedule(capsys: Any, tmp_path: Any) -> None:
    path = tmp_path / "trace.json"
    out = _json(capsys, "schedule", B11, "--trace-json", str(path))
    trace = json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(c))
    events = trace["traceEvents"]
    assert all({"ph", "ts", "dur", "pid", "tid"} <= set(e) for e in events)
    names = {(e["pid"], e["args"]["name"]) for e in events if e["name"] == "process_name"}
    assert names == {(0, "chip 0"), (1, "chip 1")}  # one process per chip of the n300
    ops = {op["name"]: op for op in out["phases"]["prefill"]["ops"]}
    ttft_us = out["ttft_ms"] * 1000
    for e in events:
        if e["ph"] != "X" or e["tid"] == 0:  # the host track holds the dispatch gaps
            continue
        if e["cat"] == "prefill":
            op = ops[e["name"]]
            assert e["ts"] == op["start_us"] and e["dur"] == op["end_us"] - op["start_us"]
        else:
            assert e["ts"] >= ttft_us  # the decode step follows the first token
    assert sum(1 for e in events if e["ph"] == "X" and e["pid"] == 0) == sum(
        1 for e in events if e["ph"] == "X" and e["pid"] == 1
    )


def test_analyze_gains_the_scheduled_view(capsys: Any) -> None:
    decode = _json(capsys, "analyze", B11, "--phase", "decode", "--target", "n300")
    lat = decode["latency_ms"]
    assert {"aggregate_roofline", "per_op_roofline", "link_ms", "scheduled"} <= set(lat)
    assert decode["tpot_ms"] == lat["scheduled"] and decode["ttft_ms"] is None
    assert decode["tokens_per_s_per_user"] == pytest.approx(1000 / lat["scheduled"])
    ends = [op["end_us"] for op in decode["ops"]]
    assert max(ends) / 1000 == pytest.approx(lat["scheduled"])
    assert all(op["start_us"] <= op["end_us"] for op in decode["ops"])
    prefill = _json(capsys, "analyze", B11, "--target", "n300-seed")
    assert prefill["ttft_ms"] == prefill["latency_ms"]["scheduled"]
    assert prefill["latency_ms"]["aggregate_roofline"] <= prefill["latency_ms"]["scheduled"]
    vision = _json(capsys, "analyze", B11, "--part", "vision")
    assert vision["ttft_ms"] is None and vision["tpot_ms"] is None


def test_pictures(capsys: Any, tmp_path: Any) -> None:
    pytest.importorskip("matplotlib")
    roof, timeline = tmp_path / "roof.png", tmp_path / "timeline.svg"
    argv = ["schedule", B11, "--phase", "decode", "--plot", str(roof), "--timeline", str(timeline)]
    assert main(argv) == 0
    assert roof.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in timeline.read_text()[:2000]
    assert f"wrote {roof}" in capsys.readouterr().out


def test_pictures_without_matplotlib(capsys: Any, tmp_path: Any, monkeypatch: Any) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib: ImportError
    assert main(["schedule", B11, "--phase", "decode", "--plot", str(tmp_path / "r.png")]) == 2
    err = capsys.readouterr().err
    assert "pip install 'irperf[plot]'" in err and err.count("\n") == 1
    assert main(["schedule", B11, "--plot", str(tmp_path / "r.jpg")]) == 2
    assert "a .png or .svg file" in capsys.readouterr().err


def test_a_model_that_does_not_fit_is_timed_with_a_warning(capsys: Any) -> None:
    # Llama 3.1 405B over T3000's 8 chips: about 50e9 parameters per chip, at least half a byte
    # each even in BFP4 (576 bytes per 1,024 values), against 12 GB of DRAM per chip.
    argv = ["schedule", "llama-3.1-405b", "--target", "t3000", "--phase", "decode"]
    out = _json(capsys, *argv)
    assert out["fits"] is False and out["tpot_ms"] > 0
    dec = out["phases"]["decode"]
    assert dec["dram_capacity_bytes"] == 12_000_000_000
    assert dec["memory_bytes"] > 405e9 / 8 * 576 / 1024 > 12e9
    assert main(argv) == 0
    assert "warning: the model does not fit" in capsys.readouterr().out
    assert _json(capsys, "schedule", B11)["fits"] is True
