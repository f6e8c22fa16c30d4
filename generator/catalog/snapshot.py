"""The repository as it was at a base git ref, for the guards that compare against it.

``companyos check --base REF``, ``validate --base REF`` and ``cost --base REF`` need
yesterday's catalog and yesterday's committed output next to today's. We read the blobs
of REF's tree with gitpython and write them into a temporary folder (never the working
tree, never ``git checkout``), then load that folder with today's code. Only regular
files are exported (links are skipped), and paths come from git's own tree, so nothing
can land outside the temporary folder.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from git.exc import GitError
from gitdb.exc import BadName, BadObject

from generator.catalog.yaml_source import parse_yaml
from generator.errors import UsageError
from generator.git import blobs, git_path, require_repo, resolve_commit

#: What a base needs: catalog inputs, templates and the committed output.
EXPORTED = ("catalog", "tenants", "environments", "templates", "rendered")
_REGULAR_FILE_MODES = (0o100644, 0o100755)


@dataclass
class Baseline:
    ref: str
    #: A temporary folder laid out like the repository root at ``ref``.
    root: Path

    def raw(self, pattern: str) -> dict[str, dict[str, Any]]:
        """Parsed YAML of the files matching ``pattern``, by file stem (bad files skipped)."""
        out: dict[str, dict[str, Any]] = {}
        for path in sorted(self.root.glob(pattern)):
            doc, _ = parse_yaml(path.relative_to(self.root).as_posix(), path.read_bytes())
            if doc is not None:
                out[path.stem] = doc.data
        return out

    def file(self, rel: str) -> bytes | None:
        path = self.root / rel
        return path.read_bytes() if path.is_file() else None


def export(root: Path, ref: str, dest: Path) -> None:
    """Write the :data:`EXPORTED` folders of ``ref`` (relative to ``root``) into ``dest``."""
    repo = require_repo(root, "--base compares against a git ref")
    commit = resolve_commit(repo, ref)
    try:
        _export_commit(repo, root, commit, dest)
    except (ValueError, GitError, BadName, BadObject) as exc:
        # An object of the base is not in this clone (a partial or damaged clone): the
        # same usage problem as a missing ref, with the same remedy.
        raise UsageError(f"git ref {ref!r} is only partly in this clone ({exc}); fetch it first (e.g. `git fetch --unshallow`)") from None


def _export_commit(repo: Any, root: Path, commit: Any, dest: Path) -> None:
    for item in EXPORTED:
        rel = git_path(repo, root, item)
        try:
            tree = commit.tree / rel
        except KeyError:
            continue
        if tree.type != "tree":
            continue
        for blob in blobs(tree):
            if blob.mode not in _REGULAR_FILE_MODES:
                continue
            inner = PurePosixPath(blob.path).relative_to(PurePosixPath(rel))
            if any(part in ("", ".", "..") for part in inner.parts):
                continue
            target = dest / item / Path(*inner.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(blob.data_stream.read())


@contextlib.contextmanager
def at(root: Path, ref: str) -> Iterator[Baseline]:
    """``with baseline.at(root, "origin/main") as base: ...`` -- cleaned up afterwards."""
    with tempfile.TemporaryDirectory(prefix="companyos-base-") as tmp:
        export(root, ref, Path(tmp))
        yield Baseline(ref, Path(tmp))
