"""The git operations the tenant lifecycle and the ``--base`` guards need, through gitpython.

Find the repository that holds the catalog root (paths are converted with :func:`git_path`, as
the catalog may sit in a subfolder), list uncommitted changes under a few folders, commit only
given paths on a new branch through a temporary index, read trees and blobs at a ref, and make
throw-away repositories for copier's three-way merge. Problems a user can fix become
:class:`~generator.errors.UsageError` (exit 2). The rules: docs/tenants.md ("Git rules").
"""

from __future__ import annotations

import os
import signal
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator.errors import UsageError

try:  # gitpython needs a git executable; report its absence as a usage problem.
    import git as gitpython
except ImportError as exc:  # pragma: no cover - depends on the machine
    gitpython = None  # type: ignore[assignment]  # a module or None: _require_gitpython() checks
    _IMPORT_ERROR: Exception | None = exc
else:
    _IMPORT_ERROR = None


def _require_gitpython() -> None:
    """Refuse, as a usage problem, to go on without gitpython (or a git executable)."""
    if gitpython is None:
        raise UsageError(f"git is not usable here: {_IMPORT_ERROR}")


def open_repo(root: Path) -> gitpython.Repo | None:
    """The repository whose working tree contains ``root``, or None when there is none."""
    _require_gitpython()
    try:
        return gitpython.Repo(root, search_parent_directories=True)
    except (gitpython.InvalidGitRepositoryError, gitpython.NoSuchPathError):
        return None


def require_repo(root: Path, purpose: str) -> gitpython.Repo:
    """Like :func:`open_repo`, but a missing repository is a usage error naming ``purpose``."""
    repo = open_repo(root)
    if repo is None:
        raise UsageError(f"{root} is not inside a git repository; {purpose}")
    return repo


def resolve_commit(repo: gitpython.Repo, ref: str) -> gitpython.Commit:
    """The commit ``ref`` names, with its tree present in this clone.

    A ref that is missing, looks like an option, or points past the edge of a shallow clone
    (``HEAD~1`` after ``git clone --depth 1``) is a usage error with a hint to fetch: git
    itself resolves the ref, and the commit's tree is read here, inside the ``try``, rather
    than lazily by whoever uses the commit (where a missing object was a traceback)."""
    from gitdb.exc import BadName, BadObject

    if not ref or ref.startswith("-"):
        raise UsageError(f"invalid git ref {ref!r}")
    try:
        sha = repo.git.rev_parse("--verify", "--quiet", f"{ref}^{{commit}}")
        commit = repo.commit(sha)
        commit.tree.hexsha  # noqa: B018 - loads the commit object now, not later
        return commit
    except (BadName, BadObject, ValueError, gitpython.GitCommandError):
        raise UsageError(f"git ref {ref!r} does not exist in the history of {repo.working_tree_dir}; {_fetch_hint(repo, ref)}") from None


def is_shallow(repo: gitpython.Repo) -> bool:
    """True in a clone made with ``--depth`` (or ``--shallow-since``): older commits are absent."""
    try:
        return bool(repo.git.rev_parse("--is-shallow-repository") == "true")
    except gitpython.GitCommandError:  # git older than 2.15
        return (Path(repo.common_dir) / "shallow").is_file()


def _fetch_hint(repo: gitpython.Repo, ref: str) -> str:
    if is_shallow(repo):
        return (
            "this is a shallow clone, so older commits are missing: fetch more history with "
            "`git fetch --deepen=50` (or all of it with `git fetch --unshallow`), then run again"
        )
    return f"fetch it first (e.g. `git fetch origin {ref.split('~')[0].split('^')[0]}`) or check its spelling"


def tree_at(repo: gitpython.Repo, commit: str, path: str) -> gitpython.Tree | None:
    """The tree of folder ``path`` (repository-relative) as of ``commit``; None when the
    commit is not in this clone (a shallow clone, a rewritten history) or has no such folder."""
    from gitdb.exc import BadName, BadObject

    try:
        return repo.commit(commit).tree / path
    except (KeyError, ValueError, BadName, BadObject):
        return None


