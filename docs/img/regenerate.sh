#!/usr/bin/env bash
# Redraw the pictures the docs show, with the installed irperf (tests check they are current).
set -euo pipefail
cd "$(dirname "$0")"
irperf lower llama-3.2-11b-vision --part vision --svg vision-collapsed.svg --collapse-repeats --annotate
# The schedule's pictures (matplotlib: pip install 'irperf[plot]'); not compared by tests, since
# PNG bytes differ across matplotlib versions.
irperf schedule llama-3.2-11b-vision --plot schedule-roofline.png --timeline schedule-timeline.png >/dev/null
