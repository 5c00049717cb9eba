"""Time ``irperf analyze llama-3.2-11b-vision --json`` from process start to the JSON on stdout
(the whole command: imports, lowering, every pass, the encoding), with Python's bytecode cache as
an installed package has it, and without it (``PYTHONDONTWRITEBYTECODE`` and no cache: every
module compiled from source, as on a first run).

    python benchmarks/bench_startup.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

COMMAND = ["analyze", "llama-3.2-11b-vision", "--json"]


def seconds(env: dict[str, str], repeats: int) -> float:
    irperf = os.path.join(os.path.dirname(sys.executable), "irperf")
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([irperf, *COMMAND], env=env, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    cached = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    seconds(cached, 1)  # writes the cache
    warm = seconds(cached, args.repeats)
    cold = seconds(
        cached | {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": "/nonexistent"},
        args.repeats,
    )
    print(
        f"irperf {' '.join(COMMAND)}, process start to JSON: {warm:.2f} s "
        f"(bytecode cached), {cold:.2f} s (compiling every module)"
    )


if __name__ == "__main__":
    main()
