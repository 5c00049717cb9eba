"""``python -m irperf``: the command line."""

from irperf.cli import console

console()
