"""Fixtures for every test: the sample catalog rendered in memory, a scratch copy of the
repository, and an in-process ``companyos`` runner that returns (exit code, stdout, stderr).

Plain helpers live in ``tests/helpers/`` (importable as ``helpers``); test modules never
import this file or each other."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from generator import cli, pipeline
from helpers.repo import REPO, CliResult, copy_repo


@pytest.fixture(scope="session")
def sample() -> pipeline.Build:
    """The repository's own catalog, rendered in memory (never written)."""
    return pipeline.build(REPO)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A scratch copy of the repository's inputs and committed output (no git history)."""
    return copy_repo(tmp_path / "repo")


@pytest.fixture
def companyos(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run the real CLI entry point in-process: ``companyos("check", cwd=path)``."""

    def run(*args: str, cwd: Path) -> CliResult:
        monkeypatch.chdir(cwd)
        monkeypatch.setattr(sys, "argv", ["companyos", *args])
        capsys.readouterr()
        try:
            cli.main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run
