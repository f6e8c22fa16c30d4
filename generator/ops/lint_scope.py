"""What ``lint --base REF`` lints: the output files HEAD's commit adds or changes since the
base commit, read from git's objects (the commit CI checked with ``check --base --committed``,
not the checkout), and for checkov the ``.tf`` files of each Terraform root one of them is in
that the changed units and the global unit list (checkov judges a root with its context;
another tenant's files in it, like the org root's, passed when the base merged). When lint
itself changed since the base (its configuration, the generator and its vendored schemas,
the pinned tool versions), or with ``--committed`` (no base), every output file of HEAD is
linted. ``--batch K/N`` lints one of N parts of the units in play, so a whole lint at
10,000 tenants (~4 hours on one runner) runs as a matrix of jobs (``--format matrix``).
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator import git
from generator.catalog.folders import OUTPUT_DIRS
from generator.errors import UsageError
from generator.model.ci import LINT_UNITS_PER_JOB, MAX_JOBS
from generator.ops import fleet
from generator.output.tree import UNITS_DIR, manifest_files
from generator.output.units import GLOBAL, unit_named, unit_path

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
    #: The part of the units in play this scope is (``lint --batch``), None: all of them.
    batch: Batch | None = None
    #: The files to lint in all batches together (``changed`` of an unbatched scope).
    total: int = 0
    #: Path -> the unit whose manifest lists it, for the files of the units in play.
    owners: Mapping[str, str] = field(default_factory=dict)

    def write(self, repo_root: Path, folder: Path) -> list[str]:
        """Every blob below ``folder`` at its path; the paths, sorted."""
        repo = git.require_repo(repo_root, "lint --base reads the commits from git")
        for rel, sha in self.blobs.items():
            target = folder / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(git.read_blob(repo, sha))
        return sorted(self.blobs)

    def describe(self) -> str:
        if not self.whole:
            what = f"{self.total} output file(s) HEAD added or changed since {self.base}"
        elif self.base == "HEAD":
            what = "every output file of HEAD"
        else:
            what = f"every output file of HEAD: lint changed since {self.base} ({', '.join(self.reasons)})"
        if self.batch is not None and not self.batch.whole:
            what += f"; batch {self.batch} of the units in play: {len(self.changed)} of them judged here"
        return f"{what} ({len(self.blobs)} written, with their Terraform roots)"


def since(root: Path, base: str | None, batch: Batch | None = None) -> Scope:
    """The scope of ``lint --base base`` (``base`` None: ``lint --committed``, every output file
    of HEAD) for the catalog at ``root``, or of one ``batch`` of it (see the module docstring)."""
    repo, head, prefix = _head(root, "lint --base compares commits" if base is not None else "lint --committed reads HEAD's commit")

    def ours(path: str) -> str:
        return path.removeprefix(prefix)

    outputs = [prefix + folder for folder in OUTPUT_DIRS]
    if base is None:
        reasons: tuple[str, ...] = ("no base",)
        label = "HEAD"
    else:
        old = git.resolve_commit(repo, base).hexsha
        reasons = _lint_changes(repo, old, head, prefix)
        label = base
    if reasons:
        changed = {ours(path): sha for path, mode, sha in git.tree_entries(repo, head, *outputs) if not _is_link(mode)}
    else:
        changed = {ours(c.path): c.new_sha for c in git.tree_changes(repo, old, head, *outputs) if c.new_mode and not _is_link(c.new_mode)}
    units = _Units.in_play(repo, head, prefix, changed)
    mine = units.batch(batch or Batch(1, 1))
    picked = {path: sha for path, sha in changed.items() if units.owner(path) in mine}
    blobs = dict(picked)
    roots = sorted({root_of for path in picked if (root_of := _terraform_root(path)) is not None})
    if roots:
        # a changed file no unit lists (a commit whose manifests do not match its files): its root whole
        whole = {_terraform_root(p) for p in picked if units.owner(p) is None}
        context = (mine - {None}) | {GLOBAL}  # None: every file the units in play do not list
        for path, mode, sha in git.tree_entries(repo, head, *(prefix + r for r in roots)):
            rel = ours(path)
            root_of = posixpath.dirname(rel)
            if rel.endswith(".tf") and root_of in roots and not _is_link(mode) and (root_of in whole or units.owner(rel) in context):
                blobs.setdefault(rel, sha)
    return Scope(label, bool(reasons), frozenset(picked), blobs, reasons, batch, len(changed), units.owners)


@dataclass(frozen=True)
class Batch:
    """``--batch K/N``: the K-th of N near-equal parts of the units in play (1-based)."""

    index: int
    count: int

    @classmethod
    def parse(cls, spec: str) -> Batch:
        return cls(*fleet.part(spec, "--batch"))

    @property
    def whole(self) -> bool:
        return self.count == 1

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def jobs_needed(units: int, units_per_job: int = LINT_UNITS_PER_JOB, max_jobs: int = MAX_JOBS) -> int:
    """How many lint jobs ``units`` tenant units in play take: one per ``units_per_job``,
    at least one (the global unit), at most ``max_jobs`` (more units per job beyond that)."""
    if units_per_job < 1 or max_jobs < 1:
        raise UsageError("--units-per-job and --max-jobs must be at least 1")
    return max(1, min(max_jobs, -(-units // units_per_job)))


def matrix(root: Path, base: str | None, units_per_job: int = LINT_UNITS_PER_JOB, max_jobs: int = MAX_JOBS) -> str:
    """One line of JSON for a workflow's matrix: ``{"count", "jobs", "include": [{"batch":
    "K/N", "name", "size"}]}``, ``count`` the tenant units in play. Only git's listings are
    read (which unit manifests HEAD holds or changed), no manifest: a few KB at any size."""
    tenants = _tenants_in_play(root, base)
    return fleet.as_matrix(_cut(tenants, jobs_needed(len(tenants), units_per_job, max_jobs)), len(tenants))


def require_batch(root: Path, base: str | None, batch: Batch, units_per_job: int = LINT_UNITS_PER_JOB, max_jobs: int = MAX_JOBS) -> None:
    """Refuse a ``batch`` whose N is not the matrix's (a stale matrix, or other options):
    its parts would be other units, some of them linted twice and some never."""
    jobs = jobs_needed(len(_tenants_in_play(root, base)), units_per_job, max_jobs)
    if batch.count != jobs:
        raise UsageError(f"--batch {batch}: the units in play make {jobs} batch(es), not {batch.count} (ask `lint --format matrix` again)")


def _tenants_in_play(root: Path, base: str | None) -> list[str]:
    """The tenant units whose manifests HEAD changed since ``base`` (every one at HEAD when lint
    itself changed, or with no base), sorted: what :func:`since` reads as the units in play."""
    repo, head, prefix = _head(root, "lint --format matrix and --batch read HEAD's commit")
    manifests = prefix + UNITS_DIR
    lint_changed = True
    if base is not None:
        old = git.resolve_commit(repo, base).hexsha
        lint_changed = bool(_lint_changes(repo, old, head, prefix))
    if lint_changed:
        paths = [path for path, mode, _ in git.tree_entries(repo, head, manifests) if not _is_link(mode)]
    else:
        paths = [c.path for c in git.tree_changes(repo, old, head, manifests) if c.new_mode and not _is_link(c.new_mode)]
    return sorted(unit for path in paths if (unit := _unit_of_manifest(path.removeprefix(prefix))) not in (None, GLOBAL))


def _lint_changes(repo: Any, old: str, head: str, prefix: str) -> tuple[str, ...]:
    """The lint inputs (:data:`LINT_INPUTS`) that differ between commits ``old`` and ``head``, sorted."""
    changes = git.tree_changes(repo, old, head, *(prefix + p for p in LINT_INPUTS))
    return tuple(sorted({_first_part(c.path.removeprefix(prefix)) for c in changes}))


def _head(root: Path, purpose: str) -> tuple[Any, str, str]:
    """The repository of the catalog at ``root``, HEAD's commit id, and the catalog's folder in
    the repository as a path prefix (empty at its top)."""
    repo = git.require_repo(root, purpose)
    top = git.git_path(repo, root, ".")
    return repo, git.resolve_commit(repo, "HEAD").hexsha, "" if top == "." else f"{top}/"


def _cut(units: list[str], jobs: int) -> list[list[str]]:
    """``units`` (sorted) in ``jobs`` contiguous near-equal parts; the first takes the global unit too."""
    return fleet.cut(units, jobs) + [[] for _ in range(jobs - min(jobs, len(units)))]


@dataclass(frozen=True)
class _Units:
    """Who owns each file in play: path -> unit, from the manifests of the units in play at
    HEAD (the changed ones and the global unit's; every one when every file is linted)."""

    owners: dict[str, str]
    #: The tenant units in play, sorted.
    tenants: list[str]

    @classmethod
    def in_play(cls, repo: Any, head: str, prefix: str, changed: Mapping[str, str]) -> _Units:
        """A root may hold one file per tenant (the org root: ``tenant-<name>.tf`` and
        ``identity-<name>.tf``, ~11,000 files at 10,000 tenants, which checkov took over 10
        minutes to judge); a tenant's files refer only to their own unit's and the global
        unit's, and every other tenant's were linted when the base merged. A changed unit's
        manifest changes with its files, so the changed manifests name the units in play (a
        changed file none of them lists is owned by none: its root is linted whole)."""
        manifests = {p: sha for p, sha in changed.items() if _unit_of_manifest(p) is not None}
        global_path = unit_path(GLOBAL)
        if global_path not in manifests:
            for _, _, sha in git.tree_entries(repo, head, prefix + global_path):
                manifests[global_path] = sha
        owners: dict[str, str] = {}
        for path, sha in sorted(manifests.items()):
            unit = _unit_of_manifest(path)
            assert unit is not None
            owners.setdefault(path, unit)
            for listed in manifest_files(git.read_blob(repo, sha)):
                owners.setdefault(listed, unit)
        return cls(owners, sorted(u for u in map(_unit_of_manifest, manifests) if u not in (None, GLOBAL)))

    def owner(self, path: str) -> str | None:
        return self.owners.get(path)

    def batch(self, batch: Batch) -> set[str | None]:
        """The units of ``batch``: a contiguous part of the tenant units; the first batch also
        has the global unit and the files no unit owns (None)."""
        parts = _cut(self.tenants, batch.count)
        mine: set[str | None] = set(parts[batch.index - 1])
        return mine | {GLOBAL, None} if batch.index == 1 else mine


def _unit_of_manifest(path: str) -> str | None:
    """The unit whose manifest is at ``path`` (``rendered/.companyos-units/<unit>.json``), else None."""
    folder, _, name = path.rpartition("/")
    return unit_named(path) if folder == UNITS_DIR and name.endswith(".json") else None


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
