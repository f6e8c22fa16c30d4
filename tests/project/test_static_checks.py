"""The static checks the next person relies on: ruff (lint and format) and mypy --strict on
generator/, configured in pyproject.toml. Run here so CI fails with the offending file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from helpers.repo import REPO

BIN = Path(sys.executable).parent


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=600, check=False)


def test_ruff_lint_is_clean():
    result = run(str(BIN / "ruff"), "check", "--no-cache", "generator", "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_clean():
    result = run(str(BIN / "ruff"), "format", "--check", "--no-cache", "generator", "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_mypy_strict_is_clean():
    result = run(str(BIN / "mypy"), "--no-incremental")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success" in result.stdout
