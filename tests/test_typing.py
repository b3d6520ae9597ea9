"""mypy is clean on the packages every other stage builds on (the list is in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def test_mypy_is_clean_on_the_core_stages():
    pytest.importorskip("mypy")
    # In a process of its own: mypy raises the interpreter's recursion limit, which other tests rely on.
    result = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(REPO / "pyproject.toml")],
                            cwd=REPO, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"mypy found problems:\n{result.stdout}{result.stderr}"
