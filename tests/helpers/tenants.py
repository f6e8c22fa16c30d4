"""Tenant lifecycle helpers: scratch repositories with a ``main`` branch and the state to
compare before and after a refused command."""

from __future__ import annotations

from pathlib import Path

import git as gitpython

from generator import git

#: The owner options every `new-tenant` call in the tests passes.
OWNER = ["--owner", "team-foo@example.com", "--cost-center", "CC-4242"]


def init_git(root: Path) -> gitpython.Repo:
    """Commit everything under ``root`` on a fresh ``main`` branch."""
    repo = git.scratch_repo(root)  # fixed identity, no signing, no hooks
    repo.git.checkout("-q", "-b", "main")
    repo.git.add("-A")
    repo.git.commit("-q", "-m", "catalog")
    return repo


def git_state(root: Path) -> tuple[str, str, list[str], bool]:
    """(HEAD commit, branch, all branches, dirty?): what a refusal must leave unchanged."""
    repo = gitpython.Repo(root)
    return (repo.head.commit.hexsha, repo.active_branch.name, sorted(h.name for h in repo.heads), repo.is_dirty(untracked_files=True))
