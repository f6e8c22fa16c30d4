"""The repository as it was at a base git ref, for the guards that compare against it.

``companyos check --base REF``, ``validate --base REF`` and ``cost --base REF`` need
yesterday's catalog and yesterday's committed output next to today's. We list REF's tree
with one ``git ls-tree`` and write the catalog inputs into a temporary folder (never the
working tree, never ``git checkout``); a file whose working-tree bytes have REF's blob id is
taken from the working tree (a tenant file is held in memory until a reader asks for it).
The committed output is not written out: at thousands of tenants it is most of the
repository and a guard reads a small part of it, so its blobs are indexed by path and read
on demand, and a file whose blob id equals today's bytes' is known equal without reading it.
Only regular files count (links are skipped), and paths come from git's own tree, so nothing
can land outside the temporary folder.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import stat
import tempfile
from collections.abc import Callable, Collection, Container, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from git.exc import GitError
from gitdb.exc import BadName, BadObject

from generator.catalog.yaml_source import MAX_FILE_BYTES, parse_yaml
from generator.errors import UsageError
from generator.git import git_path, read_blob, require_repo, resolve_commit, tree_files

#: Written into the temporary folder: what loading and resolving a catalog reads.
EXPORTED = ("catalog", "tenants", "environments", "templates")
#: The exported folder whose unchanged files are held until asked for (10,000 of them).
TENANTS = "tenants"
#: Indexed, read on demand: the committed output.
RENDERED = "rendered"
_REGULAR_FILE_MODES = (0o100644, 0o100755)
#: An empty, ``.`` or ``..`` segment anywhere in a relative path.
_UNSAFE = re.compile(r"(?:^|/)\.{0,2}(?:/|$)")


def git_blob_id(data: bytes) -> str:
    """The id git gives a blob of ``data`` (sha1 of ``blob <size>\\0<data>``)."""
    return _blob_digest(data).hex()


def _blob_digest(data: bytes) -> bytes:
    """:func:`git_blob_id` as 20 raw bytes (how :attr:`Baseline.rendered` keeps them)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).digest()


@dataclass
class Baseline:
    ref: str
    #: A temporary folder laid out like the repository root at ``ref`` (catalog inputs only).
    root: Path
    #: ``rendered/...`` path at ``ref`` -> its blob id, 20 raw bytes (read when asked for; at
    #: 10,000 tenants 800,000 ids as hex strings were ~29 MB more of ``check --base``).
    rendered: dict[str, bytes] = field(default_factory=dict)
    #: Reads a blob by its raw id (the repository's object store).
    read: Callable[[bytes], bytes] | None = field(default=None, repr=False)
    #: The working tree compared with the base, and the base's commit (:func:`unchanged_outputs`).
    worktree: Path | None = None
    commit: str = ""
    #: Base tenant files (``tenants/...``) not written into :attr:`root`: the working tree holds
    #: their bytes. :meth:`catalog_root` writes the ones a reader asks for.
    held: dict[str, bytes] = field(default_factory=dict, repr=False)

    def catalog_root(self, tenants: Collection[str] | None = None) -> Path:
        """:attr:`root` with every held file written (``tenants``: only these tenants' files):
        at 10,000 tenants, creating the files nobody reads was most of the export."""
        for rel in sorted(self.held):
            if tenants is None or (_stem(rel) in tenants and rel.count("/") == 1):
                target = self.root / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(self.held.pop(rel))
        return self.root

    def tenant_names(self) -> frozenset[str]:
        """The stems of the base's tenant files (``tenants/*.yaml`` or ``.yml``), written or held."""
        written = (p.stem for p in (*self.root.glob("tenants/*.yaml"), *self.root.glob("tenants/*.yml")))
        return frozenset((*written, *(_stem(rel) for rel in self.held if rel.count("/") == 1 and rel.endswith((".yaml", ".yml")))))

    def vouch(self, unit: str, listed: Iterable[str]) -> bool:
        """For ``check --base``'s unit plan: whether the base unit's manifest and every file
        it lists are on disk with the base's bytes as git proves it (nothing is read; else
        read and hash them)."""
        same = self._same_on_disk
        return unit in same and all(rel in same for rel in listed)

    def proven(self, paths: Iterable[str]) -> frozenset[str]:
        """Those of ``paths`` that git proves are on disk with the base's bytes (:func:`unchanged_outputs`)."""
        same = self._same_on_disk
        return frozenset(p for p in paths if p in same)

    @functools.cached_property
    def _same_on_disk(self) -> Container[str]:
        return unchanged_outputs(self.worktree, self.rendered, self.commit) if self.worktree is not None else frozenset()

    def paths(self, prefix: str) -> list[str]:
        """The committed output's paths under ``prefix`` (``rendered/...``), sorted."""
        start = prefix.rstrip("/") + "/"
        return sorted(p for p in self.rendered if p.startswith(start))

    def same(self, rel: str, data: bytes) -> bool:
        """Whether ``rel`` at ``ref`` holds exactly ``data`` (by blob id: nothing is read)."""
        sha = self.rendered.get(rel)
        return sha is not None and sha == _blob_digest(data)

    def raw(self, pattern: str, *, changed_only: bool = False) -> dict[str, dict[str, Any]]:
        """Parsed YAML of the files matching ``pattern``, by file stem (bad files skipped).
        ``changed_only``: a file the working tree holds with the same bytes is listed but not
        parsed (``{}``), for a caller that compares only what changed (10,000 tenant files)."""
        out: dict[str, dict[str, Any]] = {}
        found = [(path.relative_to(self.root).as_posix(), path.read_bytes(), False) for path in self.root.glob(pattern)]
        found += [(rel, data, True) for rel, data in self.held.items() if _matches(rel, pattern)]
        for rel, data, held in sorted(found):
            if changed_only and self.worktree is not None and (held or _regular_file(os.path.join(self.worktree, rel)) == data):
                out[_stem(rel)] = {}
                continue
            doc, _ = parse_yaml(rel, data)
            if doc is not None:
                out[_stem(rel)] = doc.data
        return out

    def file(self, rel: str) -> bytes | None:
        if rel.startswith(RENDERED + "/"):
            if self.worktree is not None and rel in self._same_on_disk:
                with contextlib.suppress(OSError):  # git proved these bytes the base's: a plain read
                    return (self.worktree / rel).read_bytes()
            sha = self.rendered.get(rel)
            return self.read(sha) if sha is not None and self.read is not None else None
        if rel in self.held:
            return self.held[rel]
        path = self.root / rel
        return path.read_bytes() if path.is_file() else None


