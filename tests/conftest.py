"""The shared fixtures, registered as plugins for every test (see tests/README.md): each module
of ``tests/fixtures`` holds the fixtures of one concern.

The shipped configuration prepares each new snapshot in a background thread of a serving
process (``[api] warm_seconds``); tests turn that off for every process they start, so what a
test observes is what its own requests did. tests/integration/api/test_warmup.py turns it on.
"""

from __future__ import annotations

import os

os.environ["SOREDI_API__WARM_SECONDS"] = "0"

pytest_plugins = [
    "tests.fixtures.database",
    "tests.fixtures.cli",
    "tests.fixtures.sandbox",
    "tests.fixtures.app",
    "tests.fixtures.api",
    "tests.fixtures.ui",
    "tests.fixtures.run_outputs",
]
