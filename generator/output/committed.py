"""Prove a verified-clean output tree unchanged through git's index instead of one ``lstat``
per output file: the no-op ``render`` and cached ``check`` of a committed tree.

``git diff-files``/``diff-index`` say the outputs are HEAD's (git stats them in parallel,
in C); one ``lstat`` per folder sees what git does not track; no attribute or setting may
make a file differ from its blob, and the index must be older than any later edit's ctime
second. The index proven is kept, a copy (:data:`PROOF_INDEX`), with the commit it matched:
git is asked about that copy later, so a `git status` that rewrites the index, or a commit,
leaves the proof standing. After a later write, it says what changed since the proof
(:func:`edited_since`: the files git lists, the folders whose ``lstat`` moved) for
``output.since_proof``. The argument and its limits: docs/incremental.md ("A committed tree").
"""

from __future__ import annotations

import array
import contextlib
import hashlib
import os
import shutil
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from generator.catalog.folders import OUTPUT_DIRS
from generator.catalog.snapshot import git_blob_id
from generator.git import git_path, index_entries, is_git_error, open_repo, tree_entries
from generator.output.atomic import write_atomic

# RACY_NS: a folder changed this recently (or later) may change again within one timestamp
# tick without its stat changing: the proof is not recorded then (the next run tries again).
from generator.output.listing import RACY_NS

#: Attributes that make git convert between a blob and the working-tree file.
CONVERTING = ("text", "eol", "crlf", "ident", "filter", "working-tree-encoding")
#: The folder list kept beside the record (one path per line; it can be ~10 MB).
FOLDERS_FILE = "folders"
#: Their ``lstat``s as proven (:func:`_folder_stats`, raw): which folders changed since (:func:`edited_since`).
STATS_FILE = "folder-stats"
#: A copy of git's index as proven: its entries' stat data is what ``git diff-files`` compares
#: the tree with later (``GIT_INDEX_FILE``). Nothing writes it after the proof; its identity is
#: part of the key. ~100 MB at 10,000 tenants x 3.
PROOF_INDEX = "proof-index"
#: The commit the proven index matched (HEAD then): its outputs are the bytes verified.
PROOF_COMMIT = "proof-commit"
_UNSPECIFIED = b"\0unspecified\0"
#: Paths named on one git command line (which stays short).
_PER_COMMAND = 1000
#: The modes of a regular file in a git tree.
_REGULAR = (0o100644, 0o100755)
_T = TypeVar("_T")


class Attempt(NamedTuple):
    """What :func:`record` found: the key, or None; ``settled`` False when only folders
    changed a moment ago stood in the way (try again on the next run). ``base``: the part of
    the key a later write to the tree leaves true (the proven commit's outputs, git's settings,
    the proven index copy: :func:`changed_later`)."""

    key: str | None
    settled: bool = True
    base: str | None = None
    #: The digest of the folder list and their stats as written (:func:`edited_since` checks them).
    folders: str | None = None


NOT_PROVEN = Attempt(None)


