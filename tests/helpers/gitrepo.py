"""Scratch repositories with git history (for ``--base`` comparisons)."""

from __future__ import annotations

import shutil
from pathlib import Path

import git


def commit_all(root: Path, message: str) -> str:
    """Stage everything under ``root`` (initialising a repository if needed) and commit it
    with a fixed identity; returns the commit id."""
    repo = git.Repo.init(root) if not (root / ".git").exists() else git.Repo(root)
    repo.git.add("-A")
    actor = git.Actor("companyos tests", "tests@example.com")
    return repo.index.commit(message, author=actor, committer=actor).hexsha


def rendered_and_committed(dest: Path, message: str = "base") -> Path:
    """The repository's inputs copied to ``dest``, rendered and committed (a template that
    tests copy with :func:`private_copy`: rendering once is most of the cost)."""
    from generator import pipeline
    from helpers.repo import copy_repo

    root = copy_repo(dest)
    pipeline.render_to_disk(root)
    commit_all(root, message)
    return root


def private_copy(template: Path, dest: Path) -> Path:
    """A copy of ``template``, git history included (links copied as links)."""
    return Path(shutil.copytree(template, dest, symlinks=True))
