"""Shared fixtures: where the real benchmark data lives, a headless browser, and stored runs on the fake engine."""

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
    """A headless Chromium (tests/support/browser.py); skipped when none is installed, unless TTC_REQUIRE_CHROMIUM=1."""
    from tests.support.browser import Browser, find_chromium

    executable = find_chromium()
    if executable is None:
        message = "no chromium on PATH (Debian: apt-get install chromium)"
        if os.environ.get("TTC_REQUIRE_CHROMIUM") == "1":
            pytest.fail(message + "; TTC_REQUIRE_CHROMIUM=1 requires it")
        pytest.skip(message)
    with Browser(executable) as browser:
        yield browser


@pytest.fixture(scope="session")
def make_fake_run(shared_data, tmp_path_factory):
    """The one builder of stored runs on the fake engine: ``make_fake_run(task="gsm8k", root=None, **arguments)``
    runs ``harness.run`` (sample, verify, analyse, report) with ``tests.support.helpers.fake_run_arguments``
    (8 GSM8K problems x 8 samples unless ``arguments`` say otherwise) in ``root/run`` and returns that run
    directory. ``root`` defaults to a new folder; the same ``root`` again extends the run."""
    from harness import run
    from tests.support.helpers import fake_run_arguments

    def build(task: str = "gsm8k", root: Path | None = None, **arguments) -> Path:
        root = root or tmp_path_factory.mktemp("fake-run")
        return run(task, **fake_run_arguments(shared_data, root, **arguments)).run_dir

    return build
