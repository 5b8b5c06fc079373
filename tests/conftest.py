"""Test-session set-up: a throw-away artifact cache, and progress bars as summary lines.

The tests never read or write the reader's cache (``~/.cache/s2d``): the controller creates one
temporary cache for the whole session (pytest-xdist's workers, and the notebooks the tests
execute, inherit the environment) and removes it at the end.
"""

from __future__ import annotations

import os
import shutil
import tempfile


def pytest_configure(config):
    if os.environ.get("PYTEST_XDIST_WORKER"):  # a worker: the controller has set up the environment
        return
    config._s2d_cache = tempfile.mkdtemp(prefix="s2d-test-cache-")
    os.environ["S2D_CACHE_DIR"] = config._s2d_cache
    os.environ["S2D_PROGRESS"] = "log"


def pytest_unconfigure(config):
    path = getattr(config, "_s2d_cache", None)
    if path:
        shutil.rmtree(path, ignore_errors=True)
