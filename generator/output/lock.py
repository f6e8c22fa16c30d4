"""One writer per repository: the lock file ``.companyos/lock``.

Created with O_EXCL, holding the holder's pid and an ``flock`` the kernel drops however the
process ends, so a stale lock is taken over. A live holder makes the next writer wait
(``COMPANYOS_LOCK_WAIT`` seconds, default 3), then exit 2 naming its pid. Re-entrant within a
process. Why the file lives there: docs/architecture.md ("Writing").
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from generator.errors import UsageError

STATE_DIR = ".companyos"
LOCK_PATH = f"{STATE_DIR}/lock"
WAIT_ENV = "COMPANYOS_LOCK_WAIT"
DEFAULT_WAIT = 3.0
_POLL = 0.05
_OPEN = os.O_RDWR | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)


class LockHeld(UsageError):
    """Another live process holds the lock (exit 2); ``pid`` is the holder's, when known."""

    def __init__(self, path: Path, pid: int | None) -> None:
        who = f"process {pid}" if pid is not None else "another process"
        super().__init__(
            f"{path} is held by {who}, which is writing this repository's tree; wait for it to finish "
            f"(or set {WAIT_ENV} to wait longer), then run the command again; nothing was written"
        )
        self.pid = pid


@dataclass
class _Held:
    fd: int
    pid: int
    depth: int


#: Locks this process holds, by the repository's real path.
_HELD: dict[str, _Held] = {}


def state_dir(root: Path) -> Path:
    return root / STATE_DIR


def lock_path(root: Path) -> Path:
    return root / LOCK_PATH


def holder(root: Path) -> int | None:
    """The pid written in the lock file, if there is one and it parses."""
    try:
        text = lock_path(root).read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def held_here(root: Path) -> bool:
    """Whether this process holds the lock of ``root`` now."""
    held = _HELD.get(os.path.realpath(root))
    return held is not None and held.pid == os.getpid()


def _wait_seconds() -> float:
    try:
        return max(0.0, float(os.environ.get(WAIT_ENV, DEFAULT_WAIT)))
    except ValueError:
        return DEFAULT_WAIT


def _try_once(path: str) -> tuple[int, int | None] | None:
    """(fd holding the flock, pid of the stale holder taken over) or None when a live
    process holds the lock. Any other failure (read-only file system...) raises."""
    try:
        fd = os.open(path, _OPEN | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        try:
            fd = os.open(path, _OPEN)
        except FileNotFoundError:  # released between the two opens: try again
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise UsageError(f"{path} is a symbolic link; remove it (companyos never follows one)") from None
            raise
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        # We hold the flock of this inode: is it still the one at the path? (The previous
        # holder unlinks the file before it lets go.)
        mine = os.fstat(fd)
        try:
            now = os.stat(path, follow_symlinks=False)
        except FileNotFoundError:
            os.close(fd)
            return None
        if (mine.st_dev, mine.st_ino) != (now.st_dev, now.st_ino):
            os.close(fd)
            return None
        previous = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except BaseException:
        with contextlib.suppress(OSError):
            os.close(fd)
        raise
    stale = int(previous) if previous.isdigit() and int(previous) != os.getpid() else None
    return fd, stale


def _acquire(root: Path, wait: float) -> int:
    path = os.fspath(lock_path(root))
    if os.path.islink(state_dir(root)):
        raise UsageError(f"{state_dir(root)} is a symbolic link; remove it (companyos never writes through one)")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    deadline = time.monotonic() + wait
    while True:
        got = _try_once(path)
        if got is not None:
            fd, stale = got
            if stale is not None:
                print(f"companyos: took over the stale lock {path} of process {stale}, which is no longer running", file=sys.stderr)
            return fd
        if time.monotonic() >= deadline:
            pid = holder(root)
            if pid is None:  # created a moment ago, its pid not yet written
                time.sleep(_POLL)
                pid = holder(root)
            raise LockHeld(lock_path(root), pid)
        time.sleep(_POLL)


def _release(root: Path, fd: int) -> None:
    path = os.fspath(lock_path(root))
    try:
        mine, now = os.fstat(fd), os.stat(path, follow_symlinks=False)
        if (mine.st_dev, mine.st_ino) == (now.st_dev, now.st_ino):
            os.unlink(path)  # before letting go: a waiter must not take a dead inode
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def hold(root: Path, *, wait: float | None = None, required: bool = True) -> Iterator[bool]:
    """Hold the repository's lock for the block; yields whether it is held.

    ``required=False`` is for readers (``check``): where the lock cannot even be created
    (a read-only checkout, where nobody can write the tree either) they go on without it."""
    key = os.path.realpath(root)
    held = _HELD.get(key)
    if held is not None and held.pid == os.getpid():
        held.depth += 1
        try:
            yield True
        finally:
            held.depth -= 1
        return
    try:
        fd: int | None = _acquire(root, _wait_seconds() if wait is None else wait)
    except UsageError:  # LockHeld, or a symbolic link where the lock belongs
        raise
    except OSError:
        if required:
            raise
        fd = None
    if fd is None:
        yield False
        return
    _HELD[key] = _Held(fd, os.getpid(), 1)
    try:
        yield True
    finally:
        del _HELD[key]
        _release(root, fd)
