"""The repository under test and scratch copies of it."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

#: The checkout's root (tests/helpers/repo.py -> ../..).
REPO = Path(__file__).resolve().parents[2]
#: What a scratch repository needs: catalog inputs, templates and the committed output.
REPO_ITEMS = ("catalog", "tenants", "environments", "templates", "rendered", ".github", "justfile")


@dataclass
class CliResult:
    """What one in-process ``companyos`` run returned (see the ``companyos`` fixture)."""

    code: int
    out: str
    err: str


def copy_repo(dest: Path) -> Path:
    """Copy the repository's inputs and committed output (no git history) to ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    for item in REPO_ITEMS:
        src = REPO / item
        if src.is_dir():
            shutil.copytree(src, dest / item, symlinks=True)
        elif src.is_file():
            shutil.copy2(src, dest / item)
    return dest


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (for "nothing changed on disk" assertions)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and ".git/" not in p.as_posix()}