def record(root: Path, cache_dir: Path, outputs: Collection[str]) -> Attempt:
    """The key that proves later that the output tree is still the one verified clean now;
    no key when git cannot prove it (not a repository, not committed, a conversion applies)
    or not yet (a folder changed within :data:`RACY_NS`). ``outputs``: every output file (paths relative
    to ``root``: ``rendered/...`` and the generated workflows), as the caller verified them.
    Writes the folder list to ``cache_dir``."""
    repo = open_repo(root)
    if repo is None:
        return NOT_PROVEN
    try:
        top, rendered, extras = _pathspec(repo, root, outputs)
        if _stat_untrusted(repo):
            return NOT_PROVEN
        live, commit = _index_stat(repo), repo.head.commit.hexsha
        cache_dir.mkdir(parents=True, exist_ok=True)
        copy = _copy_index(repo, cache_dir)
        if _identity(_index_stat(repo)) != _identity(live) or repo.head.commit.hexsha != commit:
            return Attempt(None, settled=False)  # git wrote its index (or moved HEAD) while it was copied
        _ask_about(repo, copy)  # every question below is about the copy
        if not _quiet(repo, rendered, extras, commit)():
            return NOT_PROVEN
        ordered = sorted(outputs)  # ASCII (else no proof): str order is git's index order, path bytes
        if not all(map(str.isascii, ordered)) or not _tracked_exactly(repo, top, rendered, extras, ordered):
            return NOT_PROVEN
        if _converted(repo, top, ordered):
            return NOT_PROVEN
        listed = repo.git.ls_tree("-r", "-d", "--name-only", "-z", commit, "--", rendered, stdout_as_string=False)
        folders = sorted(
            {
                rendered,
                *(p.decode("utf-8", "surrogateescape") for p in listed.split(b"\0") if p),
                *_parents(extras),
                *_output_dirs(repo, top),
            }
        )
        stats = _folder_stats(str(repo.working_tree_dir or ""), folders)
        # git compares ctime in whole seconds: an index written in the last RACY_NS could hold an
        # entry stat'ed in the very second of a later edit that restores mtime and size
        if max(max(stats[0::4]), max(stats[1::4]), live.st_mtime_ns, live.st_ctime_ns) >= time.time_ns() - RACY_NS:
            return Attempt(None, settled=False)
        data = "\n".join(folders).encode("utf-8", "surrogateescape")
        write_atomic(cache_dir / PROOF_COMMIT, commit + "\n")
        base = _base_key(repo, rendered, extras, cache_dir, commit)
        if base is None:
            return NOT_PROVEN
        write_atomic(cache_dir / FOLDERS_FILE, data)
        write_atomic(cache_dir / STATS_FILE, stats.tobytes())
        return Attempt(_key(base, data, stats), base=base, folders=_folders_digest(data, stats.tobytes()))
    except Exception as exc:
        if _unanswered(exc):
            return NOT_PROVEN
        raise


def unchanged(root: Path, cache_dir: Path, extras: Collection[str], key: str) -> bool:
    """Whether the output tree is still the one :func:`record` gave ``key`` for (False when
    anything differs or git cannot answer: the caller then stats every file). ``extras``:
    the generated workflows (every output outside ``rendered/``)."""
    repo, commit = _at_proof(root, cache_dir)
    if repo is None or commit is None:
        return False
    try:
        _, rendered, extras = _pathspec(repo, root, extras)
        quiet = _quiet(repo, rendered, extras, commit)  # git stats the files in parallel while this process stats the folders
        try:
            data = (cache_dir / FOLDERS_FILE).read_bytes()
            stats = _folder_stats(str(repo.working_tree_dir or ""), data.decode("utf-8", "surrogateescape").split("\n"))
            base = _base_key(repo, rendered, extras, cache_dir, commit)
            same = base is not None and _key(base, data, stats) == key
        finally:
            settled = quiet()
        return same and settled
    except Exception as exc:
        if _unanswered(exc):
            return False
        raise


def index_state(root: Path) -> str | None:
    """The repository's index file and HEAD as a string that changes when either does:
    :func:`record` is not tried again for a tree it could not prove until one changed."""
    repo = open_repo(root)
    if repo is None:
        return None
    try:
        identity = _identity(_index_stat(repo))
        head = repo.head.commit.hexsha
    except (OSError, ValueError):  # no index, or no commit yet
        return None
    return f"{identity.decode()} {head}"


def _pathspec(repo: Any, root: Path, outputs: Iterable[str]) -> tuple[str, str, list[str]]:
    """(root's path from the repository top with a trailing slash or "", ``rendered`` from
    the top, the generated workflows from the top)."""
    top = _top(repo, root)
    rendered = top + "rendered"
    return top, rendered, sorted(top + p for p in outputs if not p.startswith("rendered/"))


def _quiet(repo: Any, rendered: str, extras: list[str], commit: str) -> Callable[[], bool]:
    """Start ``git diff-index --cached <commit>`` and ``git diff-files`` over the outputs; the
    returned call waits for both: True when index = ``commit``'s and working tree = index."""
    spec = ("--", rendered, *extras)
    running = [_staged(repo, commit, spec), repo.git.diff_files("--quiet", *spec, as_process=True, with_exceptions=False)]
    return lambda: all([process.proc.wait() == 0 for process in running])  # a list: wait for every one


