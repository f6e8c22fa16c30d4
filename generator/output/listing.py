"""List the output folders without reading every folder: a folder whose ``lstat`` is as when
it was last read holds the same entries (as git's untracked cache argues).

Adding, removing or renaming an entry updates its folder's mtime and ctime; a folder that
changed within :data:`RACY_NS` of being read is not cached (a later change in the same
timestamp tick would not show). At 10,000 tenants the output tree has ~230,000 folders:
one ``lstat`` each instead of one ``opendir`` and read each (measured in docs/benchmark.md).
The cache is an optimisation only: anything missing, unreadable or different is read again.
"""

from __future__ import annotations

import contextlib
import functools
import os
import struct
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from generator.output.atomic import write_atomic

#: Where caches that are safe to delete live (git-ignored).
CACHE_DIR = ".companyos-cache"
LISTING_PATH = f"{CACHE_DIR}/listing"
#: A folder (or file) changed this recently (or later) may change again within one timestamp
#: tick without its stat changing: never trusted by stat yet. Shared by every stat-based
#: proof (this cache, ``checkcache``'s record, ``committed``'s key).
RACY_NS = 2_000_000_000
_VERSION = 3
#: Joins a folder's names in the cache: one string per folder, not one per name (at 10,000
#: tenants 800,000 names as strings were ~140 MB of an edit's memory). No name holds it.
_SEP = "\0"


class _Folder(msgspec.Struct, array_like=True, gc=False):
    """A folder as last read: its ``lstat`` identity (:func:`_stamp`) and its entries by
    kind, each kind's names :data:`_SEP`-joined. Few objects per folder, none tracked by
    the garbage collector: at 10,000 tenants four stat integers and a list each were
    ~40 MB of an edit's memory."""

    stamp: bytes
    files: str
    dirs: str
    links: str


#: mtime_ns, ctime_ns, inode and mode, packed: one object to compare.
_STAMP = struct.Struct("<qqQQ")


def _stamp(st: os.stat_result) -> bytes:
    return _STAMP.pack(st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_mode)


def _changed_since(entry: _Folder, since: int) -> bool:
    """Whether the folder changed at or after ``since`` (ns) as its stamp says."""
    mtime: int
    ctime: int
    mtime, ctime, _, _ = _STAMP.unpack(entry.stamp)
    return max(mtime, ctime) >= since


class _Cache(msgspec.Struct, array_like=True):
    version: int
    #: The top folders walked: a walk of other folders neither uses nor replaces the cache.
    tops: list[str]
    folders: dict[str, _Folder]


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(_Cache)


@dataclass
class Listing:
    """What one walk of the output folders found, as repository-relative paths."""

    #: Symbolic links anywhere below the folders (to files or folders). We never write
    #: through one: a link could point anywhere, and the walk does not follow them.
    links: set[str]
    #: Real folders (not links), the walked top folders included.
    dirs: set[str] = field(default_factory=set)
    #: The cache this walk would leave, when it differs from the one it read.
    update: _Cache | None = None
    #: Folder -> its files' names (:data:`_SEP`-joined), and links to files by path: the
    #: files' paths are made when asked (:meth:`paths`), not held.
    _names: dict[str, str] = field(default_factory=dict, repr=False)
    _file_links: list[str] = field(default_factory=list, repr=False)

    def paths(self) -> Iterator[str]:
        """Every file (and link to one), made one at a time: a pass over 800,000 paths
        holds none of them (``tree._status``)."""
        for folder, names in self._names.items():
            prefix = folder + "/"
            for name in names.split(_SEP):
                yield prefix + name
        yield from self._file_links

    def has(self, rel: str) -> bool:
        """Whether ``rel`` is a file (or a link to one) the walk found."""
        folder, _, name = rel.rpartition("/")
        names = self._names.get(folder)
        return (names is not None and name in names.split(_SEP)) or rel in self._file_links

    @functools.cached_property
    def files(self) -> set[str]:
        """Every file (and link to one) as a set (for a caller that needs them all)."""
        return set(self.paths())

    def remember(self, root: Path) -> None:
        """Keep what this walk read for the next one (after a write succeeded, or a check:
        a refused write changes nothing on disk, not even a cache)."""
        if self.update is not None:
            with contextlib.suppress(OSError):
                write_atomic(root / LISTING_PATH, _ENCODER.encode(self.update))
            self.update = None


def list_folders(root: Path, folders: Iterable[str], *, cached: bool = True, offer: bool = True) -> Listing:
    """Files, links and folders below ``folders`` (relative to ``root``), descending real
    folders only, never a link; an unreadable folder is skipped. ``cached``: reuse
    ``.companyos-cache/listing``, and with ``offer`` offer its update (:meth:`Listing.remember`
    keeps it; without, the cached folders are let go as the walk passes them)."""
    base = os.fspath(root)
    top = os.path.join(base, "")  # plain concatenation below: ~230,000 folders at 10,000 tenants
    folders = list(folders)
    known = _load(root, folders) if cached else {}
    fresh: dict[str, _Folder] = {}
    since = time.time_ns() - RACY_NS
    tops = [folder for folder in folders if os.path.isdir(os.path.join(base, folder))]
    listing = Listing(set(), set(tops))
    pending = list(tops)
    changed = False
    while pending:
        folder = pending.pop()
        path = top + folder
        try:
            st = os.lstat(path)
        except OSError:
            continue
        entry = known.pop(folder, None)  # its key string goes: the walk made this one
        if entry is None or entry.stamp != _stamp(st):
            entry = _read(path, st)
            if entry is None:
                continue
            changed = True
        if _changed_since(entry, since):  # not kept: read again next time
            changed = True
        elif offer:
            fresh[folder] = entry
        prefix = folder + "/"
        if entry.files:
            listing._names[folder] = entry.files
        if entry.dirs:
            for name in entry.dirs.split(_SEP):
                listing.dirs.add(prefix + name)
                pending.append(prefix + name)
        for name in entry.links.split(_SEP) if entry.links else ():
            listing.links.add(prefix + name)
            if not os.path.isdir(os.path.join(path, name)):  # where it points may change any time: asked afresh
                listing._file_links.append(prefix + name)
    if cached and offer and (changed or known):  # a folder left in ``known`` is gone
        listing.update = _Cache(_VERSION, folders, fresh)
    return listing


def _read(path: str, st: os.stat_result) -> _Folder | None:
    """The folder's entries now, under the ``lstat`` taken before reading them (a change in
    between makes the next ``lstat`` differ: read again then)."""
    files: list[str] = []
    dirs: list[str] = []
    links: list[str] = []
    try:
        with os.scandir(path) as entries:
            for item in entries:
                if item.is_symlink():
                    links.append(item.name)
                elif item.is_dir(follow_symlinks=False):
                    dirs.append(item.name)
                else:
                    files.append(item.name)
    except OSError:
        return None
    return _Folder(_stamp(st), _SEP.join(files), _SEP.join(dirs), _SEP.join(links))


def _load(root: Path, tops: list[str]) -> dict[str, _Folder]:
    try:
        cache = _DECODER.decode((root / LISTING_PATH).read_bytes())
    except (OSError, msgspec.MsgspecError):
        return {}
    return cache.folders if cache.version == _VERSION and cache.tops == tops else {}
