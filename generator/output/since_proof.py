"""Answer "is the tree still as last verified clean?" for a tree edited since git proved it,
without one ``lstat`` per output file: the no-op ``render`` and cached ``check`` after a
one-tenant edit, before it is committed.

git proved the tree then (``committed.record``; the record's ``git_base``). Since then a few
units were rendered again (their manifests' sha256s differ from the proven ones), and perhaps
committed. Any other unit's files hold the proven commit's bytes when ``git diff-files``
(asked about the proven index copy) does not list them, and those are the bytes verified
then. So only the edited units' files are read and hashed; a file git did not track then can
only have appeared in a folder whose ``lstat`` changed since the proof, and those few are
listed. Any doubt answers False: the stat walk decides then.
docs/incremental.md ("A tree edited since git's proof").
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Collection, Mapping
from pathlib import Path

from generator.output import committed
from generator.output.listing import CACHE_DIR
from generator.output.tree import manifest_files

#: Above this many edited units, or files the record keeps by content, the walk is cheaper.
MOST_EDITED = 64
MOST_RACY = 4096


def clean_since_proof(root: Path, cached: Mapping[str, object]) -> bool:
    """Whether the tree holds exactly what the record ``cached`` says, proven through git's
    proof (``git_base``) and the edited units' bytes (module docstring)."""
    proven, fleet, contents = cached.get("git_base"), cached.get("fleet"), cached.get("contents")
    extra, racy = cached.get("extra"), cached.get("racy")
    if not (isinstance(proven, dict) and isinstance(fleet, list) and isinstance(contents, dict)):
        return False
    key, then, folders = proven.get("key"), proven.get("manifests"), proven.get("folders")
    if not (isinstance(key, str) and isinstance(then, dict) and isinstance(folders, str) and isinstance(extra, list)):
        return False
    if not isinstance(racy, dict) or len(racy) > MOST_RACY:
        return False
    now = recorded_manifests(cached)
    if set(now) != set(fleet):
        return False  # a unit without its manifest's sha256
    edited = [unit for unit in fleet if now[unit] != then.get(unit)]
    removed = sorted(set(then) - set(fleet))  # a tenant removed since: its manifest and files must be gone
    if len(edited) + len(removed) > MOST_EDITED:
        return False
    commit = committed.proof_commit(root / CACHE_DIR)
    if commit is None:
        return False
    since = committed.edited_since(root, root / CACHE_DIR, extra, key, folders)  # git runs while the units are read
    edits = _edited_files(root, commit, edited, removed, now, then)
    found = since()
    if edits is None or found is None:
        return False
    expected, gone = edits
    if any(os.path.lexists(os.path.join(root, rel)) for rel in gone):
        return False  # a file an edit dropped is still there (the folder scan would find it too)
    rewritten = found.moved - expected.keys() - gone
    if not _as_proven(root, commit, rewritten):
        return False  # a file git lists that no edited unit explains, and not the proven bytes
    return _nothing_else(root, commit, found, expected, rewritten) and _holds(root, expected) and _holds(root, racy)


def recorded_manifests(record: Mapping[str, object]) -> dict[str, str]:
    """Unit manifest -> its sha256 as the verified-clean ``record`` took it (the key of its
    content sum, ``checkcache``): equal manifest bytes list equal files with equal sha256s."""
    contents = record.get("contents")
    if not isinstance(contents, dict):
        return {}
    return {str(unit): sums[0] for unit, sums in contents.items() if isinstance(sums, list) and sums and isinstance(sums[0], str)}


def _as_proven(root: Path, commit: str, listed: Collection[str]) -> bool:
    """Whether each file git lists that no edit explains holds the proven ``commit``'s bytes
    all the same (a render wrote the same bytes again: an edit undone; the proven index copy
    is never refreshed)."""
    if len(listed) > MOST_RACY:
        return False
    files = {rel: _regular(root, rel) for rel in listed}
    found = {rel: data for rel, data in files.items() if data is not None}
    return len(found) == len(files) and (not found or committed.commits_bytes(root, commit, found))


def _edited_files(
    root: Path, commit: str, edited: list[str], removed: list[str], now: Mapping[str, str], then: Mapping[str, object]
) -> tuple[dict[str, str], set[str]] | None:
    """Every file the ``edited`` units list now, and their manifests, with the sha256 the
    record says it holds; and the files the proven ``commit``'s versions of them list and they
    no longer do, and the ``removed`` units' manifests and files (gone from disk, or stale).
    None when a manifest is not the recorded one."""
    expected: dict[str, str] = {}
    for unit in edited:
        data = _regular(root, unit)
        if data is None or hashlib.sha256(data).hexdigest() != now[unit]:
            return None
        expected[unit] = now[unit]
        for path, entry in manifest_files(data).items():
            sha = entry.get("sha256")
            if not isinstance(sha, str):
                return None
            expected[path] = sha
    gone: set[str] = set(removed)
    for unit in [*edited, *removed]:
        if unit in then:
            head = committed.commit_file(root, commit, unit)
            if head is None or hashlib.sha256(head).hexdigest() != then[unit]:
                return None
            gone.update(path for path in manifest_files(head) if path not in expected)
    return expected, gone


def _nothing_else(root: Path, commit: str, found: committed.Since, expected: Collection[str], rewritten: Collection[str]) -> bool:
    """Whether each entry of a folder changed since the proof is a folder proven then (its own
    stat was compared), a file the proven ``commit`` has that git does not list or that holds
    its bytes (``rewritten``), or an edited unit's file; a folder new since holds edited units'
    files alone."""
    present = []
    for folder in found.changed:
        try:
            mode = os.lstat(os.path.join(root, folder)).st_mode
        except OSError:
            continue  # gone: the files the proven commit had there are listed by git
        if not stat.S_ISDIR(mode):
            return False  # a link (or a file) where a folder was proven
        present.append(folder)
    tracked = committed.tracked_in(root, commit, present)
    if tracked is None:
        return False
    for folder in present:
        with os.scandir(os.path.join(root, folder)) as entries:
            for item in entries:
                rel = f"{folder}/{item.name}"
                if item.is_dir(follow_symlinks=False):
                    if rel not in found.proven and not _only_expected(root, rel, expected):
                        return False
                elif rel not in expected and (rel not in tracked or (rel in found.moved and rel not in rewritten)):
                    return False
    return True


def _only_expected(root: Path, folder: str, expected: Collection[str]) -> bool:
    """Whether every file below the new ``folder`` is an edited unit's."""
    for here, dirs, files in os.walk(os.path.join(root, folder)):
        base = os.path.relpath(here, root).replace(os.sep, "/")
        if any(f"{base}/{name}" not in expected for name in files):
            return False
        if any(os.path.islink(os.path.join(here, name)) for name in dirs):
            return False  # a link to a folder is no file of ours
    return True


def _holds(root: Path, expected: Mapping[str, object]) -> bool:
    """Whether each path is a regular file whose sha256 is the one given."""
    return all(isinstance(sha, str) and _sha(root, rel) == sha for rel, sha in expected.items())


def _sha(root: Path, rel: str) -> str | None:
    data = _regular(root, rel)
    return None if data is None else hashlib.sha256(data).hexdigest()


def _regular(root: Path, rel: str) -> bytes | None:
    """The bytes of ``rel`` when it is a regular file (never through a link: opened without
    following one, then asked what it is)."""
    try:
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
        descriptor = os.open(os.path.join(root, rel), flags)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            return None
        with os.fdopen(descriptor, "rb", closefd=False) as handle:
            return handle.read()
    except OSError:
        return None
    finally:
        os.close(descriptor)