def git_path(repo: gitpython.Repo, root: Path, rel: str) -> str:
    """``rel`` (relative to the catalog root) as a path relative to the repository top."""
    top = Path(repo.working_tree_dir or root).resolve()
    return (root.resolve() / rel).relative_to(top).as_posix()


def head_commit(repo: gitpython.Repo) -> str | None:
    """The full sha of HEAD, or None in a repository without commits."""
    try:
        return repo.head.commit.hexsha
    except ValueError:  # unborn HEAD: `git init` without a commit
        return None


def branch_exists(repo: gitpython.Repo, branch: str) -> bool:
    return any(head.name == branch for head in repo.heads)


def dirty_paths(repo: gitpython.Repo, root: Path, folders: Iterable[str]) -> list[str]:
    """Changed, staged, deleted or untracked files under ``folders`` (relative to ``root``).

    Ignored files do not count: they are not part of any commit either.
    """
    specs = [git_path(repo, root, folder) for folder in folders]
    out = run_git(repo, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--", *specs)
    paths: list[str] = []
    entries = out.split("\0")
    i = 0
    while i < len(entries):
        entry = entries[i]
        i += 1
        if not entry:
            continue
        status, path = entry[:2], entry[3:]
        if status[0] in "RC":  # renames carry the source path as the next entry
            i += 1
        paths.append(path)
    return sorted(set(paths))


def tracked(repo: gitpython.Repo, paths: Sequence[str]) -> set[str]:
    """Which of ``paths`` (repository-relative) HEAD or the index knows."""
    if not paths:
        return set()
    out = run_git(repo, "ls-files", "-z", "--", *paths)
    return {p for p in out.split("\0") if p}


def commit_paths_on_new_branch(
    repo: gitpython.Repo,
    root: Path,
    branch: str,
    paths: Iterable[str],
    message: str,
    *,
    switch: bool = True,
) -> str:
    """Commit the working-tree state of ``paths`` (relative to ``root``) on top of HEAD as
    a new branch; return the new commit's sha.

    Only ``paths`` end up in the commit (added, changed or deleted), whatever else is
    modified or staged. With ``switch`` the branch is checked out without touching the
    working tree: HEAD moves to the branch and the index entries of ``paths`` are
    refreshed, so ``git status`` afterwards shows exactly what it showed before minus
    the committed paths. On failure the branch and HEAD are put back as they were.

    The whole function is a critical section (:func:`deferred_signals`): a Ctrl-C before
    the branch exists undoes nothing (only unreachable objects were written) and is raised
    at once; one that arrives later lets branch, HEAD and index finish together, and is
    raised when the caller's section ends. The git commands run in their own process
    group, so the terminal's Ctrl-C does not kill one of them half-way.
    """
    with deferred_signals() as section:
        base = head_commit(repo)
        if base is None:
            raise UsageError("the repository has no commit yet; commit the catalog first (git add -A && git commit)")
        if branch_exists(repo, branch):
            raise UsageError(f"branch '{branch}' already exists; delete it or pick another tenant name")
        refuse_lock_files(repo, branch)
        specs = sorted({git_path(repo, root, p) for p in paths})
        # Deleted files are staged by pathspec only if git knows them; new files always.
        known = tracked(repo, specs)
        top = Path(repo.working_tree_dir or root)
        specs = [p for p in specs if (top / p).exists() or p in known]
        previous_ref = None if repo.head.is_detached else repo.head.ref.path
        created = switched = staged = False
        with tempfile.TemporaryDirectory(prefix="companyos-index-") as tmp:
            env = {"GIT_INDEX_FILE": os.path.join(tmp, "index")}
            try:
                run_git(repo, "read-tree", base, env=env)
                if specs:
                    run_git(repo, "add", "-A", "--", *specs, env=env)
                tree = run_git(repo, "write-tree", env=env)
                sha = run_git(repo, "commit-tree", tree, "-p", base, "-m", message)
                section.checkpoint()  # last moment at which Ctrl-C leaves nothing behind
                run_git(repo, "branch", branch, sha)
                created = True
                if switch:
                    run_git(repo, "symbolic-ref", "HEAD", f"refs/heads/{branch}")
                    switched = True
                    if specs:
                        run_git(repo, "add", "-A", "--", *specs)
                        staged = True
                return sha
            except BaseException as exc:
                left = _undo_branch(repo, branch, base, previous_ref, head_moved=switched, specs=specs if staged else []) if created else []
                if isinstance(exc, gitpython.GitCommandError):
                    raise UsageError(f"git could not create branch '{branch}': {git_error_detail(exc)}" + _left_over(left)) from None
                if left:
                    raise UsageError(f"creating branch '{branch}' failed ({type(exc).__name__}: {exc})" + _left_over(left)) from exc
                raise


def _undo_branch(
    repo: gitpython.Repo, branch: str, base: str, previous_ref: str | None, *, head_moved: bool, specs: list[str]
) -> list[str]:
    """Put HEAD (if it moved), the branch list and the index entries of ``specs`` back as
    they were; ``previous_ref`` None means HEAD was detached at ``base``.

    Each step is tried even when an earlier one fails (a lock file can block the index but
    not the refs); returns what could not be undone, for the error message."""
    steps: list[tuple[str, tuple[str, ...]]] = []
    if head_moved:
        restore = ("symbolic-ref", "HEAD", previous_ref) if previous_ref is not None else ("update-ref", "--no-deref", "HEAD", base)
        steps.append(("HEAD", restore))
    steps.append((f"branch '{branch}'", ("branch", "-D", branch)))
    if specs:
        steps.append(("the index entries of the tenant's files", ("reset", "-q", base, "--", *specs)))
    left = []
    for what, args in steps:
        try:
            run_git(repo, *args)
        except gitpython.GitCommandError as exc:
            left.append(f"{what}: {git_error_detail(exc)}")
    return left


def _left_over(left: list[str]) -> str:
    if not left:
        return "; every change was undone"
    return "; could not undo: " + "; ".join(left) + " (fix by hand with git)"


#: How long a git command waits for a lock another git process holds (an editor's
#: background `git status` takes index.lock for a moment) before failing.
LOCK_WAIT_SECONDS = 2.0


def run_git(repo: gitpython.Repo, *args: str, env: dict[str, str] | None = None) -> str:
    """``git ARGS`` in the repository, in a process group of its own: a Ctrl-C at the
    terminal reaches this process (which defers it) but not git, so git never dies half-way.

    A command that failed only because a lock file exists did nothing, so it is retried
    for up to :data:`LOCK_WAIT_SECONDS`."""
    command = [gitpython.Git.GIT_PYTHON_GIT_EXECUTABLE or "git", *args]
    deadline, delay = time.monotonic() + LOCK_WAIT_SECONDS, 0.05
    while True:
        try:
            return str(repo.git.execute(command, env=env, process_group=0))
        except gitpython.GitCommandError as exc:
            if not _lock_failure(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.4)


def _lock_failure(exc: gitpython.GitCommandError) -> bool:
    text = str(exc.stderr or "")
    return ".lock" in text and ("File exists" in text or "cannot lock ref" in text or "Unable to create" in text)


def git_error_detail(exc: BaseException) -> str:
    """git's own words from a failed command (its stderr), without gitpython's framing."""
    if gitpython is not None and isinstance(exc, gitpython.GitCommandError):
        detail = str(exc.stderr or "").strip().removeprefix("stderr:").strip(" '\n")
        return " ".join(detail.split()) or f"`git {exc.command[1] if len(exc.command) > 1 else ''}` exited with {exc.status}"
    return str(exc)


def is_git_error(exc: BaseException) -> bool:
    """True for gitpython's failures (a git command failed, git is missing, a bad object)."""
    return gitpython is not None and isinstance(exc, gitpython.GitError)


#: Lock files git leaves behind when a git process dies; while one exists every git command
#: that writes the same thing fails. Relative to the git directory (and its common directory).
LOCK_FILES = ("index.lock", "HEAD.lock", "config.lock", "packed-refs.lock", "shallow.lock", "ORIG_HEAD.lock")


def lock_files(repo: gitpython.Repo, branch: str | None = None) -> list[Path]:
    """Git lock files present now: the index, HEAD, config and packed refs, and any ref lock
    under refs/heads (the new branch's own among them)."""
    folders = sorted({Path(repo.git_dir), Path(repo.common_dir)})
    found = {folder / name for folder in folders for name in LOCK_FILES if (folder / name).exists()}
    for folder in folders:
        heads = folder / "refs" / "heads"
        if heads.is_dir():
            found.update(p for p in heads.rglob("*.lock") if p.is_file())
    if branch is not None:
        own = Path(repo.common_dir) / "refs" / "heads" / f"{branch}.lock"
        if own.exists():
            found.add(own)
    return sorted(found)


def refuse_lock_files(repo: gitpython.Repo, branch: str | None = None) -> None:
    """A usage error naming every git lock file, before anything is written."""
    found = lock_files(repo, branch)
    if found:
        raise UsageError(lock_files_message(found))


def lock_files_message(found: Sequence[Path]) -> str:
    names = ", ".join(str(p) for p in found)
    return (
        f"git lock file {names} exists: another git command is running in this repository, or one was "
        "killed and left it behind. Wait for the other command to finish; if none is running, delete "
        f"the file (rm {' '.join(str(p) for p in found)}) and run again"
    )


class SignalSection:
    """The state of one :func:`deferred_signals` section: the signals it has held back."""

    def __init__(self) -> None:
        self.received: list[int] = []

    def pending(self) -> bool:
        return bool(self.received)

    def checkpoint(self) -> None:
        """Raise the held-back Ctrl-C now, at a point where stopping leaves nothing half-done."""
        if self.received:
            self.received.clear()
            raise KeyboardInterrupt


_SECTIONS: list[SignalSection] = []
DEFERRED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def deferred_signals() -> Iterator[SignalSection]:
    """A critical section: SIGINT and SIGTERM are recorded, not acted on, until it ends;
    then a recorded one is raised as KeyboardInterrupt (exit 130). Nested sections share the
    outermost one, so a caller can widen a section around a callee's. Outside the main
    thread (no signal handlers there) it defers nothing."""
    if _SECTIONS:
        yield _SECTIONS[-1]
        return
    section = SignalSection()
    if threading.current_thread() is not threading.main_thread():
        yield section
        return

    def hold(signum: int, frame: object) -> None:
        section.received.append(signum)

    previous = {sig: signal.signal(sig, hold) for sig in DEFERRED_SIGNALS}
    _SECTIONS.append(section)
    try:
        yield section
    finally:
        _SECTIONS.remove(section)
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
    if section.received:  # only reached when the section itself ended without an exception
        raise KeyboardInterrupt


# --- throw-away repositories ------------------------------------------------------------------


def scratch_repo(path: Path) -> gitpython.Repo:
    """A new repository at ``path`` whose commits and tags do not depend on the user's git
    configuration: a fixed identity, no signing, no hooks."""
    _require_gitpython()
    repo = gitpython.Repo.init(path)
    with repo.config_writer() as cfg:
        cfg.set_value("user", "name", "companyos")
        cfg.set_value("user", "email", "companyos@localhost")
        cfg.set_value("commit", "gpgsign", "false")
        cfg.set_value("tag", "gpgsign", "false")
        cfg.set_value("core", "hooksPath", os.devnull)
    return repo


def commit_all(repo: gitpython.Repo, message: str) -> None:
    """Commit the whole working tree (additions and deletions), even when nothing changed;
    hooks are skipped. For :func:`scratch_repo` repositories only."""
    repo.git.add("-A")
    repo.git.commit("--allow-empty", "--no-verify", "-q", "-m", message)


def export_tree(tree: gitpython.Tree, dest: Path) -> None:
    """Write every file of the committed folder ``tree`` below ``dest``, with paths
    relative to that folder (``templates/tenant/copier.yml`` -> ``dest/copier.yml``)."""
    for item in blobs(tree):
        target = dest / Path(item.path).relative_to(tree.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(item.data_stream.read())


def tree_files(repo: gitpython.Repo, commit: str, rel: str) -> list[tuple[str, int, str]]:
    """(path from the repository top, mode, blob id) of every file below folder ``rel`` at
    ``commit``: one ``git ls-tree -r -z`` (walking the tree object by object through
    gitpython costs one round trip per folder: 36 s for a 1000-tenant tree)."""
    return list(tree_entries(repo, commit, rel))


def tree_entries(repo: gitpython.Repo, commit: str, *paths: str) -> Iterator[tuple[str, int, str]]:
    """:func:`tree_files` below (or at) each of ``paths``, read as git writes them: at
    10,000 tenants the committed output's listing is ~800,000 records, ~110 MB as one buffer."""
    for record in _records(repo, "ls_tree", "-r", "-z", "--full-tree", commit, "--", *paths):
        head, _, path = record.partition(b"\t")
        mode, kind, sha = head.split(b" ")
        if kind == b"blob":
            yield path.decode("utf-8", "surrogateescape"), int(mode, 8), sha.decode("ascii")


def tree_paths(repo: gitpython.Repo, commit: str, *paths: str) -> Iterator[str]:
    """The paths alone of the files (and submodules) below each of ``paths`` at ``commit``:
    a few times cheaper per record than :func:`tree_entries`, for a caller that wants few of them."""
    for record in _records(repo, "ls_tree", "-r", "-z", "--name-only", "--full-tree", commit, "--", *paths):
        yield record.decode("utf-8", "surrogateescape")


@dataclass(frozen=True)
class TreeChange:
    """One path ``git diff-tree`` lists between two commits: its mode and blob id on each side
    (mode 0 and an all-zero id where that side has no such path)."""

    path: str
    old_mode: int
    new_mode: int
    old_sha: str
    new_sha: str


def tree_changes(repo: gitpython.Repo, old: str, new: str, *paths: str) -> Iterator[TreeChange]:
    """The paths below ``paths`` (from the repository top) that differ between commits ``old``
    and ``new``, streamed from one ``git diff-tree -r -z --no-renames``: git compares tree
    objects and skips every subtree whose id is equal on both sides, so no file is read or
    stat'ed however large the trees are. git starts now (:func:`_records`)."""
    return _changes(_records(repo, "diff_tree", "-r", "-z", "--no-renames", "--full-index", old, new, "--", *paths))


def _changes(records: Iterator[bytes]) -> Iterator[TreeChange]:
    for head in records:
        path = next(records)
        old_mode, new_mode, old_sha, new_sha, _ = head.removeprefix(b":").split(b" ")
        yield TreeChange(path.decode("utf-8", "surrogateescape"), int(old_mode, 8), int(new_mode, 8), old_sha.decode(), new_sha.decode())


def index_entries(repo: gitpython.Repo, *paths: str) -> Iterator[bytes]:
    """``git ls-files -z -v`` below ``paths``, streamed in index order (path bytes): each
    record is a tag (``H`` for a plain cached file), a space and the path from the top."""
    return _records(repo, "ls_files", "-z", "-v", "--", *paths)


def _records(repo: gitpython.Repo, command: str, *args: str) -> Iterator[bytes]:
    """The NUL-terminated records of ``git <command> args``, streamed; git starts now, not at
    the first record asked for (a caller may start it early and read it later)."""
    return _streamed(getattr(repo.git, command)(*args, as_process=True), command)


def _streamed(proc: Any, command: str) -> Iterator[bytes]:
    rest = b""
    read = False
    try:
        while chunk := proc.stdout.read(1 << 20):
            records = (rest + chunk).split(b"\0")
            rest = records.pop()
            yield from records
        read = True
    finally:
        if not read:  # the reader stopped early: git may be blocked writing the rest
            proc.proc.kill()
            proc.proc.wait()
    proc.wait()  # GitCommandError when git failed (an unknown commit, a damaged object)
    if rest:
        raise ValueError(f"git {command} ended in the middle of a record: {rest[:80]!r}")


def read_blob(repo: gitpython.Repo, sha: str) -> bytes:
    """The bytes of blob ``sha`` (through gitpython's persistent ``cat-file`` reader)."""
    data: bytes = repo.odb.stream(bytes.fromhex(sha)).read()
    return data


def blobs(tree: gitpython.Tree) -> Iterator[gitpython.Blob]:
    """Every file (blob) below ``tree``, folders and submodules left out; gitpython types
    ``traverse()`` as also yielding edge tuples, so the blobs are picked by class."""
    for item in tree.traverse():
        if isinstance(item, gitpython.Blob):
            yield item
