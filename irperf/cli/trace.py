"""The schedule as Chrome-trace JSON (the Trace Event Format that Perfetto and
``chrome://tracing`` open): one process per chip, one thread (track) per resource, each op a
complete event (``ph: "X"``) named by its scope, ``ts`` and ``dur`` in microseconds, ``args``
with the op's kind, role, phase, FLOPs, bytes and bound. Every chip runs the same program, so
each chip's tracks repeat the schedule. Prefill starts at 0; the decode step follows it, as in a
request. Metadata events name the processes and tracks."""

from __future__ import annotations

import json
from typing import Any

TRACKS = ("host", "grid", "dram", "link")


def chrome_trace(report: dict[str, Any]) -> dict[str, Any]:
    """``irperf schedule``'s report as a trace."""
    events: list[dict[str, Any]] = []
    chips = max(int(report["tp"]), 1)
    for chip in range(chips):
        events.append(_meta("process_name", chip, 0, {"name": f"chip {chip}"}))
        for tid, track in enumerate(TRACKS):
            events.append(_meta("thread_name", chip, tid, {"name": track}))
    offset = 0.0
    for phase, rep in report["phases"].items():
        for op in rep["ops"]:
            args = {
                k: op[k]
                for k in ("kind", "role", "bound", "flops", "dram_bytes", "noc_bytes", "link_bytes")
            }
            args["phase"] = phase
            for chip in range(chips):
                for track in op["resources"]:
                    start, dur = op["start_us"], op["end_us"] - op["start_us"]
                    if track == "host":
                        start, dur = op["dispatch_start_us"], op["dispatch_us"]
                    events.append(
                        {
                            "name": op["name"],
                            "cat": phase,
                            "ph": "X",
                            "ts": offset + start,
                            "dur": dur,
                            "pid": chip,
                            "tid": TRACKS.index(track),
                            "args": args,
                        }
                    )
        offset += rep["latency_ms"]["scheduled"] * 1000.0
    return {"traceEvents": events, "displayTimeUnit": "ms"}


def _meta(name: str, pid: int, tid: int, args: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "ph": "M", "ts": 0, "dur": 0, "pid": pid, "tid": tid, "args": args}


def trace_bytes(report: dict[str, Any]) -> bytes:
    return json.dumps(chrome_trace(report), allow_nan=False).encode()
