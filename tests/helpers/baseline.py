"""``check --base`` as CI runs it, and the pull request's forgeries it must refuse."""

from __future__ import annotations

import hashlib
from pathlib import Path

from generator import pipeline
from generator.catalog import snapshot
from generator.output import units


def check_base(repo: Path, ref: str = "HEAD", *, committed: bool = False) -> tuple[pipeline.Build | None, units.Plan, bool, list[str]]:
    """The incremental build against ``ref`` (its plan), then ``check --base``: clean, and
    every path it found changed, missing, stale, unmanaged or left over. ``committed``:
    HEAD's commit is checked, not the working tree (``--committed``)."""
    with snapshot.at(repo, ref, head=committed) as base:
        built, plan = pipeline.build_incremental(repo, base)
        _, status = pipeline.check(repo, full=False, base=base)
    return built, plan, status.clean, [*status.changed, *status.missing, *status.stale, *status.unmanaged, *status.leftover]


def forge(repo: Path, rel: str, data: bytes, unit: str) -> None:
    """Write ``data`` to ``rel`` and its sha256 into ``unit``'s manifest, where the pull
    request records it."""
    old = hashlib.sha256((repo / rel).read_bytes()).hexdigest()
    (repo / rel).write_bytes(data)
    manifest = repo / units.unit_path(unit)
    text = manifest.read_text()
    assert old in text
    manifest.write_text(text.replace(old, hashlib.sha256(data).hexdigest()))


def rendered_base(dest: Path, code: str) -> Path:
    """The sample copied to ``dest``, rendered in full (every unit manifest recorded) with the
    generator's code digest pinned to ``code``, and committed: a base for ``check --base``."""
    import pytest

    from helpers.gitrepo import commit_all
    from helpers.repo import copy_repo

    root = copy_repo(dest)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(units, "code_digest", lambda: code)
        pipeline.render_to_disk(root, full=True)
    commit_all(root, "base")
    return root


def edit_tenant(repo: Path, name: str = "hooli", old: str = "monthly_usd: 2500", new: str = "monthly_usd: 2600") -> None:
    """Change one tenant's catalog file (its unit's inputs)."""
    path = repo / "tenants" / f"{name}.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
