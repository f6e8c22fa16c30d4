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
import itertools
import os
import struct
import time
from collections.abc import Callable, Container, Iterable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import msgspec

from generator.output.atomic import write_atomic_frames
from generator.output.frames import framed, next_frame

#: Where caches that are safe to delete live (git-ignored).
CACHE_DIR = ".companyos-cache"
LISTING_PATH = f"{CACHE_DIR}/listing"
#: A folder (or file) changed this recently (or later) may change again within one timestamp
#: tick without its stat changing: never trusted by stat yet. Shared by every stat-based
#: proof (this cache, ``checkcache``'s record, ``committed``'s key).
RACY_NS = 2_000_000_000
_VERSION = 4
#: Joins a folder's names in the cache: one string per folder, not one per name (at 10,000
#: tenants 800,000 names as strings were ~140 MB of an edit's memory). No name holds it.
_SEP = "\0"
#: Folders whose names :meth:`Listing.finder` keeps split: paths in order leave a folder
#: for its subfolders and come back, a few levels deep. And at most this many names, beyond
#: the last folder's: an edit asks a few files in many fleet-sized folders (10,000 names
#: each at 10,000 tenants: 64 of them kept were ~25 MB of its peak).
_FOLDERS_KEPT = 64
_NAMES_KEPT = 20_000


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


#: The cache file is frames (``frames``), each a 4-byte length and that many bytes of
#: msgpack: first ``[version, tops]``, then maps of up to :data:`_FRAME` folders. Read and
#: written a frame at a time: at 10,000 tenants the whole cache as one buffer was ~27 MB more
#: of an edit's peak.
_FRAME = 4096
_ENCODER = msgspec.msgpack.Encoder()
_HEAD = msgspec.msgpack.Decoder(tuple[int, list[str]])
_FOLDERS = msgspec.msgpack.Decoder(dict[str, _Folder])


class _Dirs(AbstractSet[str]):
    """Every real folder the walk found: those it read, and the few it could not (never
    both: a folder is walked once, and one it cannot read leaves the map)."""

    __slots__ = ("_read", "_unread")

    def __init__(self, read: Mapping[str, object], unread: AbstractSet[str]) -> None:
        self._read, self._unread = read, unread

    def __contains__(self, item: object) -> bool:
        return item in self._read or item in self._unread

    def __iter__(self) -> Iterator[str]:
        yield from self._read
        yield from self._unread

    def __len__(self) -> int:
        return len(self._read) + len(self._unread)


