"""Shared fixtures: where the real benchmark data lives, and the run directory of a test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def find_shared_data() -> Path | None:
    """The benchmark data folder: $TTC_SHARED_DATA, else ../shared/data beside the checkout."""
    candidates = [os.environ.get("TTC_SHARED_DATA"), REPO_ROOT.parent / "shared" / "data", "/work/shared/data"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "SOURCES.md").is_file():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = find_shared_data()
    if path is None:
        pytest.skip("benchmark data not found: set TTC_SHARED_DATA to the folder holding SOURCES.md")
    return path


@pytest.fixture(scope="session")
def chromium():
    """A headless Chromium (tests/browser.py); skipped when none is installed, unless TTC_REQUIRE_CHROMIUM=1."""
    from tests.browser import Browser, find_chromium

    executable = find_chromium()
    if executable is None:
        message = "no chromium on PATH (Debian: apt-get install chromium)"
        if os.environ.get("TTC_REQUIRE_CHROMIUM") == "1":
            pytest.fail(message + "; TTC_REQUIRE_CHROMIUM=1 requires it")
        pytest.skip(message)
    with Browser(executable) as browser:
        yield browser
