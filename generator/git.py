"""The few git operations the tenant lifecycle needs, through gitpython.

``new-tenant`` must refuse to mix its output with someone's unfinished work, and must
leave exactly one reviewable commit on a new branch. Both are done here so
``scaffold`` reads as the lifecycle and not as git plumbing:

* :func:`open_repo` finds the repository that holds the catalog root (the catalog may
  live in a subfolder of a larger repository, so every path given to git is converted
  with :func:`git_path`);
* :func:`dirty_paths` lists uncommitted changes, untracked files included, under a few
  folders only -- an unrelated edit elsewhere in the repository does not block anyone;
* :func:`commit_paths_on_new_branch` commits *only the given paths* through a temporary
  index, so whatever the user had staged never leaks into the tenant's commit, then
  creates the branch and switches to it without touching the working tree.

``update-tenants`` also needs throw-away repositories for copier's three-way merge:
:func:`tree_at` finds the template folder as of a commit, :func:`scratch_repo` makes a
repository that no user configuration (identity, signing, hooks) can disturb,
:func:`export_tree` writes a committed folder into it and :func:`commit_all` commits it.

Problems a user can fix (no repository, no commit yet, branch exists, no identity)
become :class:`~generator.errors.UsageError`; the CLI turns that into exit code 2.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from generator.errors import UsageError

try:  # gitpython needs a git executable; report its absence as a usage problem.
    import git as gitpython
except ImportError as exc:  # pragma: no cover - depends on the machine
    gitpython = None  # type: ignore[assignment]
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
    """The commit ``ref`` names; a ref that is missing (or looks like an option) is a usage error."""
    from gitdb.exc import BadName, BadObject

    if not ref or ref.startswith("-"):
        raise UsageError(f"invalid git ref {ref!r}")
    try:
        return repo.commit(ref)
    except (BadName, BadObject, ValueError, gitpython.GitCommandError):
        raise UsageError(
            f"git ref {ref!r} does not exist in {repo.working_tree_dir} (fetch it first, e.g. `git fetch origin main`)"
        ) from None


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
    out = repo.git.status("--porcelain=v1", "-z", "--untracked-files=all", "--", *specs)
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
    out = repo.git.ls_files("-z", "--", *paths)
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
    """
    base = head_commit(repo)
    if base is None:
        raise UsageError("the repository has no commit yet; commit the catalog first (git add -A && git commit)")
    if branch_exists(repo, branch):
        raise UsageError(f"branch '{branch}' already exists; delete it or pick another tenant name")
    specs = sorted({git_path(repo, root, p) for p in paths})
    # Deleted files are staged by pathspec only if git knows them; new files always.
    known = tracked(repo, specs)
    top = Path(repo.working_tree_dir or root)
    specs = [p for p in specs if (top / p).exists() or p in known]
    previous_ref = None if repo.head.is_detached else repo.head.ref.path
    created = False
    with tempfile.TemporaryDirectory(prefix="companyos-index-") as tmp:
        env = {"GIT_INDEX_FILE": os.path.join(tmp, "index")}
        try:
            repo.git.read_tree(base, env=env)
            if specs:
                repo.git.add("-A", "--", *specs, env=env)
            tree = repo.git.write_tree(env=env)
            sha = repo.git.commit_tree(tree, "-p", base, "-m", message)
            repo.git.branch(branch, sha)
            created = True
            if switch:
                repo.git.symbolic_ref("HEAD", f"refs/heads/{branch}")
                if specs:
                    repo.git.add("-A", "--", *specs)
            return sha
        except BaseException as exc:
            if created:
                _undo_branch(repo, branch, base, previous_ref, specs if switch else [])
            if isinstance(exc, gitpython.GitCommandError):
                detail = (exc.stderr or "").strip().removeprefix("stderr:").strip(" '\n")
                raise UsageError(f"git could not create branch '{branch}': {detail or exc}") from exc
            raise


def _undo_branch(repo: gitpython.Repo, branch: str, base: str, previous_ref: str | None, specs: list[str]) -> None:
    """Put HEAD, the index entries of ``specs`` and the branch list back as they were."""
    if previous_ref is not None:
        repo.git.symbolic_ref("HEAD", previous_ref)
    else:
        repo.git.update_ref("--no-deref", "HEAD", base)
    if specs:
        repo.git.reset("-q", base, "--", *specs)
    repo.git.branch("-D", branch)


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
    for item in tree.traverse():
        if item.type == "blob":
            target = dest / Path(item.path).relative_to(tree.path)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(item.data_stream.read())