@dataclass
class Listing:
    """What one walk of the output folders found, as repository-relative paths."""

    #: Symbolic links anywhere below the folders (to files or folders). We never write
    #: through one: a link could point anywhere, and the walk does not follow them.
    links: set[str]
    #: The top folders walked.
    tops: list[str] = field(default_factory=list)
    #: Whether :meth:`remember` has a cache to write (a folder was read or is gone).
    changed: bool = False
    #: Folder -> what the walk found in it: one map for the names, the folders (:attr:`dirs`)
    #: and the cache's update (at 10,000 tenants a set and a map beside it were ~25 MB).
    _folders: dict[str, _Folder] = field(default_factory=dict, repr=False)
    #: Folders a parent lists that could not be read (gone, or unreadable), and folders
    #: changed too recently to cache (:data:`RACY_NS`).
    _unread: set[str] = field(default_factory=set, repr=False)
    _racy: set[str] = field(default_factory=set, repr=False)
    _file_links: list[str] = field(default_factory=list, repr=False)

    @property
    def dirs(self) -> AbstractSet[str]:
        """Real folders (not links), the walked top folders included."""
        return _Dirs(self._folders, self._unread)

    def paths(self) -> Iterator[str]:
        """Every file (and link to one), made one at a time: a pass over 800,000 paths
        holds none of them (``tree._status``)."""
        for folder, entry in self._folders.items():
            if entry.files:
                prefix = folder + "/"
                for name in entry.files.split(_SEP):
                    yield prefix + name
        yield from self._file_links

    def counted(self, expected: Mapping[str, int], unless: Container[str]) -> tuple[int, list[str]]:
        """How many files the folders hold that hold exactly ``expected[folder]`` files and are
        not in ``unless``, and every other folder with files (for :meth:`by_folder`). One
        tight pass: at 10,000 tenants ~230,000 folders, most of them counted here, none of
        their names split (``tree._status``)."""
        counted = 0
        rest: list[str] = []
        wanted = expected.get
        for folder, entry in self._folders.items():
            files = entry.files
            if files:
                count = files.count(_SEP) + 1
                if wanted(folder) == count and folder not in unless:
                    counted += count
                else:
                    rest.append(folder)
        return counted, rest

    def by_folder(self, folders: Iterable[str]) -> Iterator[tuple[str, int, Callable[[], list[str]], Callable[[], Iterator[str]]]]:
        """:meth:`paths` of ``folders`` (each one with files; :meth:`counted`'s rest) a folder at a
        time: (folder, how many files, a call that lists their names, a call that makes their
        paths); the links to files last, as the folder ``""`` (``tree._status`` counts a folder's
        files before it makes any path)."""
        for folder in folders:
            files = self._folders[folder].files
            yield folder, files.count(_SEP) + 1, functools.partial(files.split, _SEP), functools.partial(_joined, folder + "/", files)
        if self._file_links:
            yield "", len(self._file_links), list, functools.partial(iter, list(self._file_links))

    def finder(self) -> Callable[[str], bool]:
        """Whether a path is a file (or a link to one) the walk found, for paths asked in path
        order: each folder's names are split into a set once, and only the last
        :data:`_FOLDERS_KEPT` folders' (up to :data:`_NAMES_KEPT` names) are kept (a full
        render asks every file: at 10,000 tenants a set of the 800,000 paths was ~120 MB of
        its peak)."""
        recent: dict[str, frozenset[str]] = {}
        held = 0  # names in ``recent``
        folders, links = self._folders, self._file_links

        def found(rel: str) -> bool:
            nonlocal held
            folder, _, name = rel.rpartition("/")
            names = recent.get(folder)
            if names is None:
                entry = folders.get(folder)
                names = frozenset(entry.files.split(_SEP)) if entry is not None and entry.files else frozenset()
                if len(recent) >= _FOLDERS_KEPT or held + len(names) > _NAMES_KEPT:
                    recent.clear()
                    held = 0
                recent[folder] = names
                held += len(names)
            return name in names or rel in links

        return found

    @functools.cached_property
    def files(self) -> set[str]:
        """Every file (and link to one) as a set (for a caller that needs them all)."""
        return set(self.paths())

    def remember(self, root: Path) -> None:
        """Keep what this walk read for the next one (after a write succeeded, or a check:
        a refused write changes nothing on disk, not even a cache)."""
        if self.changed:
            with contextlib.suppress(OSError):
                write_atomic_frames(root / LISTING_PATH, self._frames())
            self.changed = False

    def _frames(self) -> Iterator[bytes]:
        yield framed(_ENCODER.encode((_VERSION, self.tops)))
        # a racy one is read again next time
        yield from _folder_frames((folder, entry) for folder, entry in self._folders.items() if entry.stamp and folder not in self._racy)


class _Wire(msgspec.Struct, array_like=True):
    """What a walk found besides its folders: the first frame of :func:`wire_frames`."""

    tops: list[str]
    changed: bool
    links: list[str]
    unread: list[str]
    racy: list[str]
    file_links: list[str]


_WIRE = msgspec.msgpack.Decoder(_Wire)


def wire_frames(listing: Listing) -> Iterator[bytes]:
    """``listing`` whole, as frames (``walk_apart`` sends a walk made in a child process):
    every folder, racy or not, with or without its stat."""
    found = _Wire(listing.tops, listing.changed, sorted(listing.links), sorted(listing._unread), sorted(listing._racy), listing._file_links)
    yield framed(_ENCODER.encode(found))
    yield from _folder_frames(listing._folders.items())


def _folder_frames(folders: Iterable[tuple[str, _Folder]]) -> Iterator[bytes]:
    """``folders`` as frames of up to :data:`_FRAME` folders each."""
    remaining = iter(folders)
    while chunk := dict(itertools.islice(remaining, _FRAME)):
        yield framed(_ENCODER.encode(chunk))


def from_wire(fh: BinaryIO) -> Listing:
    """The listing :func:`wire_frames` sent; ValueError or ``msgspec.MsgspecError`` for
    anything else."""
    head = next_frame(fh)
    if head is None:
        raise ValueError("empty")
    found = _WIRE.decode(head)
    folders: dict[str, _Folder] = {}
    while (frame := next_frame(fh)) is not None:
        folders.update(_FOLDERS.decode(frame))
    return Listing(set(found.links), found.tops, found.changed, folders, set(found.unread), set(found.racy), found.file_links)