def _stem(rel: str) -> str:
    return PurePosixPath(rel).stem


def _matches(rel: str, pattern: str) -> bool:
    """``rel`` matches the glob ``pattern`` as ``Path.glob`` would (same number of parts)."""
    return rel.count("/") == pattern.count("/") and PurePosixPath(rel).match(pattern)


def _regular_file(path: str) -> bytes | None:
    """The bytes of a regular file of at most :data:`MAX_FILE_BYTES` (never a link, a FIFO or
    a folder), or None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_FILE_BYTES:
            return None
        return os.read(fd, st.st_size + 1)
    except OSError:
        return None
    finally:
        os.close(fd)


def export(root: Path, ref: str, dest: Path) -> tuple[dict[str, bytes], Callable[[bytes], bytes], str, dict[str, bytes]]:
    """Write the :data:`EXPORTED` folders of ``ref`` (relative to ``root``) into ``dest``,
    except the tenant files the working tree holds with the same bytes (returned, held);
    return the index of its :data:`RENDERED` blob ids by repository-relative path, the blob
    reader, the commit and the held files."""
    repo = require_repo(root, "--base compares against a git ref")
    commit = resolve_commit(repo, ref)
    made: set[str] = set()  # folders created so far (a Path and a mkdir per file cost more than the write)
    top = os.path.join(os.fspath(dest), "")
    here = os.path.join(os.fspath(root), "")
    held: dict[str, bytes] = {}
    try:
        for item in EXPORTED:
            for inner, sha in _files(repo, root, commit.hexsha, item):
                # most of 10,000 tenant files are today's bytes: known by blob id, no object read
                data = _regular_file(f"{here}{item}/{inner}")
                if data is None or git_blob_id(data) != sha:
                    data = read_blob(repo, sha)
                elif item == TENANTS:
                    held[f"{item}/{inner}"] = data  # written only if a reader asks (Baseline.catalog_root)
                    continue
                target = f"{top}{item}/{inner}"
                folder = target.rpartition("/")[0]
                if folder not in made:
                    os.makedirs(folder, exist_ok=True)
                    made.add(folder)
                with open(target, "wb") as out:
                    out.write(data)
        index = {f"{RENDERED}/{inner}": bytes.fromhex(sha) for inner, sha in _files(repo, root, commit.hexsha, RENDERED)}
    except (ValueError, GitError, BadName, BadObject) as exc:
        # An object of the base is not in this clone (a partial or damaged clone): the
        # same usage problem as a missing ref, with the same remedy.
        raise UsageError(f"git ref {ref!r} is only partly in this clone ({exc}); fetch it first (e.g. `git fetch --unshallow`)") from None
    os.makedirs(f"{top}{TENANTS}", exist_ok=True)  # a base with every tenant file held still has the folder
    return index, lambda blob: read_blob(repo, blob.hex()), commit.hexsha, held


def _files(repo: Any, root: Path, commit: str, item: str) -> Iterator[tuple[str, str]]:
    """(path inside ``item``, blob id) of every regular file of folder ``item`` at ``commit``
    (plain string work: a Path per entry is most of the cost at 80,000 files)."""
    rel = git_path(repo, root, item)
    prefix = rel + "/"
    for path, mode, sha in tree_files(repo, commit, rel):
        if mode not in _REGULAR_FILE_MODES or not path.startswith(prefix):
            continue  # `rel` itself is a file, not a folder
        inner = path[len(prefix) :]
        if _UNSAFE.search(inner):
            continue  # a path that could leave the folder (git does not store one; a forged tree could)
        yield inner, sha


def unchanged_outputs(root: Path, base: Mapping[str, bytes], base_commit: str) -> Container[str]:
    """``rendered/`` files (relative to ``root``) whose working-tree bytes are the base's,
    proven by git without reading them: ``git diff-tree`` between the base and HEAD does not
    list the path (same blob id and mode), and ``git diff HEAD`` (which re-hashes any file
    whose stat changed) lists no change to it in the working tree. In CI -- a fresh checkout
    of the pull request -- that is every file the PR did not touch. Nothing when a
    ``.gitattributes`` differs from the base's (an eol or filter attribute would make the
    checkout's bytes differ from the blob's), or when git cannot answer. A view over ``base``
    less the few paths git lists, not a copy (800,000 paths at 10,000 tenants: ~32 MB)."""
    try:
        repo = require_repo(root, "--base compares against a git ref")
        head = repo.head.commit.hexsha
        folder = git_path(repo, root, RENDERED)
        attributes = [".gitattributes", *(f"{'/'.join(folder.split('/')[:n])}/.gitattributes" for n in range(1, folder.count("/") + 1))]
        for path in attributes:  # the ones that apply to rendered/ (one inside it is an unmanaged file: check fails)
            if _blob_id(repo, head, path) != _blob_id(repo, base_commit, path):
                return frozenset()
        top = folder.removesuffix(RENDERED)  # root's path from the repository top
        committed = repo.git.diff_tree("-r", "--name-only", "-z", "--no-renames", base_commit, head, "--", folder, stdout_as_string=False)
        changed = repo.git.diff("--name-only", "-z", "--no-renames", head, "--", folder, stdout_as_string=False)
        moved = {p.decode("utf-8", "surrogateescape").removeprefix(top) for p in (*committed.split(b"\0"), *changed.split(b"\0")) if p}
    except (ValueError, GitError, BadName, BadObject, UsageError):
        return frozenset()
    return _Unmoved(base, frozenset(moved))


class _Unmoved(Container[str]):
    """The paths of ``base`` that are not in ``moved``."""

    __slots__ = ("_base", "_moved")

    def __init__(self, base: Mapping[str, bytes], moved: frozenset[str]) -> None:
        self._base, self._moved = base, moved

    def __contains__(self, item: object) -> bool:
        return item in self._base and item not in self._moved


def _blob_id(repo: Any, commit: str, path: str) -> str:
    """The blob id of ``path`` at ``commit``, or "" when there is none."""
    found: str = repo.git.rev_parse("--verify", "--quiet", f"{commit}:{path}", with_exceptions=False)
    return found.strip()


@contextlib.contextmanager
def at(root: Path, ref: str) -> Iterator[Baseline]:
    """``with baseline.at(root, "origin/main") as base: ...`` -- cleaned up afterwards."""
    with tempfile.TemporaryDirectory(prefix="companyos-base-") as tmp:
        rendered, read, commit, held = export(root, ref, Path(tmp))
        yield Baseline(ref, Path(tmp), rendered, read, root, commit, held)
