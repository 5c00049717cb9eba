"""Time a sweep of 10,000 configurations of Llama 3.2 11B Vision: prefill and decode, ten prompt
lengths and ten contexts, five batch sizes, two precision policies, two targets (n150, n300) and
five DRAM bandwidths by five L1 sizes, as ``irperf sweep`` runs it (process start included).

    python benchmarks/bench_sweep.py [--workers 2] [--out DIR]
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time

ARGS = [
    "llama-3.2-11b-vision",
    "--target",
    "n150",
    "n300",
    "--seq-len",
    "128,256,384,512,768,1024,1536,2048,3072,4096",
    "--context",
    "256,512,1024,2048,3072,4096,6144,8192,12288,16384",
    "--batch",
    "1,2,4,8,16",
    "--precision",
    "tt-accuracy,tt-performance",
    "--set",
    "dram_bandwidth_bytes_per_s_per_chip=192e9,240e9,288e9,384e9,576e9",
    "--set",
    "l1_usable_bytes_per_core=700000,800000,900000,1000000,1100000",
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", default=None, help="a folder for the CSV (default: a temporary one)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(args.out or tmp, "sweep.csv")
        if os.path.exists(out):
            os.remove(out)
        irperf = os.path.join(os.path.dirname(sys.executable), "irperf")
        command = [irperf, "sweep", *ARGS, "--out", out, "--quiet", "--workers", str(args.workers)]
        t0 = time.perf_counter()
        subprocess.run(command, check=True)
        seconds = time.perf_counter() - t0
        with open(out, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        errors = sum(1 for r in rows if r["error"])
    per_ms = seconds / len(rows) * 1e3
    print(
        f"irperf sweep, 11B: {len(rows):,} configurations ({errors} error rows) in {seconds:.1f} s "
        f"with {args.workers} workers ({per_ms:.2f} ms each)"
    )


if __name__ == "__main__":
    main()
