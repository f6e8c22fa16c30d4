"""Shared fixtures: the sample catalog rendered in memory, a scratch copy of the repository,
and an in-process ``companyos`` runner that returns (exit code, stdout, stderr)."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from generator import pipeline

REPO = Path(__file__).resolve().parents[1]
#: Upstream schemas, always present beside the checkout (in CI too).
SHARED = REPO.parent / "shared"
#: What a scratch repository needs: catalog inputs, templates and the committed output.
REPO_ITEMS = ("catalog", "tenants", "environments", "templates", "rendered", ".github", "justfile")


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture(scope="session")
def sample() -> pipeline.Build:
    """The repository's own catalog, rendered in memory (never written)."""
    return pipeline.build(REPO)


def copy_repo(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for item in REPO_ITEMS:
        src = REPO / item
        if src.is_dir():
            shutil.copytree(src, dest / item, symlinks=True)
        elif src.is_file():
            shutil.copy2(src, dest / item)
    return dest


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A scratch copy of the repository's inputs and committed output (no git history)."""
    return copy_repo(tmp_path / "repo")


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (for "nothing changed on disk" assertions)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and ".git/" not in p.as_posix()}


@pytest.fixture
def companyos(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run the real CLI entry point in-process: ``companyos("check", cwd=path)``."""
    from generator import cli

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


def edit_yaml(path: Path, change: Callable[[Any], None]) -> None:
    """Load ``path`` round-trip (comments kept), let ``change`` mutate it, write it back."""
    yaml = YAML(typ="rt")
    data = yaml.load(path.read_text(encoding="utf-8"))
    change(data)
    with path.open("w", encoding="utf-8") as fh:
        yaml.dump(data, fh)


def load_yaml_docs(data: bytes) -> list[Any]:
    """Parse rendered YAML with a different parser than the one that wrote it."""
    import yaml as pyyaml

    return [doc for doc in pyyaml.safe_load_all(data.decode("utf-8")) if doc is not None]
