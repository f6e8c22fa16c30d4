"""All-or-nothing file changes for the lifecycle commands, and the steps they share.

A :class:`FileTransaction` remembers every file's bytes before its first change; any
failure (a catalog error found by the render, a git error, Ctrl-C) puts them back. The
roll-back itself runs with Ctrl-C deferred, so a second Ctrl-C cannot leave it half-done,
and :class:`Progress` tells the CLI what is true when a Ctrl-C does stop a command.
"""

from __future__ import annotations

import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator import git, pipeline
from generator.catalog.folders import MANIFEST_PATH
from generator.errors import UsageError
from generator.lifecycle.request import CLEAN_FOLDERS
from generator.model import networks
from generator.ops.allocate import allocate
from generator.output import lock, tree
from generator.output.atomic import write_atomic


class FileTransaction:
    """Remembers each file's bytes before its first change; :meth:`rollback` puts them back.

    Files that did not exist are deleted again, with the folders created for them.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.saved: dict[str, bytes | None] = {}
        #: Set by :meth:`keep` once the change is final (committed): nothing to roll back.
        self.kept = False

    def track(self, *rels: str) -> None:
        for rel in rels:
            if rel not in self.saved:
                path = self.root / rel
                self.saved[rel] = path.read_bytes() if path.is_file() else None

    def write(self, rel: str, data: bytes) -> None:
        """Replace one file atomically (the project's one helper); its mode is kept."""
        self.track(rel)
        _replace(self.root / rel, data)

    def keep(self) -> None:
        """The change is final (e.g. committed): a later failure must not undo it."""
        self.kept = True

    def delete(self, rel: str) -> None:
        self.track(rel)
        (self.root / rel).unlink(missing_ok=True)
        prune_empty_folders((self.root / rel).parent, self.root)

    def changed(self) -> list[str]:
        """Tracked files whose bytes differ now (created, changed or deleted)."""
        out = []
        for rel, before in self.saved.items():
            path = self.root / rel
            now = path.read_bytes() if path.is_file() else None
            if now != before:
                out.append(rel)
        return sorted(out)

    def rollback(self) -> None:
        if self.kept:
            return
        for rel, data in self.saved.items():
            path = self.root / rel
            if data is None:
                if path.is_file() or path.is_symlink():
                    path.unlink()
                prune_empty_folders(path.parent, self.root)
            elif path.is_symlink() or not path.is_file() or path.read_bytes() != data:
                _replace(path, data)


def _replace(path: Path, data: bytes) -> None:
    try:
        mode = stat.S_IMODE(path.lstat().st_mode) if path.is_file() and not path.is_symlink() else 0o644
    except OSError:
        mode = 0o644
    write_atomic(path, data, mode=mode)


def prune_empty_folders(folder: Path, root: Path) -> None:
    root = root.resolve()
    while folder.resolve() != root and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent


@dataclass
class Progress:
    """What a lifecycle command has made permanent so far, so that the message printed on
    Ctrl-C is true whenever the Ctrl-C arrives (the CLI owns it, the command fills it in)."""

    tx: FileTransaction | None = None
    #: Set inside the git critical section, together with the commit it describes.
    committed: str | None = None

    def interrupted(self) -> str:
        """One line for an interrupted command: what is on disk and in git now."""
        if self.committed is not None:
            return f"interrupted after the change was committed: {self.committed}; nothing was undone"
        changed = [] if self.tx is None else [rel for rel in self.tx.changed() if not rel.endswith(tree.TMP_SUFFIX)]
        if not changed:
            return "interrupted; every file was restored and no branch was made"
        return f"interrupted after the change was written ({len(changed)} files changed; see `git status`); no branch was made"


@contextmanager
def transaction(root: Path, progress: Progress | None = None) -> Iterator[FileTransaction]:
    """Changes made through the yielded transaction are rolled back on any exception; the
    roll-back runs with Ctrl-C deferred (a second Ctrl-C waits for it to finish). The whole
    transaction holds the repository's writer lock (re-entrant, so the render inside it
    takes it again): a concurrent ``render`` cannot interleave with a lifecycle command."""
    tx = FileTransaction(root)
    if progress is not None:
        progress.tx = tx
    with lock.hold(root):
        try:
            yield tx
        except BaseException:
            while True:  # roll-back is idempotent: a Ctrl-C that slips in before it starts retries it
                try:
                    with git.deferred_signals():
                        tx.rollback()
                    break
                except KeyboardInterrupt:
                    continue
            raise


def allocate_networks(root: Path, tx: FileTransaction) -> list[str]:
    """Record (or release) the tenant's VPC CIDRs in catalog/networks.yaml."""
    tx.track(networks.NETWORKS_PATH)
    return allocate(root, write=True)


def render_tracked(root: Path, tx: FileTransaction) -> tuple[pipeline.Build, tree.WriteReport]:
    """Render the whole catalog and write it, tracking every file the write may touch."""

    def track(st: tree.TreeStatus) -> None:
        touched = [*st.changed, *st.missing, *st.stale, MANIFEST_PATH]  # the fleet-wide one: pruned once
        tx.track(*touched, *(rel + tree.TMP_SUFFIX for rel in touched))

    built = pipeline.build(root)
    return built, tree.write(built.result, root, before=track)


def git_state(root: Path, *, commit: bool, allow_dirty: bool, branch: str | None) -> tuple[Any, list[str]]:
    """The repository (or None) and every git-related reason to refuse."""
    problems: list[str] = []
    repo = git.open_repo(root)
    if repo is None:
        if commit:
            problems.append(
                f"{root} is not inside a git repository; run `git init` and commit the catalog, or pass --no-commit to only write the files"
            )
        return None, problems
    if commit:
        if git.head_commit(repo) is None:
            problems.append("the repository has no commit yet; commit the catalog first")
        locks = git.lock_files(repo, branch)
        if locks:
            problems.append(git.lock_files_message(locks))
        if branch is not None and git.branch_exists(repo, branch):
            problems.append(f"branch '{branch}' already exists; delete it (git branch -D {branch}) or pick another name")
    if not allow_dirty:
        dirty = git.dirty_paths(repo, root, [f for f in CLEAN_FOLDERS if (root / f).exists()])
        if dirty:
            shown = ", ".join(dirty[:8]) + (f" and {len(dirty) - 8} more" if len(dirty) > 8 else "")
            problems.append(f"uncommitted changes in {shown}; commit or stash them first (or pass --allow-dirty)")
    return repo, problems


def refusal(what: str, problems: list[str], hint: str = "") -> UsageError:
    lines = "\n".join(f"  - {p}" for p in problems)
    return UsageError(f"{what}:\n{lines}\n{hint + '; ' if hint else ''}nothing was written")
