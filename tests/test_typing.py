"""mypy is clean on the packages every other stage builds on (the list is in pyproject.toml)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def test_mypy_is_clean_on_the_core_stages(monkeypatch):
    api = pytest.importorskip("mypy.api")
    monkeypatch.chdir(REPO)  # the configuration names the packages relative to the checkout
    stdout, stderr, status = api.run(["--config-file", str(REPO / "pyproject.toml"), "--cache-dir",
                                      str(REPO / ".mypy_cache")])
    assert status == 0, f"mypy found problems:\n{stdout}{stderr}"
