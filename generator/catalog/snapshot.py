"""The repository as it was at a base git ref, for the guards that compare against it.

``companyos check --base REF``, ``validate --base REF`` and ``cost --base REF`` need
yesterday's catalog and yesterday's committed output next to today's. We list REF's tree
with one ``git ls-tree`` and write the catalog inputs into a temporary folder (never the
working tree, never ``git checkout``); a file whose working-tree bytes have REF's blob id is
taken from the working tree (a tenant file is held in memory until a reader asks for it).
The committed output is not written out, nor listed whole: at thousands of tenants it is most
of the repository and a guard reads a small part of it. Only its unit manifests' blob ids are
indexed (they list every other file); any other file's blob id is asked of git when needed,
and a file whose blob id equals today's bytes' is known equal without reading it.
Only regular files count (links are skipped), and paths come from git's own tree, so nothing
can land outside the temporary folder.
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import hashlib
import os
import re
import stat
import tempfile
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from git.exc import GitError
from gitdb.exc import BadName, BadObject

from generator.catalog.folders import INPUT_DIRS, OUTPUT_DIRS
from generator.catalog.yaml_source import MAX_FILE_BYTES, parse_yaml
from generator.errors import UsageError
from generator.git import TreeChange, git_path, read_blob, require_repo, resolve_commit, tree_changes, tree_entries, tree_files, tree_paths

#: Written into the temporary folder: what loading and resolving a catalog reads.
EXPORTED = ("catalog", "tenants", "environments", "templates")
#: The exported folder whose unchanged files are held until asked for (10,000 of them).
TENANTS = "tenants"
#: Read on demand: the committed output.
RENDERED = "rendered"
#: Indexed: the committed output's unit manifests (``output.units``), which list every other file.
UNIT_MANIFESTS = f"{RENDERED}/.companyos-units"
#: The first segments of the output folders: a path under one is read as output.
_OUTPUT_TOPS = frozenset(folder.split("/", 1)[0] for folder in OUTPUT_DIRS)
#: Above this many paths, :meth:`Baseline.blob_ids` lists the output once instead of naming each.
_NAMED_PATHS = 20_000
#: Paths named on one ``git ls-tree`` command line (which stays short).
_PER_COMMAND = 1000
_REGULAR_FILE_MODES = (0o100644, 0o100755)
#: An empty, ``.`` or ``..`` segment anywhere in a relative path.
_UNSAFE = re.compile(r"(?:^|/)\.{0,2}(?:/|$)")


def git_blob_id(data: bytes) -> str:
    """The id git gives a blob of ``data`` (sha1 of ``blob <size>\\0<data>``)."""
    return git_blob_digest(data).hex()


def git_blob_digest(data: bytes) -> bytes:
    """:func:`git_blob_id` as 20 raw bytes (how :class:`Baseline` keeps them)."""
    digest = hashlib.sha1(b"blob %d\0" % len(data), usedforsecurity=False)
    digest.update(data)  # not a copy of ``data`` after the header: at 10,000 tenants ~720 MB of unit manifests
    return digest.digest()


@dataclass(frozen=True)
class _Committed:
    """The base commit's output, through one repository handle: its blobs, its tree listed
    as git streams it, and what moved since it (:meth:`moved`)."""

    repo: Any
    #: ``root``'s path from the repository top ("" at the top): git names paths from there.
    top: str
    commit: str

    def read(self, blob: bytes) -> bytes:
        return read_blob(self.repo, blob.hex())

    def files(self, *paths: str) -> Iterator[tuple[str, bytes]]:
        """(path relative to ``root``, raw blob id) of the regular files at or below each of
        ``paths`` (relative to ``root``), streamed (``git.tree_entries``)."""
        with self._listing():
            for path, mode, sha in tree_entries(self.repo, self.commit, *(self.top + p for p in paths)):
                inner = path[len(self.top) :]
                if mode in _REGULAR_FILE_MODES and path.startswith(self.top) and not _UNSAFE.search(inner):
                    yield inner, bytes.fromhex(sha)

    def paths(self, folder: str) -> Iterator[str]:
        """The paths (relative to ``root``) below ``folder``, streamed (``git.tree_paths``)."""
        with self._listing():
            for path in tree_paths(self.repo, self.commit, self.top + folder):
                if path.startswith(self.top):
                    yield path[len(self.top) :]

    @contextlib.contextmanager
    def _listing(self) -> Iterator[None]:
        try:
            yield
        except (ValueError, GitError, BadName, BadObject) as exc:
            raise UsageError(
                f"git could not list {self.commit[:12]}'s output ({exc}); fetch it first (e.g. `git fetch --unshallow`)"
            ) from None

    def attributes_differ(self, other: str) -> bool:
        """Whether a ``.gitattributes`` that applies to ``rendered/`` differs between this commit
        and ``other`` (an eol or filter attribute would make a checkout's bytes differ from
        the blob's; one inside ``rendered/`` is an unmanaged file: check fails)."""
        folder = self.top + RENDERED
        attributes = [".gitattributes", *(f"{'/'.join(folder.split('/')[:n])}/.gitattributes" for n in range(1, folder.count("/") + 1))]
        return any(_blob_id(self.repo, other, path) != _blob_id(self.repo, self.commit, path) for path in attributes)

    def head_later(self, head: str) -> Callable[[], HeadProof | None]:
        """``check --base --committed``: what differs between this (the base) commit and
        ``head`` below the output folders, from git's tree objects (``git diff-tree``: no
        file is read or stat'ed), and where the working tree differs from ``head`` in the
        catalog inputs or the unit manifests (one ``git status`` over those ~10,000 files at
        10,000 tenants, not over the 800,000 output files). Both start now and run while the
        catalog loads; the returned call reads their answers (None: git could not answer)."""
        repo, top = self.repo, self.top
        try:
            changes = tree_changes(repo, self.commit, head, *(top + folder for folder in OUTPUT_DIRS))
            status = repo.git.status(
                "--porcelain=v1", "-z", "--untracked-files=all", "--ignored=matching", "--no-renames", "--",
                *(top + folder for folder in (*INPUT_DIRS, UNIT_MANIFESTS)),
                as_process=True,
            )  # fmt: skip
        except (ValueError, GitError, BadName, BadObject):
            return _no_head_proof

        def finish() -> HeadProof | None:
            try:
                changed = {c.path.removeprefix(top): c for c in changes if c.path.startswith(top)}
                answer = status.proc.stdout.read()
                status.wait()
            except (ValueError, GitError, BadName, BadObject):
                return None
            # records "XY path" (no renames: one path each)
            worktree = frozenset(r[3:].decode("utf-8", "surrogateescape").removeprefix(top) for r in answer.split(b"\0") if r)
            return HeadProof(changed, worktree)

        return finish

    def moved_later(self) -> Callable[[], frozenset[str] | None]:
        """``rendered/`` paths (relative to ``root``) whose working-tree bytes may not be the
        base's: ``git diff-tree`` between the base and HEAD lists them (another blob id or mode,
        added or removed), or ``git diff HEAD`` (which re-hashes any file whose stat changed)
        lists a change in the working tree. Any other file the base has is on disk with the
        base's bytes, proven without reading it; in CI -- a fresh checkout of the pull request --
        that is every file the PR did not touch. None (nothing proven) when a ``.gitattributes``
        differs from the base's (an eol or filter attribute would make the checkout's bytes
        differ from the blob's), or when git cannot answer.
        git starts now (``git diff HEAD`` stats every output file, ~3 s at 10,000 tenants, on
        one thread: the catalog loads on the other core meanwhile, where git's second thread
        slowed it by as much as it saved); the returned call reads its answer."""
        repo, folder = self.repo, self.top + RENDERED
        try:
            head = repo.head.commit.hexsha
            if self.attributes_differ(head):
                return _nothing_proven
            running = [
                repo.git.diff_tree("-r", "--name-only", "-z", "--no-renames", self.commit, head, "--", folder, as_process=True),
                repo.git(c="core.preloadIndex=false").diff("--name-only", "-z", "--no-renames", head, "--", folder, as_process=True),
            ]
        except (ValueError, GitError, BadName, BadObject):
            return _nothing_proven

        def finish() -> frozenset[str] | None:
            try:
                answers = [process.proc.stdout.read() for process in running]  # one after the other: each pipe is drained
                for process in running:
                    process.wait()  # GitCommandError when git failed
            except (ValueError, GitError, BadName, BadObject):
                return None
            return frozenset(
                p.decode("utf-8", "surrogateescape").removeprefix(self.top) for answer in answers for p in answer.split(b"\0") if p
            )

        return finish


@dataclass(frozen=True)
class HeadProof:
    """What git says of HEAD's commit against the base (``check --base --committed``)."""

    #: Output paths (relative to the root) whose mode or blob id differs between the base
    #: and HEAD, or that only one of them has. Every other output file of HEAD is the base's.
    changes: dict[str, TreeChange]
    #: Catalog inputs and unit manifests (relative to the root) the working tree holds
    #: otherwise than HEAD: changed, staged, untracked or ignored.
    worktree: frozenset[str]

    def inputs_changed(self) -> list[str]:
        """The catalog input files the working tree holds otherwise than HEAD, sorted."""
        return sorted(p for p in self.worktree if p.split("/", 1)[0] in INPUT_DIRS)


@dataclass
class Baseline:
    ref: str
    #: A temporary folder laid out like the repository root at ``ref`` (catalog inputs only).
    root: Path
    #: The unit manifests at ``ref`` (``rendered/.companyos-units/...``) -> blob id, 20 raw
    #: bytes. Not every output file: at 10,000 tenants an index of 800,000 paths was ~170 MB
    #: of ``check --base``; another file's id is asked of git (:meth:`blob_ids`).
    manifests: dict[str, bytes] = field(default_factory=dict)
    #: The base commit's output (blobs, listings, what moved since); None without a repository.
    committed: _Committed | None = field(default=None, repr=False)
    #: The working tree compared with the base (:meth:`_Committed.moved`).
    worktree: Path | None = None
    #: HEAD's output, when the commit is checked rather than the working tree (``check
    #: --base --committed``): its files are compared by blob id, never read from disk.
    head: _Committed | None = field(default=None, repr=False)
    #: Base tenant files (``tenants/...``) not written into :attr:`root`: the working tree holds
    #: their bytes. :meth:`catalog_root` writes the ones a reader asks for.
    held: dict[str, bytes] = field(default_factory=dict, repr=False)
    #: git comparing the working tree with the base, started with the baseline; read once by :attr:`_moved`.
    _moving: Callable[[], frozenset[str] | None] = field(init=False, repr=False, compare=False)
    #: The base's tenant files whose working-tree bytes are the base's (those :attr:`held` at
    #: the start): every other tenant file of the working tree changed or is new.
    same_tenant_files: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.same_tenant_files = frozenset(self.held)
        # started now, it runs while the catalog loads (an answer nobody asks for: git is stopped when this is collected)
        self._head_proving = _no_head_proof
        if self.committed is None or self.worktree is None:
            self._moving = _nothing_proven
        elif self.head is None:
            self._moving = self.committed.moved_later()
        else:
            self._head_proving = self.committed.head_later(self.head.commit)
            same_attributes = not self.committed.attributes_differ(self.head.commit)
            self._moving = self._moved_from_head if same_attributes else _nothing_proven

    @functools.cached_property
    def head_proof(self) -> HeadProof | None:
        """With :attr:`head`: git's answer (:meth:`_Committed.head_later`); else None."""
        return self._head_proving()

    def require_head(self) -> HeadProof:
        """With :attr:`head`: git's answer, or a UsageError when git could not give one."""
        proof = self.head_proof
        if proof is None:
            raise UsageError(f"git could not compare HEAD with {self.ref} (fetch both first, e.g. `git fetch --unshallow`)")
        return proof

    def require_committed_inputs(self) -> None:
        """With :attr:`head` (``--committed``): the catalog read from the working tree must be
        HEAD's, else the render would be checked against a commit it was not made from."""
        if self.head is None:
            return
        changed = self.require_head().inputs_changed()
        if changed:
            shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
            raise UsageError(
                f"--committed checks HEAD's commit, but the working tree's catalog differs from it ({shown}); "
                "commit or stash the change, or check the working tree (drop --committed)"
            )

    def head_file(self, rel: str) -> bytes | None:
        """With :attr:`head`: HEAD's bytes of output file ``rel`` (a changed file's blob, else the base's)."""
        change = self.require_head().changes.get(rel)
        if change is None:
            return self.file(rel)
        if change.new_mode not in _REGULAR_FILE_MODES or self.head is None:
            return None
        return self.head.read(bytes.fromhex(change.new_sha))

    def _moved_from_head(self) -> frozenset[str] | None:
        """With :attr:`head`: the output paths whose working-tree bytes may not be the base's:
        those HEAD changed, and the unit manifests the working tree changed since HEAD (the
        only output files read from the working tree then: the plan's one read of each)."""
        proof = self.head_proof
        return None if proof is None else frozenset((*proof.changes, *proof.worktree))

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
        read and hash them). The files are the ones the base's manifest lists: the base's
        own files (its manifests matched its tree when it was checked), so git need only
        prove that none of them moved since. One that is gone shows in the walk of the tree.
        With :attr:`head` (``--committed``) git proves it of HEAD's commit from its tree objects
        alone: neither the manifest nor a file it lists is among HEAD's changes since the base."""
        if self.head is not None:  # HEAD's files, not the working tree's: git's tree objects alone
            proof = self.head_proof
            changes = None if proof is None else proof.changes
            return changes is not None and unit in self.manifests and unit not in changes and changes.keys().isdisjoint(listed)
        moved = self._moved
        return moved is not None and unit in self.manifests and unit not in moved and moved.isdisjoint(listed)

    def proven(self, paths: Iterable[str]) -> frozenset[str]:
        """Those of ``paths`` (unit manifests) that git proves are on disk with the base's bytes."""
        moved = self._moved
        return frozenset() if moved is None else frozenset(p for p in paths if p in self.manifests and p not in moved)

    @functools.cached_property
    def _moved(self) -> frozenset[str] | None:
        return self._moving()

    def unit_manifests(self) -> list[str]:
        """The base's unit manifests (paths), sorted."""
        return sorted(p for p in self.manifests if p.endswith(".json"))

    def paths(self, prefix: str) -> Iterator[str]:
        """The paths of the base's output below ``prefix``, streamed from git, unsorted (links
        and submodules too: :meth:`blob_ids` answers only for regular files)."""
        if self.committed is None:
            return iter(())
        start = prefix.rstrip("/") + "/"
        return (path for path in self.committed.paths(prefix.rstrip("/")) if path.startswith(start))

    def blob_ids(self, paths: Collection[str]) -> dict[str, bytes]:
        """Output path -> its raw blob id at the base, for those of ``paths`` the base has: the
        manifests from the index, the others in one listing (of the named paths, or of the whole
        output when there are many)."""
        found = {p: self.manifests[p] for p in paths if p in self.manifests}
        others = [p for p in paths if p not in found and p.split("/", 1)[0] in _OUTPUT_TOPS]
        if self.committed is None or not others:
            return found
        if len(others) > _NAMED_PATHS:
            wanted = set(others)
            found.update((path, blob) for path, blob in self.committed.files(RENDERED) if path in wanted)
        else:
            for at in range(0, len(others), _PER_COMMAND):
                chunk = others[at : at + _PER_COMMAND]
                named = set(chunk)
                found.update((path, blob) for path, blob in self.committed.files(*chunk) if path in named)
        return found

    def outputs(self, paths: Collection[str]) -> Iterator[tuple[str, bytes]]:
        """(path, bytes) of those of ``paths`` the base has, in the order given: one question
        to git for their blob ids, then each read (:meth:`output`)."""
        ids = self.blob_ids(paths)
        for path in paths:
            blob = ids.get(path)
            data = self.output(path, blob) if blob is not None else None
            if data is not None:
                yield path, data

    def unchanged(self, files: Mapping[str, bytes]) -> frozenset[str]:
        """Those of ``files``' paths whose bytes are the base's (by blob id: nothing is read)."""
        ids = self.blob_ids(files.keys())
        return frozenset(p for p, data in files.items() if ids.get(p) == git_blob_digest(data))

    def output(self, rel: str, blob: bytes, *, hashed: bool = True) -> bytes | None:
        """The bytes of the base's output file ``rel`` with blob id ``blob``: the working tree's
        when git proves them the base's (a plain read, checked against ``blob`` unless not
        ``hashed``: :meth:`proven_output`), else the object's."""
        moved = self._moved
        if moved is not None and rel not in moved and self.worktree is not None:
            data = _regular_file(os.path.join(self.worktree, rel))
            if data is not None and (not hashed or git_blob_digest(data) == blob):
                return data
        return self.committed.read(blob) if self.committed is not None else None

    def proven_output(self, rel: str) -> bytes | None:
        """The base's bytes of output file ``rel``, like :meth:`file`, but read from the working
        tree without hashing them when git proves them the base's (the base has ``rel`` among
        its unit manifests and git lists no change to it: :meth:`_Committed.moved_later`). That
        proof is the one that vouches for the 800,000 files the manifests list, which are never
        read; hashing the ~720 MB of manifests again was ~0.45 s of ``check --base`` at 10,000
        tenants x 3. For the unit plan's one read of each manifest (``units.BaseCommit``); a
        manifest read again later goes through :meth:`file`, checked by its blob id."""
        blob = self.manifests.get(rel)
        return self.output(rel, blob, hashed=False) if blob is not None else self.file(rel)

    def stored(self, rel: str) -> bytes | None:
        """The base's bytes of unit manifest ``rel`` from git's object store, without waiting
        for git's proof of the working tree (:meth:`_Committed.moved_later`, ~1.7 s of lstat at
        10,000 tenants x 3): for a guess made while that runs (``units.foreseen``)."""
        blob = self.manifests.get(rel)
        return None if blob is None or self.committed is None else self.committed.read(blob)

    def same(self, rel: str, data: bytes) -> bool:
        """Whether ``rel`` at ``ref`` holds exactly ``data`` (by blob id: nothing is read)."""
        return rel in self.unchanged({rel: data})

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
        if rel.split("/", 1)[0] in _OUTPUT_TOPS:
            return next((data for _, data in self.outputs((rel,))), None)
        if rel in self.held:
            return self.held[rel]
        path = self.root / rel
        return path.read_bytes() if path.is_file() else None


