#!/usr/bin/env bash
# Redraw the pictures the docs show, with the installed irperf (tests check they are current).
set -euo pipefail
cd "$(dirname "$0")"
irperf lower llama-3.2-11b-vision --part vision --svg vision-collapsed.svg --collapse-repeats --annotate
