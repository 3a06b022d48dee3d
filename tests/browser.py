"""Debian's headless Chromium for the browser tests, driven by Playwright (nothing is downloaded).

`make test` installs the chromium package when it is missing (`make browser`); a run without it fails here, saying
so, instead of skipping: a browser test that silently does not run is a test that cannot fail.
"""

from __future__ import annotations

import shutil
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


def launch(playwright: Any) -> Any:
    """A headless Debian Chromium browser; the test fails (never skips) when it is not installed."""
    if not shutil.which(CHROMIUM):
        pytest.fail(
            f"{CHROMIUM} not found: `make test` installs it (make browser), or: sudo apt-get install -y chromium"
        )
    return playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
