"""What ``lint --base REF`` lints: the output files HEAD's commit adds or changes since the
base commit, read from git's objects (the commit CI checked with ``check --base --committed``,
not the checkout), and for checkov every ``.tf`` file of each Terraform root one of them is
in (checkov judges a root as a whole). Every other output file is the base's, which lint
passed when the base was merged. When lint itself changed since the base -- its
configuration, the generator (its code and vendored schemas), the pinned tool versions --
nothing of the base's verdict carries over, and every output file of HEAD is linted.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from pathlib import Path

from generator import git
from generator.catalog.folders import OUTPUT_DIRS

#: What lint's verdict depends on besides the output (paths from the catalog root).
LINT_INPUTS = ("catalog/lint.yaml", "generator", "requirements", "pyproject.toml", "Makefile")
#: Where the Terraform roots are: ``rendered/terraform/<env>/<root>/`` (and ``org``).
TERRAFORM = "rendered/terraform/"


@dataclass(frozen=True)
class Scope:
    """The files to lint (paths from the catalog root) and the blobs to write for them."""

    base: str
    #: Every output file of HEAD is linted (lint itself changed since the base).
    whole: bool
    #: The files the tools judge one by one (added or changed since the base).
    changed: frozenset[str]
    #: Path -> blob id of every file written for the tools (``changed`` and their roots' ``.tf``).
    blobs: dict[str, str]
    #: The lint inputs that differ from the base (why ``whole``).
    reasons: tuple[str, ...] = ()

    def write(self, repo_root: Path, folder: Path) -> list[str]:
        """Every blob below ``folder`` at its path; the paths, sorted."""
        repo = git.require_repo(repo_root, "lint --base reads the commits from git")
        for rel, sha in self.blobs.items():
            target = folder / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(git.read_blob(repo, sha))
        return sorted(self.blobs)

    def describe(self) -> str:
        if self.whole:
            return f"every output file of HEAD: lint changed since {self.base} ({', '.join(self.reasons)})"
        return f"{len(self.changed)} output file(s) HEAD added or changed since {self.base} ({len(self.blobs)} written, with their Terraform roots)"


def since(root: Path, base: str) -> Scope:
    """The scope of ``lint --base base`` for the catalog at ``root`` (see the module docstring)."""
    repo = git.require_repo(root, "lint --base compares commits")
    old = git.resolve_commit(repo, base).hexsha
    head = git.resolve_commit(repo, "HEAD").hexsha
    top = git.git_path(repo, root, ".")
    prefix = "" if top == "." else f"{top}/"

    def ours(path: str) -> str:
        return path.removeprefix(prefix)

    reasons = tuple(sorted({_first_part(ours(c.path)) for c in git.tree_changes(repo, old, head, *(prefix + p for p in LINT_INPUTS))}))
    outputs = [prefix + folder for folder in OUTPUT_DIRS]
    if reasons:
        every = {ours(path): sha for path, mode, sha in git.tree_entries(repo, head, *outputs) if not _is_link(mode)}
        return Scope(base, True, frozenset(every), every, reasons)
    changed = {ours(c.path): c.new_sha for c in git.tree_changes(repo, old, head, *outputs) if c.new_mode and not _is_link(c.new_mode)}
    blobs = dict(changed)
    roots = sorted({root_of for path in changed if (root_of := _terraform_root(path)) is not None})
    if roots:
        for path, mode, sha in git.tree_entries(repo, head, *(prefix + r for r in roots)):
            rel = ours(path)
            if rel.endswith(".tf") and posixpath.dirname(rel) in roots and not _is_link(mode):
                blobs.setdefault(rel, sha)
    return Scope(base, False, frozenset(changed), blobs)


def _terraform_root(path: str) -> str | None:
    """``rendered/terraform/<env>/<root>`` (or ``rendered/terraform/org``) of a file in one."""
    if not path.startswith(TERRAFORM):
        return None
    parts = path.split("/")
    depth = 3 if parts[2] == "org" else 4
    return "/".join(parts[:depth]) if len(parts) > depth else None


def _first_part(path: str) -> str:
    return path if path in LINT_INPUTS else next((p for p in LINT_INPUTS if path.startswith(f"{p}/")), path)


def _is_link(mode: int) -> bool:
    """A symbolic link (0o120000) or submodule (0o160000): nothing a validator reads as a file."""
    return mode & 0o170000 in (0o120000, 0o160000)
