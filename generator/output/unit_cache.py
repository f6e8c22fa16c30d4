"""Keep each reused tenant unit as the plan decoded it (inputs digest, manifest sha256, file
entries), keyed by its manifest's stat stamp, in ``.companyos-cache/units``.

At 10,000 tenants an edit read, hashed and decoded ~650 MB of unit manifests to learn what
a few MB say (~2 s). An entry is used only when the manifest's stamp (size, mtime, ctime,
inode) is the one taken before the bytes were read (as git's index trusts a file) and the
context digest is the run's; a stamp taken within :data:`RACY_NS` of the file's change is
never kept. The unit is then still vouched for as before (its files' stat or git's proof).
Written in frames after a clean run, read a frame at a time. docs/incremental.md.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, NamedTuple, get_type_hints

import msgspec

from generator.catalog.parse_cache import Stamp, stamp_of
from generator.output.atomic import write_atomic_frames
from generator.output.frames import framed, next_frame
from generator.output.listing import CACHE_DIR, RACY_NS
from generator.output.slim_entry import SlimEntry

CACHE_PATH = f"{CACHE_DIR}/units"
VERSION = 1
_FRAME = 256  # units per frame: a frame, not the file (~70 MB at 10,000 tenants), is held


class _Unit(msgspec.Struct, array_like=True):
    name: str
    stamp: Stamp
    sha256: str
    inputs: str
    #: The unit's distinct entries (the plan shares equal ones), and for each file (in the
    #: manifest's order) its path and which entry it has.
    kinds: list[Mapping[str, Any]]
    paths: list[str]
    kind_of: list[int]


@functools.lru_cache(maxsize=4)
def _decoder(entry: type[SlimEntry]) -> msgspec.msgpack.Decoder[list[Any]]:
    """Units whose entries decode as ``entry`` (``units.shared_entry``: this catalog's
    targets and environments as one shared string each, as the manifest decoder does)."""
    fields = {**get_type_hints(_Unit), "kinds": list[entry]}  # type: ignore[valid-type]  # _Unit's fields, in order
    typed = msgspec.defstruct("_TypedUnit", list(fields.items()), array_like=True)
    return msgspec.msgpack.Decoder(list[typed])  # type: ignore[valid-type]


class _Header(msgspec.Struct, array_like=True):
    version: int
    context: str


class Cached(NamedTuple):
    sha256: str
    inputs: str
    entries: dict[str, Mapping[str, Any]]


class Kept(NamedTuple):
    """A reused unit to keep: its tenant, stamp, manifest sha256, inputs and entries."""

    name: str
    stamp: Stamp
    sha256: str
    inputs: str
    entries: Iterable[tuple[str, Mapping[str, Any]]]


_ENCODER = msgspec.msgpack.Encoder()
_HEADER = msgspec.msgpack.Decoder(_Header)


def stamp(root: Path, manifest: str) -> Stamp | None:
    """The manifest's stamp, or None when it cannot be kept: missing, or changed within
    :data:`RACY_NS` of now (a second change in the same tick would keep the stamp)."""
    try:
        st = os.lstat(os.path.join(root, manifest))
    except OSError:
        return None
    if max(st.st_mtime_ns, st.st_ctime_ns) > time.time_ns() - RACY_NS:
        return None
    return stamp_of(st)


class Reader:
    """The cache's units in tenant order, a frame at a time: ask :meth:`get` in that order
    (``with`` closes the file)."""

    def __init__(self, root: Path, context: str, entry: type[SlimEntry]) -> None:
        self._units = _decoder(entry)
        self._file: BinaryIO | None = None
        self._frame: dict[str, Any] = {}
        self._last = ""
        with contextlib.suppress(OSError):
            self._file = open(root / CACHE_PATH, "rb")  # noqa: SIM115 - read a frame at a time, closed at the end
        header = self._next()
        if header is None or not _is_header(header, context):
            self.close()

    def get(self, name: str, stamp: Stamp) -> Cached | None:
        """The unit of tenant ``name`` as kept, if its manifest's stamp is ``stamp``."""
        while name > self._last and self._file is not None:
            self._load()
        found = self._frame.pop(name, None)
        if found is None or tuple(found.stamp) != stamp or len(found.paths) != len(found.kind_of):
            return None
        kinds = found.kinds
        if found.kind_of and not (min(found.kind_of) >= 0 and max(found.kind_of) < len(kinds)):
            return None
        for kind in kinds:
            kind.tenant = name  # one string for the unit's entries
        return Cached(found.sha256, found.inputs, dict(zip(found.paths, map(kinds.__getitem__, found.kind_of), strict=True)))

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._file, self._frame = None, {}

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        self.close()

    def _load(self) -> None:
        data = self._next()
        try:
            units = self._units.decode(data) if data is not None else None
        except msgspec.MsgspecError:
            units = None
        if not units:
            self.close()
            return
        self._frame = {unit.name: unit for unit in units}
        self._last = units[-1].name

    def _next(self) -> bytes | None:
        """The next frame; None at the end, and for a truncated or unreadable one."""
        if self._file is None:
            return None
        try:
            return next_frame(self._file)
        except (OSError, ValueError):
            return None


def _is_header(data: bytes, context: str) -> bool:
    try:
        header = _HEADER.decode(data)
    except msgspec.MsgspecError:
        return False
    return header.version == VERSION and header.context == context


def save(root: Path, context: str, units: Iterable[Kept]) -> None:
    """Keep ``units`` (in tenant order) for the next run; best effort."""
    with contextlib.suppress(OSError):
        write_atomic_frames(root / CACHE_PATH, _frames(context, units))


def _frames(context: str, units: Iterable[Kept]) -> Iterator[bytes]:
    yield framed(_ENCODER.encode(_Header(VERSION, context)))
    chunk: list[_Unit] = []
    for unit in units:
        chunk.append(_row(unit))
        if len(chunk) == _FRAME:
            yield framed(_ENCODER.encode(chunk))
            chunk = []
    if chunk:
        yield framed(_ENCODER.encode(chunk))


def _row(unit: Kept) -> _Unit:
    index: dict[int, int] = {}
    kinds: list[Mapping[str, Any]] = []
    paths: list[str] = []
    kind_of: list[int] = []
    for path, entry in unit.entries:
        at = index.get(id(entry))
        if at is None:
            at = index[id(entry)] = len(kinds)
            kinds.append(entry)
        paths.append(path)
        kind_of.append(at)
    return _Unit(unit.name, unit.stamp, unit.sha256, unit.inputs, kinds, paths, kind_of)
