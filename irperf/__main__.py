"""``python -m irperf``: the command line."""

import sys

from irperf.cli import main

sys.exit(main())
