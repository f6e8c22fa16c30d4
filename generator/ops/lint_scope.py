"""What ``lint --base REF`` lints: the output files HEAD's commit adds or changes since the
base commit, read from git's objects (the commit CI checked with ``check --base --committed``,
not the checkout), and for checkov the ``.tf`` files of each Terraform root one of them is in
that the changed units and the global unit list (checkov judges a root with its context;
another tenant's files in it, like the org root's, passed when the base merged). Every
other output file is the base's, which lint passed when the base was merged. When lint
itself changed since the base -- its configuration, the generator (its code and vendored
schemas), the pinned tool versions -- nothing of the base's verdict carries over, and every
output file of HEAD is linted.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator import git
from generator.catalog.folders import OUTPUT_DIRS
from generator.output.tree import UNITS_DIR, manifest_files
from generator.output.units import GLOBAL, unit_path

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
        listed = _listed_by_units_in_play(repo, head, prefix, changed)
        whole = {r for r in roots if any(_terraform_root(p) == r and p not in listed for p in changed)}
        for path, mode, sha in git.tree_entries(repo, head, *(prefix + r for r in roots)):
            rel = ours(path)
            root_of = posixpath.dirname(rel)
            if rel.endswith(".tf") and root_of in roots and not _is_link(mode) and (root_of in whole or rel in listed):
                blobs.setdefault(rel, sha)
    return Scope(base, False, frozenset(changed), blobs)


def _listed_by_units_in_play(repo: Any, head: str, prefix: str, changed: Mapping[str, str]) -> set[str]:
    """The files the global unit and the changed units list at HEAD: a changed root's context
    for checkov. A root may hold one file per tenant (the org root: ``tenant-<name>.tf`` and
    ``identity-<name>.tf``, ~11,000 files at 10,000 tenants, which checkov took over 10 minutes
    to judge); a tenant's files refer only to their own unit's and the global unit's, and every
    other tenant's were linted when the base merged. A changed unit's manifest changes with its
    files, so the changed manifests name the units in play (a changed file none of them lists
    makes its root linted whole)."""
    manifests = {p: sha for p, sha in changed.items() if p.startswith(f"{UNITS_DIR}/") and p.endswith(".json")}
    global_path = unit_path(GLOBAL)
    if global_path not in manifests:
        for _, _, sha in git.tree_entries(repo, head, prefix + global_path):
            manifests[global_path] = sha
    listed: set[str] = set()
    for sha in manifests.values():
        listed.update(manifest_files(git.read_blob(repo, sha)))
    return listed


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
