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