def _joined(prefix: str, names: str) -> Iterator[str]:
    return map(prefix.__add__, names.split(_SEP))


def list_folders(root: Path, folders: Iterable[str], *, cached: bool = True, offer: bool = True) -> Listing:
    """Files, links and folders below ``folders`` (relative to ``root``), descending real
    folders only, never a link; an unreadable folder is skipped. ``cached``: reuse
    ``.companyos-cache/listing``, and with ``offer`` offer its update (:meth:`Listing.remember`
    keeps it; without, each folder's stat is let go as the walk passes it)."""
    base = os.fspath(root)
    top = os.path.join(base, "")  # plain concatenation below: ~230,000 folders at 10,000 tenants
    folders = list(folders)
    # the cache's map becomes the walk's, entry by entry: one table, not a second beside it
    # (at 10,000 tenants ~10 MB), and one key string per folder
    walked = _load(root, folders) if cached else {}
    keep = cached and offer
    since = time.time_ns() - RACY_NS
    tops = [folder for folder in folders if os.path.isdir(os.path.join(base, folder))]
    listing = Listing(set(), folders, _folders=walked)
    pending = list(tops)
    changed = False
    visited = 0
    while pending:
        folder = pending.pop()
        path = top + folder
        entry = walked.get(folder)
        try:
            st = os.lstat(path)
        except OSError:
            st = None
        if st is not None and (entry is None or entry.stamp != _stamp(st)):
            entry, changed = _read(path, st, keep), True  # its stat kept only to be cached
        if st is None or entry is None:  # gone since its parent was read, or unreadable
            walked.pop(folder, None)
            listing._unread.add(folder)
            continue
        visited += 1
        if st.st_mtime_ns >= since or st.st_ctime_ns >= since:  # not kept: read again next time
            changed = True
            listing._racy.add(folder)
        if not keep and entry.stamp:
            entry = _Folder(b"", entry.files, entry.dirs, entry.links)  # its stat goes: never cached
        walked[folder] = entry  # a cached key stays: the walk's string goes
        prefix = folder + "/"
        if entry.dirs:
            pending += [prefix + name for name in entry.dirs.split(_SEP)]
        for name in entry.links.split(_SEP) if entry.links else ():
            listing.links.add(prefix + name)
            if not os.path.isdir(os.path.join(path, name)):  # where it points may change any time: asked afresh
                listing._file_links.append(prefix + name)
    if visited != len(walked):  # a cached folder the walk did not reach is gone
        _drop_unreached(walked, tops)
        changed = True
    listing.changed = keep and changed
    return listing


def _drop_unreached(walked: dict[str, _Folder], tops: list[str]) -> None:
    """Remove the folders no walked folder lists (gone since cached): rare, so in memory
    only, from the entries the walk left."""
    reached: set[str] = set()
    pending = [folder for folder in tops if folder in walked]
    while pending:
        folder = pending.pop()
        reached.add(folder)
        dirs = walked[folder].dirs
        if dirs:
            pending.extend(sub for name in dirs.split(_SEP) if (sub := f"{folder}/{name}") in walked)
    for folder in [folder for folder in walked if folder not in reached]:
        del walked[folder]


def _read(path: str, st: os.stat_result, keep: bool = True) -> _Folder | None:
    """The folder's entries now, under the ``lstat`` taken before reading them (a change in
    between makes the next ``lstat`` differ: read again then); ``keep``: with that stat, to
    be cached (a walk with nothing to cache, ``check --base``, reads every folder of a fresh
    checkout: one record each, not a second without its stat)."""
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
    return _Folder(_stamp(st) if keep else b"", _SEP.join(files), _SEP.join(dirs), _SEP.join(links))


def _load(root: Path, tops: list[str]) -> dict[str, _Folder]:
    """The cached folders, read a frame at a time; empty for anything else (another version,
    other tops, a damaged or truncated file)."""
    folders: dict[str, _Folder] = {}
    try:
        with open(root / LISTING_PATH, "rb") as fh:
            head = next_frame(fh)
            if head is None or _HEAD.decode(head) != (_VERSION, tops):
                return {}
            while (frame := next_frame(fh)) is not None:
                folders.update(_FOLDERS.decode(frame))
    except (OSError, ValueError, msgspec.MsgspecError):
        return {}
    return folders
