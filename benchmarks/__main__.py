"""``python -m benchmarks run|table|list SUITE``: see :mod:`benchmarks.runner`."""

import sys

from .runner import main

sys.exit(main())
