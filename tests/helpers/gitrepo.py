"""Scratch repositories with git history (for ``--base`` comparisons)."""

from __future__ import annotations

from pathlib import Path

import git


def commit_all(root: Path, message: str) -> str:
    """Stage everything under ``root`` (initialising a repository if needed) and commit it
    with a fixed identity; returns the commit id."""
    repo = git.Repo.init(root) if not (root / ".git").exists() else git.Repo(root)
    repo.git.add("-A")
    actor = git.Actor("companyos tests", "tests@example.com")
    return repo.index.commit(message, author=actor, committer=actor).hexsha
