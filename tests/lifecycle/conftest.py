"""Scratch repositories with git history for the tenant lifecycle tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from generator import pipeline
from helpers.repo import copy_repo
from helpers.tenants import init_git


@pytest.fixture(scope="session")
def git_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository copied once per session, rendered (so the scratch copy is consistent
    even while rendered/ in the checkout lags behind a template edit) and committed."""
    root = copy_repo(tmp_path_factory.mktemp("git-template") / "repo")
    pipeline.render_to_disk(root)
    init_git(root)
    return root


@pytest.fixture
def git_repo(git_template: Path, tmp_path: Path) -> Path:
    """A scratch repository with its own git history (catalog committed on `main`)."""
    dest = tmp_path / "repo"
    shutil.copytree(git_template, dest, symlinks=True)
    return dest