def _staged(repo: Any, commit: str, spec: tuple[str, ...]) -> Any:
    """``git diff-index --cached --quiet <commit>`` over ``spec``, started: it exits 0 when
    the index (the proven copy, once asked about) holds ``commit``'s outputs."""
    return repo.git.diff_index("--cached", "--quiet", commit, *spec, as_process=True, with_exceptions=False)


def _unanswered(exc: Exception) -> bool:
    """A failure that means git cannot answer (no proof), not a bug: file-system and decoding
    errors and git's own failures."""
    return isinstance(exc, (OSError, ValueError, UnicodeError)) or is_git_error(exc)


def _index_stat(repo: Any) -> os.stat_result:
    """The repository's index file: its entries' stat data is what git compares with."""
    return os.stat(os.path.join(repo.git_dir, "index"))


def _identity(st: os.stat_result) -> bytes:
    """A file's identity: any write changes its ctime (and a new file its inode)."""
    return b"%d %d %d %d" % (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def _copy_index(repo: Any, cache_dir: Path) -> Path:
    """git's index copied to :data:`PROOF_INDEX` (whole, or not at all: copied beside it, then
    renamed over it)."""
    target = cache_dir / PROOF_INDEX
    partial = cache_dir / (PROOF_INDEX + ".partial")
    shutil.copyfile(os.path.join(repo.git_dir, "index"), partial)
    os.replace(partial, target)
    return target


def _at_proof(root: Path, cache_dir: Path) -> tuple[Any, str | None]:
    """``root``'s repository, its git commands asking about the proven index copy, and the
    proven commit; (None, None) without a repository, (repo, None) without a proof."""
    repo = open_repo(root)
    if repo is None:
        return None, None
    commit = proof_commit(cache_dir)
    if commit is not None:
        _ask_about(repo, cache_dir / PROOF_INDEX)
    return repo, commit


def _ask_about(repo: Any, index: Path) -> None:
    """Point every later git command of ``repo`` at the index file ``index`` (``GIT_INDEX_FILE``)."""
    repo.git.update_environment(GIT_INDEX_FILE=os.fspath(index))


def proof_commit(cache_dir: Path) -> str | None:
    """The commit the last proof matched (:data:`PROOF_COMMIT`), or None."""
    try:
        found = (cache_dir / PROOF_COMMIT).read_text(encoding="ascii").strip()
    except (OSError, UnicodeError):
        return None
    return found if len(found) in (40, 64) and all(c in "0123456789abcdef" for c in found) else None


def _tracked_exactly(repo: Any, top: str, rendered: str, extras: list[str], ordered: list[str]) -> bool:
    """Whether git's index holds exactly the outputs ``ordered`` (sorted, ASCII, from ``root``)
    below ``rendered`` and ``extras``, each a plain cached file (tag ``H``: no
    assume-unchanged, skip-worktree or unmerged entry). Compared as git streams its index,
    in order: no set of 800,000 paths on either side."""
    prefix = b"H " + top.encode("utf-8", "surrogateescape")
    expected = iter(ordered)
    for line in index_entries(repo, rendered, *extras):
        if not line.startswith(prefix) or line[len(prefix) :] != next(expected, "").encode("ascii"):
            return False  # the listing stops here: git is stopped
    return next(expected, None) is None


def _converted(repo: Any, top: str, ordered: list[str]) -> bool:
    """Whether a conversion could apply to any of the outputs ``ordered`` (ASCII, from
    ``root``; ``top``: root from the repository top): any :data:`CONVERTING` attribute not
    unspecified, or ``core.autocrlf`` on. The answer is streamed and counted, not held
    (~320 MB at 800,000 files)."""
    autocrlf = repo.git.config("--get", "core.autocrlf", with_exceptions=False).strip().lower()
    if autocrlf not in ("", "false"):
        return True
    process = repo.git.check_attr("-z", "--stdin", *CONVERTING, as_process=True, istream=-1)
    writer = threading.Thread(target=_feed, args=(process.proc.stdin, top.encode("utf-8", "surrogateescape"), ordered), daemon=True)
    writer.start()
    found, carry = 0, b""
    while chunk := process.proc.stdout.read(1 << 22):
        buffer = carry + chunk
        found += buffer.count(_UNSPECIFIED)
        carry = buffer[-(len(_UNSPECIFIED) - 1) :]
    writer.join()
    if process.proc.wait() != 0:
        return True
    return found != len(ordered) * len(CONVERTING)


def _feed(stream: Any, top: bytes, paths: list[str]) -> None:
    """Write ``paths`` (ASCII, prefixed with ``top``) to git, NUL-terminated, in batches."""
    with contextlib.suppress(OSError), stream:
        for start in range(0, len(paths), 4096):
            stream.write(b"".join(top + p.encode("ascii") + b"\0" for p in paths[start : start + 4096]))


def _folder_stats(top: str, folders: Iterable[str], *, missing: bool = False) -> array.array[int]:
    """(mtime, ctime, inode, mode) of every folder, flat (one ``lstat`` each, relative to
    an open descriptor of the repository top: no path joins). ``missing``: a folder that
    cannot be stat'ed gets -1s (no folder has them), instead of the error."""
    out: array.array[int] = array.array("q")
    add = out.extend
    descriptor = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for folder in folders:
            try:
                st = os.stat(folder, dir_fd=descriptor, follow_symlinks=False)
            except OSError:
                if not missing:
                    raise
                add((-1, -1, -1, -1))
                continue
            add((st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_mode))
    finally:
        os.close(descriptor)
    return out


def _base_key(repo: Any, rendered: str, extras: list[str], cache_dir: Path, commit: str) -> str | None:
    """The proven ``commit`` and its ids of the outputs, the attribute and config fingerprint
    and the identity of the index copy in ``cache_dir``, in one digest; None without the copy,
    or without a tree for ``rendered`` in ``commit``."""
    names = [f"{commit}:{rendered}", *(f"{commit}:{p}" for p in extras)]
    status, ids, _ = repo.git.rev_parse(*names, with_extended_output=True, with_exceptions=False)
    if status != 0:
        return None
    try:
        index = os.stat(cache_dir / PROOF_INDEX)  # its entries' stat data, as proven: a rewrite drops the proof
    except OSError:
        return None
    return hashlib.sha256(b"\0".join((commit.encode(), ids.encode(), _fingerprint(repo, rendered), _identity(index)))).hexdigest()


def _key(base: str, folders: bytes, stats: array.array[int]) -> str:
    """:func:`_base_key` with the folder list and every folder's stat (no file git does not
    track has appeared since)."""
    return hashlib.sha256(b"\0".join((base.encode(), folders, stats.tobytes()))).hexdigest()


def changed_later(root: Path, cache_dir: Path, extras: Collection[str], base: str) -> Callable[[], frozenset[str] | None]:
    """The outputs (paths from ``root``) whose working-tree files may differ from the proven
    commit's, while the proven index copy, that commit and git's settings are still those
    :func:`record` proved (``base``, :attr:`Attempt.base`): every other tracked output holds
    the bytes verified then, whatever was written, staged or committed since. git starts now,
    in its own processes; the returned call waits: the paths ``git diff-files`` lists against
    the copy, or None when ``base`` no longer holds or git cannot answer. A file git did not
    track then is never listed: the caller asks only about files the proven commit has."""
    repo, commit = _at_proof(root, cache_dir)
    if repo is None or commit is None:
        return lambda: None
    try:
        top, rendered, extras = _pathspec(repo, root, extras)
        spec = ("--", rendered, *extras)
        staged = _staged(repo, commit, spec)
        # on git's threads: on one (core.preloadIndex=false) the no-op after an edit waited
        # for it, 2.17 s against 1.97 s at 10,000 tenants x 3, and the edit gained nothing
        listing = repo.git.diff_files("--name-only", "-z", *spec, as_process=True)
    except Exception as exc:
        if _unanswered(exc):
            return lambda: None
        raise

    def finish() -> frozenset[str] | None:
        try:
            names = listing.proc.stdout.read()
            listing.wait()  # GitCommandError when git failed
            if staged.proc.wait() != 0 or _base_key(repo, rendered, extras, cache_dir, commit) != base:
                return None
            return frozenset(p.decode("utf-8", "surrogateescape").removeprefix(top) for p in names.split(b"\0") if p)
        except Exception as exc:
            if _unanswered(exc):
                return None
            raise

    return finish


def base_now(root: Path, cache_dir: Path, extras: Collection[str]) -> str | None:
    """:attr:`Attempt.base` as it would be recorded now (the proven commit's outputs, git's
    settings, the proven index copy's identity): a proof whose base differs cannot hold.
    None when git cannot say."""

    def question(repo: Any, _top: str) -> str | None:
        commit = proof_commit(cache_dir)
        if commit is None:
            return None
        _, rendered, paths = _pathspec(repo, root, extras)
        return _base_key(repo, rendered, paths, cache_dir, commit)

    return _asked(root, question, None)


def _asked(root: Path, question: Callable[[Any, str], _T], failed: _T) -> _T:
    """``question(repo, top)`` of ``root``'s repository (``top``: ``root``'s path from the
    repository top, with a trailing slash, or ""), or ``failed`` when there is no repository
    or git cannot answer (:func:`_unanswered`)."""
    repo = open_repo(root)
    if repo is None:
        return failed
    try:
        return question(repo, _top(repo, root))
    except Exception as exc:
        if _unanswered(exc):
            return failed
        raise


def _top(repo: Any, root: Path) -> str:
    """``root``'s path from the repository top, with a trailing slash ("" at the top): git
    names paths from there."""
    return git_path(repo, root, "rendered").removesuffix("rendered")


class Since(NamedTuple):
    """What :func:`edited_since` found: the outputs ``git diff-files`` lists, the folders
    proven then whose ``lstat`` is not as then (changed, or gone), and every folder proven
    then (paths from ``root``)."""

    moved: frozenset[str]
    changed: list[str]
    proven: frozenset[str]


def edited_since(root: Path, cache_dir: Path, extras: Collection[str], base: str, folders: str) -> Callable[[], Since | None]:
    """What changed in the output tree since git proved it (:func:`record`; ``base`` and
    ``folders``, its :attr:`Attempt.base` and :attr:`Attempt.folders`): the files git lists
    (:func:`changed_later`, started now, in its own processes) and the folders whose stat
    changed -- only there can a file git does not track have appeared. The returned call
    waits for git; None when the proof no longer holds or its folder list is not the one
    recorded."""
    moved = changed_later(root, cache_dir, extras, base)
    repo = open_repo(root)
    if repo is None:
        return lambda: None
    try:
        top = _top(repo, root)
        data, stats = (cache_dir / FOLDERS_FILE).read_bytes(), (cache_dir / STATS_FILE).read_bytes()
    except OSError:
        return lambda: None
    if _folders_digest(data, stats) != folders:
        return lambda: None
    listed = data.decode("utf-8", "surrogateescape").split("\n")
    then = array.array("q", stats)
    changed = [folder.removeprefix(top) for folder in _changed_folders(str(repo.working_tree_dir or ""), listed, then)]
    proven = frozenset(folder.removeprefix(top) for folder in listed)

    def finish() -> Since | None:
        found = moved()
        return None if found is None else Since(found, changed, proven)

    return finish


def _changed_folders(top: str, folders: list[str], then: array.array[int]) -> list[str]:
    """Those of ``folders`` whose (mtime, ctime, inode, mode) is not ``then``'s (flat, four
    per folder), or that cannot be stat'ed now. Compared in C, a block of folders at a time
    (at 10,000 tenants, 230,000 folders: a tuple each was ~0.6 s)."""
    if len(then) != 4 * len(folders):
        return list(folders)
    now = _folder_stats(top, folders, missing=True)
    out: list[str] = []
    for start in range(0, len(folders), _BLOCK):
        end = min(start + _BLOCK, len(folders))
        if now[4 * start : 4 * end] != then[4 * start : 4 * end]:
            out.extend(folders[at] for at in range(start, end) if now[4 * at : 4 * at + 4] != then[4 * at : 4 * at + 4])
    return out


#: Folders compared at once by :func:`_changed_folders` (only a block that differs is looked into).
_BLOCK = 256


def _folders_digest(data: bytes, stats: bytes) -> str:
    return hashlib.sha256(b"%d\0" % len(data) + data + stats).hexdigest()


def tracked_in(root: Path, commit: str, folders: Collection[str]) -> frozenset[str] | None:
    """The paths (from ``root``) ``commit`` has directly in each of ``folders`` (from ``root``):
    files, links and folders alike; None when git cannot answer."""

    def question(repo: Any, top: str) -> frozenset[str]:
        found: set[str] = set()
        for spec in _batches([f"{top}{folder}/" for folder in sorted(folders)]):
            listed = repo.git.ls_tree("-z", "--name-only", "--full-tree", commit, "--", *spec, stdout_as_string=False)
            found.update(p.decode("utf-8", "surrogateescape").removeprefix(top) for p in listed.split(b"\0") if p)
        return frozenset(found)

    return _asked(root, question, None)


def commits_bytes(root: Path, commit: str, files: Mapping[str, bytes]) -> bool:
    """Whether each of ``files`` (path from ``root`` -> bytes read now) is a regular file in
    ``commit`` with a blob of exactly those bytes (a file rewritten with the same bytes: ``git
    diff-files`` lists it against the proven index copy, which is never refreshed); False when
    git cannot answer."""

    def question(repo: Any, top: str) -> bool:
        ids = {
            path.removeprefix(top): (mode, sha)
            for named in _batches(sorted(top + rel for rel in files))
            for path, mode, sha in tree_entries(repo, commit, *named)
        }
        return all(ids.get(rel, (0, ""))[0] in _REGULAR and ids[rel][1] == git_blob_id(data) for rel, data in files.items())

    return _asked(root, question, False)


def commit_file(root: Path, commit: str, rel: str) -> bytes | None:
    """``commit``'s bytes of the file ``rel`` (from ``root``), or None (no such file, or no git)."""

    def question(repo: Any, top: str) -> bytes:
        data: bytes = repo.git.cat_file("blob", f"{commit}:{top}{rel}", stdout_as_string=False, strip_newline_in_stdout=False)
        return data

    return _asked(root, question, None)


def _batches(paths: list[str]) -> Iterator[list[str]]:
    """``paths`` a command line's worth at a time (:data:`_PER_COMMAND`)."""
    for at in range(0, len(paths), _PER_COMMAND):
        yield paths[at : at + _PER_COMMAND]


def _stat_untrusted(repo: Any) -> bool:
    """Whether git was told to ignore ctime or most of the stat (``core.trustctime=false``,
    ``core.checkStat=minimal``): then an edit that restores mtime and size is invisible to it."""
    trust = repo.git.config("--bool", "--get", "core.trustctime", with_exceptions=False).strip()
    check = repo.git.config("--get", "core.checkstat", with_exceptions=False).strip().lower()
    return bool(trust == "false" or check == "minimal")


def _fingerprint(repo: Any, rendered: str) -> bytes:
    """What decides the attributes and conversions besides the commit's tree: git's whole config,
    every ``.gitattributes`` from the repository top down to ``rendered``'s folder, the
    repository's ``info/attributes`` and the user's attributes file."""
    config = repo.git.config("-z", "--list", with_exceptions=False, stdout_as_string=False)
    top = Path(repo.working_tree_dir or "")
    parts = rendered.split("/")[:-1]
    sources = [top.joinpath(*parts[:n], ".gitattributes") for n in range(len(parts) + 1)]
    sources.append(Path(repo.git_dir) / "info" / "attributes")
    configured = repo.git.config("--path", "--get", "core.attributesFile", with_exceptions=False).strip()
    xdg = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    sources.append(Path(configured) if configured else Path(xdg) / "git" / "attributes")
    total = hashlib.sha256(config)
    for source in sources:
        try:
            total.update(os.fsencode(source) + b"\0" + source.read_bytes() + b"\0")
        except OSError:
            total.update(os.fsencode(source) + b"\0missing\0")
    return total.hexdigest().encode()


def _output_dirs(repo: Any, top: str) -> list[str]:
    """Every output folder outside ``rendered/`` that exists (a temporary file a write left
    there fails ``check`` even when no generated workflow is listed)."""
    base = repo.working_tree_dir or ""
    return [top + d for d in OUTPUT_DIRS if d != "rendered" and os.path.isdir(os.path.join(base, top + d))]


def _parents(paths: Iterable[str]) -> set[str]:
    """The folders holding ``paths`` (a stray temporary file there must change a stat)."""
    return {p.rsplit("/", 1)[0] for p in paths if "/" in p}
