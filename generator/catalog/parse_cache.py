"""Reuse the parse of a catalog file whose bytes and stat are as when it was last parsed.

At 10,000 tenants parsing every tenant file again (libyaml, then the plain copy with its
positions) was ~1 s of a one-tenant edit. A file's entry is reused only when its sha256 is
the same (so it is never stale) and its stat stamp too (size, mtime, ctime, inode: a stamp
nobody can predict, so a cache file committed to a pull request never matches on a fresh
clone). The pipeline loads and saves the bytes (``.companyos-cache/catalog``); this module
only decodes, looks up and encodes. docs/incremental.md ("Parsed catalog files").
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Iterator, Mapping
from typing import Any

import msgspec

from generator.catalog.yaml_source import KeyPath, SourceDoc, parse_yaml
from generator.errors import CatalogError

VERSION = 1

#: (size, mtime_ns, ctime_ns, inode) of the file when it was parsed.
Stamp = tuple[int, int, int, int]
_Positions = list[tuple[list[str | int], int, int]]


class _Parsed(msgspec.Struct, array_like=True):
    stamp: Stamp
    sha256: bytes
    data: dict[str, Any]
    #: ``_Positions`` each, decoded only when a location is asked (an error, ``explain``):
    #: turning ~240,000 rows into tuple keys was half of reading 10,000 cached tenant files.
    positions: msgspec.Raw
    key_positions: msgspec.Raw


class _File(msgspec.Struct, array_like=True):
    version: int
    entries: dict[str, msgspec.Raw]


_ENCODER = msgspec.msgpack.Encoder()
_FILE = msgspec.msgpack.Decoder(_File)
_ENTRY = msgspec.msgpack.Decoder(_Parsed)
_ROWS = msgspec.msgpack.Decoder(_Positions)
_STAMP = struct.Struct("<qqqQ")


def stamp_of(st: os.stat_result) -> Stamp:
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


class ParseCache:
    """The parses of the last run (by path, still encoded) and this run's, for saving."""

    def __init__(self, old: dict[str, msgspec.Raw] | None = None) -> None:
        self._old = old or {}
        self._kept: dict[str, msgspec.Raw | bytes] = {}
        self._changed = False
        #: Files parsed afresh this run, by path: new or changed since the last run's parse
        #: (the pipeline foresees from them which tenants will render, ``units.foreseen``).
        self.fresh: list[str] = []
        #: Every file this run read, by path: its sha256 and stat stamp (``file_memo`` keys
        #: facts by them, so a memo made anywhere else never matches, as the parses do not).
        self.identities: dict[str, bytes] = {}

    @property
    def parsed(self) -> int:
        """How many files were parsed afresh this run (for tests and the benchmark)."""
        return len(self.fresh)

    @classmethod
    def decode(cls, raw: bytes | None) -> ParseCache:
        """The cache in ``raw``; empty when there is none or it is not this version's."""
        if raw is None:
            return cls()
        try:
            found = _FILE.decode(raw)
        except msgspec.MsgspecError:
            return cls()
        return cls(found.entries if found.version == VERSION else None)

    def parse(self, rel: str, raw: bytes, stamp: Stamp, sha: bytes) -> tuple[SourceDoc | None, list[CatalogError]]:
        """:func:`parse_yaml` of ``raw``, or the last run's parse when bytes and stamp match.
        ``sha``: the sha256 of ``raw`` (the loader takes it for every file it reads)."""
        self.identities[rel] = sha + _STAMP.pack(*stamp)
        reused = self._reuse(rel, sha, stamp)
        if reused is not None:
            return reused, []
        self.fresh.append(rel)
        self._changed = True
        doc, errors = parse_yaml(rel, raw)
        if doc is not None:
            with contextlib.suppress(msgspec.MsgspecError, OverflowError):  # an integer msgpack cannot hold: parsed every time
                rows = msgspec.Raw(_ENCODER.encode(_rows(doc.positions))), msgspec.Raw(_ENCODER.encode(_rows(doc.key_positions)))
                self._kept[rel] = _ENCODER.encode(_Parsed(stamp, sha, doc.data, *rows))
                # the positions as the rows just encoded, decoded only when a location is asked (as
                # a reused parse's): at 10,000 tenants the tables were ~25 MB of a cold render's peak
                doc = SourceDoc(rel, doc.data, _Table(rows[0]), _Table(rows[1]))
        return doc, errors

    def _reuse(self, rel: str, sha: bytes, stamp: Stamp) -> SourceDoc | None:
        old = self._old.get(rel)
        if old is None:
            return None
        try:
            found = _ENTRY.decode(old)
        except msgspec.MsgspecError:
            return None
        if found.sha256 != sha or tuple(found.stamp) != stamp:
            return None
        self._kept[rel] = old
        return SourceDoc(rel, found.data, _Table(found.positions), _Table(found.key_positions))

    def encode(self) -> bytes | None:
        """This run's parses, to save; None when they are the last run's exactly."""
        if not self._changed and self._kept.keys() == self._old.keys():
            return None
        return _ENCODER.encode(
            _File(VERSION, {rel: msgspec.Raw(data) if isinstance(data, bytes) else data for rel, data in sorted(self._kept.items())})
        )


def _rows(table: Mapping[KeyPath, tuple[int, int]]) -> _Positions:
    return [(list(path), line, col) for path, (line, col) in table.items()]


class _Table(Mapping[KeyPath, tuple[int, int]]):
    """A cached file's positions, decoded on first use."""

    __slots__ = ("_raw", "_table")

    def __init__(self, raw: msgspec.Raw) -> None:
        self._raw: msgspec.Raw | None = raw
        self._table: dict[KeyPath, tuple[int, int]] = {}

    def _decoded(self) -> dict[KeyPath, tuple[int, int]]:
        if self._raw is not None:
            try:
                rows = _ROWS.decode(self._raw)
            except msgspec.MsgspecError:  # damaged after the sha256 matched: locations fall back to 1:1
                rows = []
            self._table = {tuple(path): (line, col) for path, line, col in rows}
            self._raw = None
        return self._table

    def __getitem__(self, path: KeyPath) -> tuple[int, int]:
        return self._decoded()[path]

    def __iter__(self) -> Iterator[KeyPath]:
        return iter(self._decoded())

    def __len__(self) -> int:
        return len(self._decoded())
