"""Rendered bytes kept out of memory while a large render runs.

A parallel render's workers append each finished file to one unlinked temporary file (a
:class:`Spool`) and send back where it lies (a :data:`Spilled` place), not its bytes: neither a
worker nor the parent then holds the output (~450 MB at 1,000 tenants x 3, ten times that
at 10,000). :class:`SpooledFiles` is the render's ``{path: bytes}``, reading a spilled file
back when asked (from the page cache, as a rule). The render stays a function of the
catalog: the bytes are the same, only where they wait differs. The file never has a name
(``O_TMPFILE``, else unlinked at once), so a killed process leaves nothing behind.
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from typing import NewType

#: Where one file's bytes lie in the spool (:func:`spilled`): its offset and length packed in
#: one plain int. As a tuple of two ints it was ~124 bytes a file (~100 MB of a cold render at
#: 10,000 tenants); as an int subclass ~64, since the collector tracks those; a plain int
#: of three digits is 40.
Spilled = NewType("Spilled", int)
_LENGTH_BITS = 40
#: Keeps a place true even at offset 0 with nothing in it, and every place three int digits.
_MARKER = 1 << 89


def spilled(offset: int, length: int) -> Spilled:
    """The place of ``length`` bytes at ``offset``; ValueError for one it cannot hold."""
    if not (0 <= length < 1 << _LENGTH_BITS and 0 <= offset < _MARKER >> _LENGTH_BITS):
        raise ValueError(f"no spool place for offset {offset}, length {length}")
    return Spilled(_MARKER | offset << _LENGTH_BITS | length)


def offset_of(where: Spilled) -> int:
    return (where ^ _MARKER) >> _LENGTH_BITS


def length_of(where: Spilled) -> int:
    return where & ((1 << _LENGTH_BITS) - 1)


#: A file's bytes, or where they were spilled.
Stored = bytes | Spilled


def made() -> Spool | None:
    """A new spool, or None when no temporary file can be made (the bytes are then held)."""
    try:
        return Spool()
    except OSError:
        return None


class Spool:
    """One temporary file that forked workers append to, each reserving its span under a
    shared counter (a write at its own offset: no shared file position is relied on)."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 (held for the spool's life, closed with it)
        self._end = multiprocessing.get_context("fork").Value("q", 0)

    def put(self, data: bytes) -> Stored:
        """Append ``data`` (in any process forked after the spool was made) and say where;
        ``data`` itself when the spool cannot take it (a full or unwritable temporary
        folder): held in memory as before a spool existed, rather than failing the render.
        A span written in part is never read."""
        with self._end.get_lock():
            offset = self._end.value
            self._end.value = offset + len(data)
        view = memoryview(data)
        at = offset
        try:
            while view:
                written = os.pwrite(self._file.fileno(), view, at)
                view, at = view[written:], at + written
        except OSError:
            return data
        return spilled(offset, len(data))

    def get(self, where: Spilled) -> bytes:
        offset, length = offset_of(where), length_of(where)
        data = os.pread(self._file.fileno(), length, offset)
        while len(data) < length:  # a short read of a regular file: only at its end, but be sure
            more = os.pread(self._file.fileno(), length - len(data), offset + len(data))
            if not more:
                raise OSError(f"the render's spool file ends before offset {offset} + {length}")
            data += more
        return data


class SpooledFiles(Mapping[str, bytes]):
    """Path -> bytes in the order given (``order``, else ``stored``'s): each held in memory or
    spilled to ``spool``. ``order`` lists every path of ``stored`` once: a large render's
    paths, sorted, beside its map, rather than a second map in that order (~50 MB at 10,000
    tenants)."""

    def __init__(self, stored: Mapping[str, Stored], spool: Spool | None, order: Sequence[str] | None = None) -> None:
        self._stored = stored
        self._spool = spool
        self._order = order

    @property
    def stored(self) -> Mapping[str, Stored]:
        """Each path's bytes or where they were spilled: what another mapping takes over
        without reading them back."""
        return self._stored

    @property
    def spool(self) -> Spool | None:
        return self._spool

    def __getitem__(self, path: str) -> bytes:
        return fetch(self._stored[path], self._spool)

    def __contains__(self, path: object) -> bool:
        return path in self._stored

    def __iter__(self) -> Iterator[str]:
        return iter(self._stored if self._order is None else self._order)

    def __len__(self) -> int:
        return len(self._stored)

    def __reduce__(self) -> tuple[type[dict[str, bytes]], tuple[dict[str, bytes]]]:
        return dict, (dict(self.items()),)  # pickled as the bytes it stands for (the spool does not travel)


def fetch(value: Stored, spool: Spool | None) -> bytes:
    """The bytes ``value`` holds or points to."""
    if isinstance(value, bytes):
        return value
    if spool is None:
        raise ValueError(f"a spilled file {value} without its spool")
    return spool.get(value)


def stored_of(files: Mapping[str, bytes]) -> tuple[Mapping[str, Stored], Spool | None]:
    """``files``' values as stored, and their spool: a spooled render's are not read back."""
    if isinstance(files, SpooledFiles):
        return files.stored, files.spool
    return files, None
