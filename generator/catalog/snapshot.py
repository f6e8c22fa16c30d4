"""The repository as it was at a base git ref, for the guards that compare against it.

``companyos check --base REF``, ``validate --base REF`` and ``cost --base REF`` need
yesterday's catalog and yesterday's committed output next to today's. We read the blobs
of REF's tree with gitpython and write the catalog inputs into a temporary folder (never
the working tree, never ``git checkout``), then load that folder with today's code. The
committed output is not written out: at thousands of tenants it is most of the repository
and a guard reads a small part of it (the unit manifests, the Argo CD objects, the
Terraform files a change touches), so its blobs are indexed by path and read on demand,
and a file whose blob id equals today's bytes' is known equal without reading it. Only
regular files count (links are skipped), and paths come from git's own tree, so nothing
can land outside the temporary folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from git.exc import GitError
from gitdb.exc import BadName, BadObject

from generator.catalog.yaml_source import parse_yaml
from generator.errors import UsageError
from generator.git import blobs, git_path, require_repo, resolve_commit

#: Written into the temporary folder: what loading and resolving a catalog reads.
EXPORTED = ("catalog", "tenants", "environments", "templates")
#: Indexed, read on demand: the committed output.
RENDERED = "rendered"
_REGULAR_FILE_MODES = (0o100644, 0o100755)


def git_blob_id(data: bytes) -> str:
    """The id git gives a blob of ``data`` (sha1 of ``blob <size>\\0<data>``)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


@dataclass
class Baseline:
    ref: str
    #: A temporary folder laid out like the repository root at ``ref`` (catalog inputs only).
    root: Path
    #: ``rendered/...`` path at ``ref`` -> its blob (gitpython; read when asked for).
    rendered: dict[str, Any] = field(default_factory=dict)

    def paths(self, prefix: str) -> list[str]:
        """The committed output's paths under ``prefix`` (``rendered/...``), sorted."""
        start = prefix.rstrip("/") + "/"
        return sorted(p for p in self.rendered if p.startswith(start))

    def same(self, rel: str, data: bytes) -> bool:
        """Whether ``rel`` at ``ref`` holds exactly ``data`` (by blob id: nothing is read)."""
        blob = self.rendered.get(rel)
        return blob is not None and blob.hexsha == git_blob_id(data)

    def raw(self, pattern: str) -> dict[str, dict[str, Any]]:
        """Parsed YAML of the files matching ``pattern``, by file stem (bad files skipped)."""
        out: dict[str, dict[str, Any]] = {}
        for path in sorted(self.root.glob(pattern)):
            doc, _ = parse_yaml(path.relative_to(self.root).as_posix(), path.read_bytes())
            if doc is not None:
                out[path.stem] = doc.data
        return out

    def file(self, rel: str) -> bytes | None:
        if rel.startswith(RENDERED + "/"):
            blob = self.rendered.get(rel)
            return blob.data_stream.read() if blob is not None else None
        path = self.root / rel
        return path.read_bytes() if path.is_file() else None


def export(root: Path, ref: str, dest: Path) -> dict[str, Any]:
    """Write the :data:`EXPORTED` folders of ``ref`` (relative to ``root``) into ``dest``;
    return the index of its :data:`RENDERED` blobs by repository-relative path."""
    repo = require_repo(root, "--base compares against a git ref")
    commit = resolve_commit(repo, ref)
    try:
        for item in EXPORTED:
            for inner, blob in _blobs(repo, root, commit, item):
                target = dest / item / Path(*inner.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(blob.data_stream.read())
        return {f"{RENDERED}/{inner.as_posix()}": blob for inner, blob in _blobs(repo, root, commit, RENDERED)}
    except (ValueError, GitError, BadName, BadObject) as exc:
        # An object of the base is not in this clone (a partial or damaged clone): the
        # same usage problem as a missing ref, with the same remedy.
        raise UsageError(f"git ref {ref!r} is only partly in this clone ({exc}); fetch it first (e.g. `git fetch --unshallow`)") from None


def _blobs(repo: Any, root: Path, commit: Any, item: str) -> Iterator[tuple[PurePosixPath, Any]]:
    """(path inside ``item``, blob) of every regular file of folder ``item`` at ``commit``."""
    rel = git_path(repo, root, item)
    try:
        tree = commit.tree / rel
    except KeyError:
        return
    if tree.type != "tree":
        return
    for blob in blobs(tree):
        if blob.mode not in _REGULAR_FILE_MODES:
            continue
        inner = PurePosixPath(blob.path).relative_to(PurePosixPath(rel))
        if any(part in ("", ".", "..") for part in inner.parts):
            continue
        yield inner, blob


@contextlib.contextmanager
def at(root: Path, ref: str) -> Iterator[Baseline]:
    """``with baseline.at(root, "origin/main") as base: ...`` -- cleaned up afterwards."""
    with tempfile.TemporaryDirectory(prefix="companyos-base-") as tmp:
        rendered = export(root, ref, Path(tmp))
        yield Baseline(ref, Path(tmp), rendered)
