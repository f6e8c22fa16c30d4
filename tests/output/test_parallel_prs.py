"""Parallel pull requests merge (issue 19, item 3): no rendered file, and no manifest, changes
just because another tenant was added or edited, so branches made from one ``main`` merge
without conflicts and the merged tree is what a full render gives (docs/incremental.md)."""

from __future__ import annotations

import shutil
from pathlib import Path

import git as gitpython
import pytest

from generator import pipeline
from generator.output import tree, units
from helpers.repo import REPO, copy_repo
from helpers.tenants import OWNER, init_git

NEW = ("alpha", "bravo")
EDITS = {"hooli": ("monthly_usd: 2500", "monthly_usd: 2600"), "globex": ("owner: ops@globex.example", "owner: platform@globex.example")}


#: The generator's code digest, fixed: other work on the code while this runs must not look
#: like an upgrade between two branches.
CODE = units.code_digest()


@pytest.fixture(autouse=True)
def _fixed_code(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(units, "code_digest", lambda: CODE)


@pytest.fixture
def main(tmp_path: Path) -> Path:
    """The sample rendered in full and committed on ``main`` (with the real .gitignore: the
    unit manifests must be committed, not ignored)."""
    root = copy_repo(tmp_path / "repo")
    shutil.copy(REPO / ".gitignore", root / ".gitignore")
    pipeline.render_to_disk(root, full=True)
    init_git(root)
    return root


def _edit(root: Path, name: str) -> None:
    path = root / "tenants" / f"{name}.yaml"
    old, new = EDITS[name]
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def _changed_global(before: bytes, after: bytes) -> list[str]:
    """The global unit's files whose entry differs between two of its manifests."""
    old, new = units.parse_unit(before), units.parse_unit(after)
    assert old is not None and new is not None
    changed = [
        p
        for p in sorted(set(old.entries) | set(new.entries))
        if (old.entries.get(p), old.sources.get(p), old.shas.get(p)) != (new.entries.get(p), new.sources.get(p), new.shas.get(p))
    ]
    return changed + (["(inputs)"] if old.inputs != new.inputs else [])


def test_unit_manifests_are_committed_not_ignored(main: Path) -> None:
    repo = gitpython.Repo(main)
    tracked = set(repo.git.ls_files(tree.UNITS_DIR).splitlines())
    assert units.unit_path(units.GLOBAL) in tracked and units.unit_path("tenant/hooli") in tracked


def test_two_new_tenants_and_two_edits_merge_without_conflicts(main: Path, companyos) -> None:
    repo = gitpython.Repo(main)
    base = repo.head.commit.hexsha
    global_before = (main / units.unit_path(units.GLOBAL)).read_bytes()
    branches, grown = [], set()
    for name in NEW:
        repo.git.checkout("-q", "main")
        result = companyos("new-tenant", name, "--tier", "standard", *OWNER, "--no-input", cwd=main)
        assert result.code == 0, result.err
        branches.append(f"tenant/{name}")
        # Adding a tenant leaves the fleet-wide record alone: it is what the others merge into.
        grown.update(_changed_global(global_before, (main / units.unit_path(units.GLOBAL)).read_bytes()))
    for name in EDITS:
        repo.git.checkout("-q", "main")
        repo.git.checkout("-q", "-b", f"edit/{name}")
        _edit(main, name)
        _, report = pipeline.render_to_disk(main)
        assert report.written, name
        repo.git.add("-A")
        repo.git.commit("-q", "-m", f"edit {name}")
        branches.append(f"edit/{name}")
    repo.git.checkout("-q", "main")
    conflicts: dict[str, list[str]] = {}
    for branch in branches:
        try:
            repo.git.merge("--no-edit", "-q", branch)
        except gitpython.GitCommandError:
            conflicts[branch] = repo.git.diff("--name-only", "--diff-filter=U").splitlines()
            repo.git.merge("--abort")
    assert not conflicts and not grown, f"conflicts: {conflicts}; fleet-wide files that change when a tenant is added: {sorted(grown)}"
    assert not repo.is_dirty(untracked_files=True)
    assert {f"tenant-{name}.json" for name in NEW} <= {p.name for p in (main / tree.UNITS_DIR).iterdir()}
    full = companyos("check", "--full", cwd=main)
    assert full.code == 0, full.out + full.err
    # CI's check on the merged result: only the four tenants render, every other unit is the base's.
    against_base = companyos("check", "--base", base, cwd=main)
    assert against_base.code == 0, against_base.out + against_base.err