def _nothing_proven() -> frozenset[str] | None:
    return None


def _no_head_proof() -> HeadProof | None:
    return None


def _stem(rel: str) -> str:
    return PurePosixPath(rel).stem


def _matches(rel: str, pattern: str) -> bool:
    """``rel`` matches the glob ``pattern`` as ``Path.glob`` would (same number of parts). With
    as many slashes on both sides a wildcard cannot take one (each of the pattern's must match
    one of ``rel``'s), so fnmatch's whole-string match is the part-by-part one: at 10,000
    tenants a ``PurePosixPath`` per held file was ~0.3 s of ``check --base``."""
    return rel.count("/") == pattern.count("/") and fnmatch.fnmatchcase(rel, pattern)


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


def export(root: Path, ref: str, dest: Path) -> tuple[dict[str, bytes], _Committed, dict[str, bytes]]:
    """Write the :data:`EXPORTED` folders of ``ref`` (relative to ``root``) into ``dest``,
    except the tenant files the working tree holds with the same bytes (returned, held);
    return the index of its :data:`UNIT_MANIFESTS` blob ids by repository-relative path, the
    commit's output and the held files."""
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
        index = {f"{UNIT_MANIFESTS}/{inner}": bytes.fromhex(sha) for inner, sha in _files(repo, root, commit.hexsha, UNIT_MANIFESTS)}
    except (ValueError, GitError, BadName, BadObject) as exc:
        # An object of the base is not in this clone (a partial or damaged clone): the
        # same usage problem as a missing ref, with the same remedy.
        raise UsageError(f"git ref {ref!r} is only partly in this clone ({exc}); fetch it first (e.g. `git fetch --unshallow`)") from None
    os.makedirs(f"{top}{TENANTS}", exist_ok=True)  # a base with every tenant file held still has the folder
    return index, _Committed(repo, git_path(repo, root, RENDERED).removesuffix(RENDERED), commit.hexsha), held


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


def _blob_id(repo: Any, commit: str, path: str) -> str:
    """The blob id of ``path`` at ``commit``, or "" when there is none."""
    found: str = repo.git.rev_parse("--verify", "--quiet", f"{commit}:{path}", with_exceptions=False)
    return found.strip()


@contextlib.contextmanager
def at(root: Path, ref: str, *, head: bool = False) -> Iterator[Baseline]:
    """``with baseline.at(root, "origin/main") as base: ...`` -- cleaned up afterwards.
    ``head``: compare HEAD's commit with ``ref``, not the working tree (``--committed``)."""
    with tempfile.TemporaryDirectory(prefix="companyos-base-") as tmp:
        manifests, committed, held = export(root, ref, Path(tmp))
        checked = _head_of(committed) if head else None
        yield Baseline(ref, Path(tmp), manifests, committed, root, held=held, head=checked)


def _head_of(base: _Committed) -> _Committed:
    """HEAD's output, through the base's repository handle."""
    try:
        commit = base.repo.head.commit.hexsha
    except (ValueError, GitError, BadName, BadObject):
        raise UsageError("--committed checks HEAD's commit, and this repository has none yet; commit first") from None
    return _Committed(base.repo, base.top, commit)
