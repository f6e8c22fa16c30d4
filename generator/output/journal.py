"""A write-ahead journal for the rendered tree: any failure rolls back, any crash is repaired.

``tree.write`` decides everything first (a :class:`Plan`); :func:`apply` records it in
``.companyos/journal.json`` before touching the tree, then stages, installs and commits it.
An exception undoes everything in this process; a killed process leaves the journal, and the
next command's :func:`recover` undoes or finishes it. How and why (the three steps, backups,
no fsync): docs/architecture.md ("Writing").
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from generator.catalog.folders import OUTPUT_DIRS  # every folder render writes into; journal paths lie below one
from generator.errors import UsageError
from generator.output import json_pieces
from generator.output.lock import STATE_DIR

JOURNAL_PATH = f"{STATE_DIR}/journal.json"
DONE_PATH = f"{STATE_DIR}/journal-done.json"
JOURNAL_VERSION = 1
#: Every temporary name in the tree ends so (ignored by git, reported by ``check``).
TMP_SUFFIX = ".companyos-tmp"
BACKUP_SUFFIX = ".companyos-old" + TMP_SUFFIX

_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
#: Temporary siblings: O_NOFOLLOW, so a link planted under a temporary name fails the write
#: instead of redirecting it.
_TMP_FILE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
#: link() failures that mean "this file system has no hard links here", not "refused".
_NO_LINKS = {errno.EXDEV, errno.EMLINK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS}


@dataclass
class Plan:
    """Everything one write will do, as repository-relative paths."""

    #: New files, written in place; an undo deletes them.
    create: list[str] = field(default_factory=list)
    #: Existing files whose bytes change (through a temporary and a backup).
    replace: list[str] = field(default_factory=list)
    #: Files to delete (moved to a backup name until the commit).
    prune: list[str] = field(default_factory=list)
    #: Folders to make, outermost first; an undo removes them again.
    folders: list[str] = field(default_factory=list)
    #: The manifest when it changes (it lands last), and whether it exists now.
    manifest: str | None = None
    manifest_existed: bool = False
    #: Temporary files an earlier, interrupted write of another version left behind.
    leftovers: list[str] = field(default_factory=list)
    pid: int = 0

    @property
    def empty(self) -> bool:
        return not (self.create or self.replace or self.prune or self.manifest or self.leftovers)

    def paths(self) -> Iterator[str]:
        yield from (*self.create, *self.replace, *self.prune, *self.folders, *self.leftovers)
        if self.manifest is not None:
            yield self.manifest


def tmp_of(path: str) -> str:
    return path + TMP_SUFFIX


def backup_of(path: str) -> str:
    return path + BACKUP_SUFFIX


# --- file primitives --------------------------------------------------------------------


def write_file(path: str, data: bytes, new: bool) -> None:
    """Write one file with plain descriptors (a buffered file object per file costs more
    than the write itself on a 30,000-file render). A ``new`` one must not exist yet
    (O_EXCL), and is deleted again if its bytes cannot all be written: once this returns
    or raises, a new file exists complete or not at all."""
    write_pieces(path, (data,), new)


def write_pieces(path: str, pieces: Iterable[bytes], new: bool) -> None:
    """:func:`write_file` of the bytes ``pieces`` join to, each written as it is made."""
    fd = os.open(path, _NEW_FILE if new else _TMP_FILE, 0o666)
    try:
        for piece in pieces:
            view = memoryview(piece)
            while view:
                view = view[os.write(fd, view) :]
    except BaseException as exc:
        os.close(fd)
        if new:
            _unlink(path)
        if isinstance(exc, OSError) and exc.filename is None:  # os.write names no file: say which
            raise OSError(exc.errno, exc.strerror, path) from exc
        raise
    os.close(fd)


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _backup(target: str, backup: str) -> None:
    """Keep the old file under ``backup``: a hard link (the target stays in place and readable
    throughout), or a rename where the file system has no hard links. (Leftover backups
    were deleted before the journal was written: an existing one fails the link.)"""
    try:
        os.link(target, backup, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in _NO_LINKS:
            raise
        os.rename(target, backup)


# --- the journal file -------------------------------------------------------------------


def pending(root: Path) -> bool:
    """Whether a write was interrupted (or is running: the caller holds the lock to tell)."""
    base = os.fspath(root)
    return any(os.path.lexists(os.path.join(base, rel)) for rel in (JOURNAL_PATH, DONE_PATH, tmp_of(JOURNAL_PATH)))


def _save(root: Path, plan: Plan) -> None:
    path = os.path.join(os.fspath(root), JOURNAL_PATH)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    # vars(), not asdict(): the lists are JSON already, and a deep copy of 32,000 paths is not free;
    # encoded a piece at a time (a cold render's plan lists 800,000 paths at 10,000 tenants)
    data = json_pieces.pieces({"version": JOURNAL_VERSION, **vars(plan)})
    tmp = tmp_of(path)
    try:
        write_pieces(tmp, data, new=False)
        os.replace(tmp, path)
    except BaseException:
        _unlink(tmp)
        raise


def _load(path: str) -> Plan:
    """The plan in a journal file; refuses anything that is not one of ours, or that names
    a path outside the output folders (a journal is trusted to delete files)."""
    try:
        with open(path, "rb") as fh:
            raw = json.loads(fh.read().decode("utf-8"))
        if not isinstance(raw, dict) or raw.pop("version", None) != JOURNAL_VERSION:
            raise ValueError("not a companyos journal of this version")
        plan = Plan(**raw)
        for rel in plan.paths():
            if not _inside_outputs(rel):
                raise ValueError(f"it names {rel!r}, outside {' and '.join(OUTPUT_DIRS)}")
    except (OSError, ValueError, TypeError) as exc:
        raise UsageError(
            f"cannot read the journal of an interrupted write, {path}: {exc}; "
            "inspect rendered/ and .github/workflows/, delete the journal, then run `companyos render`"
        ) from None
    return plan


def _inside_outputs(rel: object) -> bool:
    if not isinstance(rel, str) or not any(rel == d or rel.startswith(d + "/") for d in OUTPUT_DIRS):
        return False
    return all(part not in ("", ".", "..") for part in rel.split("/"))


# --- applying, undoing, finishing ---------------------------------------------------------


Writer = Callable[[str, bytes, bool], None]


def apply(root: Path, plan: Plan, contents: Mapping[str, bytes], write: Writer = write_file) -> None:
    """Carry out ``plan`` all or nothing (see the module doc). The caller holds the lock."""
    plan.pid = os.getpid()
    base = os.fspath(root)
    # Garbage first, before the journal exists: an old backup under one of our names must
    # never be mistaken for this write's by an undo.
    for rel in plan.leftovers:
        _unlink(os.path.join(base, rel))
    _save(root, plan)
    done = _Done()
    # Each folder is made just before its first file: creating files in the folder made a
    # moment ago costs the kernel a third of creating them after every folder exists.
    to_make = set(plan.folders)

    def make_folder(folder: str) -> None:
        if folder in to_make:
            make_folder(folder.rpartition("/")[0])
            os.mkdir(os.path.join(base, folder))
            to_make.discard(folder)
            done.folders.append(folder)

    try:
        for rel in plan.create:
            make_folder(rel.rpartition("/")[0])
            write(os.path.join(base, rel), contents[rel], True)
            done.created += 1
        for rel in plan.replace:
            write(tmp_of(os.path.join(base, rel)), contents[rel], False)
        if plan.manifest is not None:
            make_folder(plan.manifest.rpartition("/")[0])
            write(tmp_of(os.path.join(base, plan.manifest)), contents[plan.manifest], False)
        for rel in plan.replace:
            target = os.path.join(base, rel)
            _backup(target, backup_of(target))
            os.replace(tmp_of(target), target)
        for rel in plan.prune:
            target = os.path.join(base, rel)
            os.rename(target, backup_of(target))
        if plan.manifest is not None:
            target = os.path.join(base, plan.manifest)
            if plan.manifest_existed:
                _backup(target, backup_of(target))
            os.replace(tmp_of(target), target)
        os.replace(os.path.join(base, JOURNAL_PATH), os.path.join(base, DONE_PATH))  # the commit point
    except BaseException as failure:
        with _interrupts_deferred():
            try:
                undo(root, plan, done)
                _unlink(os.path.join(base, JOURNAL_PATH))
            except BaseException as again:  # the journal stays: the next command undoes it
                failure.add_note(f"undoing the write failed too ({again}); the next companyos command will finish undoing it")
        raise
    # Committed: the tree is the new one. A Ctrl-C now would only make the command claim
    # a failure after the fact; the clean-up is short, so it finishes first.
    with _interrupts_deferred(deliver=False):
        _finish(root, plan)


@dataclass
class _Done:
    """How many folders and new files this process made: an undo in the same process
    removes only those (a file someone else created meanwhile is never ours to delete).
    An undo after a crash has no count and removes every planned one that exists."""

    folders: list[str] = field(default_factory=list)
    created: int = 0


def undo(root: Path, plan: Plan, done: _Done | None = None) -> None:
    """Put the tree back as it was before ``plan`` began. Idempotent, and it needs nothing
    but the plan and the tree: it also serves a process that died mid-write."""
    base = os.fspath(root)
    for rel in [*plan.replace, *([plan.manifest] if plan.manifest is not None else [])]:
        target = os.path.join(base, rel)
        backup = backup_of(target)
        if os.path.lexists(backup):
            # A link to the very file at ``target`` (the write stopped between link and
            # rename) makes this rename a no-op that leaves the backup: deleted below.
            os.replace(backup, target)
            _unlink(backup)
        _unlink(tmp_of(target))
    if plan.manifest is not None and not plan.manifest_existed:
        _unlink(os.path.join(base, plan.manifest))
    for rel in plan.prune:
        target = os.path.join(base, rel)
        if os.path.lexists(backup_of(target)):
            os.replace(backup_of(target), target)
    for rel in plan.create[: None if done is None else done.created]:
        _unlink(os.path.join(base, rel))
    for rel in reversed(plan.folders if done is None else done.folders):
        with contextlib.suppress(OSError):  # not empty: something not ours is in it
            os.rmdir(os.path.join(base, rel))


def _finish(root: Path, plan: Plan) -> None:
    """After the commit: delete the backups and the folders pruning emptied, then the
    journal. Never raises: the tree is already the new one; a backup that cannot be deleted
    keeps the journal, and the next command tries again (``check`` reports it meanwhile)."""
    base = os.fspath(root)
    problems: list[str] = []
    for rel in [*plan.replace, *plan.prune, *([plan.manifest] if plan.manifest_existed and plan.manifest else [])]:
        try:
            _unlink(backup_of(os.path.join(base, rel)))
        except OSError as exc:
            problems.append(f"{rel}{BACKUP_SUFFIX}: {exc.strerror or exc}")
    stop = {os.path.join(base, d) for d in (*OUTPUT_DIRS, ".github")} | {base}
    for rel in plan.prune:
        folder = os.path.dirname(os.path.join(base, rel))
        while folder not in stop and folder.startswith(base + os.sep):
            try:
                os.rmdir(folder)
            except OSError:
                break
            folder = os.path.dirname(folder)
    if problems:  # the journal stays, so the next command tries again
        for line in problems:
            print(f"companyos: could not delete the backup {line}; the next companyos command will try again", file=sys.stderr)
        return
    try:
        _unlink(os.path.join(base, DONE_PATH))
    except OSError as exc:
        print(f"companyos: could not delete {DONE_PATH} ({exc.strerror or exc}); the next command will", file=sys.stderr)


def recover(root: Path) -> str | None:
    """Repair what an interrupted write left; the caller holds the lock. Returns what was
    done, for the user, or None when no write was interrupted."""
    base = os.fspath(root)
    _unlink(tmp_of(os.path.join(base, JOURNAL_PATH)))  # a journal that was never complete
    done, journal = os.path.join(base, DONE_PATH), os.path.join(base, JOURNAL_PATH)
    if os.path.lexists(done):
        plan = _load(done)
        _finish(root, plan)
        if os.path.lexists(done):
            return f"an interrupted write of process {plan.pid} had completed, but its backups cannot be deleted yet"
        return f"finished an interrupted write of process {plan.pid}: it had completed; removed its backups"
    if os.path.lexists(journal):
        plan = _load(journal)
        with _interrupts_deferred():
            undo(root, plan)
            _unlink(journal)
        return (
            f"found an interrupted write of process {plan.pid} and undid it: "
            "rendered/ and .github/workflows/ are back as they were before it"
        )
    return None


@contextlib.contextmanager
def _interrupts_deferred(*, deliver: bool = True) -> Iterator[None]:
    """Ctrl-C during an undo would leave it half done: hold SIGINT until it ends (in the
    main thread only, where Python delivers signals), then deliver it (or, once the write
    is committed, only say that it came too late)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []

    def remember(signum: int, frame: FrameType | None) -> None:
        caught.append(signum)

    previous: Any = signal.signal(signal.SIGINT, remember)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught and not deliver:
            print("companyos: interrupted after the write had completed; the tree is the new one", file=sys.stderr)
        elif caught and callable(previous):
            previous(signal.SIGINT, None)
