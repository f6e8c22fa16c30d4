"""Where a large render's files lie: a tenant's spool places packed beside its unit's paths.

A spooled render (``units._render_by_tenant``) keeps each file's bytes in the spool and only
their place in memory. In a map from every path to a place int that was ~85 bytes a file (a
map slot and a 40-byte int): ~66 MB at 10,000 tenants x 3. A tenant's places are packed in an
array of 8-byte words in the order of its unit's path tuple (``units.Unit.entries``, which the
result holds anyway); the path's entry names its tenant, and the tuple gives its index. What
cannot be packed (the global unit's files, unit manifests, a place too large for a word, bytes
the spool could not take) stays in an ordinary map.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from typing import Any

from generator.output.spool import Stored, length_of, offset_of, spilled

#: A packed place: the offset above these bits, the length in them.
_LENGTH_BITS = 24
_WORD = 1 << 64


def _packed(where: Stored) -> int | None:
    """``where`` as one 8-byte word, or None (bytes held in memory; a place too large)."""
    if isinstance(where, bytes):
        return None
    offset, length = offset_of(where), length_of(where)
    if length >> _LENGTH_BITS or (offset << _LENGTH_BITS) >= _WORD:
        return None
    return offset << _LENGTH_BITS | length


def _unpacked(word: int) -> Stored:
    return spilled(word >> _LENGTH_BITS, word & ((1 << _LENGTH_BITS) - 1))


class Places(MutableMapping[str, Stored]):
    """Path -> bytes or spool place. Set paths one at a time (kept loose), then hand a
    tenant's over with :meth:`pack`. ``entries``: the render's path -> entry map, which names a
    packed path's tenant (``entry["tenant"]``)."""

    def __init__(self, entries: Mapping[str, Mapping[str, Any]]) -> None:
        self._entries = entries
        self._loose: dict[str, Stored] = {}
        #: tenant -> [its paths, their packed places, the index after the last one found]
        self._units: dict[str, list[Any]] = {}
        self._count = 0  # packed paths

    def pack(self, tenant: str, paths: Sequence[str]) -> None:
        """Move ``tenant``'s ``paths`` (each set loose before, its entry naming the tenant) into
        one array in the order of ``paths``, which is kept, not copied. Paths whose place
        cannot be packed stay loose (then the whole tenant does)."""
        words = [_packed(self._loose[path]) for path in paths]
        if tenant in self._units or any(word is None for word in words):
            for path in paths:  # kept by the given paths' strings: the worker's copies go
                self._loose[path] = self._loose.pop(path)
            return
        for path in paths:
            del self._loose[path]
        self._units[tenant] = [paths, array("Q", words), 0]  # no None: checked above
        self._count += len(paths)

    def _index(self, path: object) -> tuple[array[int], int] | None:
        try:
            unit = self._units[self._entries[path]["tenant"]]  # type: ignore[index]
        except (KeyError, TypeError):  # no entry, no tenant, not packed; not a path at all
            return None
        paths, words, at = unit
        # asked in path order (the status, the write), a unit's sorted paths come one after
        # another, each asked once or twice: the one after the last found, or that one again
        if at < len(paths) and paths[at] == path:
            unit[2] = at + 1
            return words, at
        if at and paths[at - 1] == path:
            return words, at - 1
        try:
            index = paths.index(path)  # a C scan of the tenant's ~80 paths
        except ValueError:
            return None
        unit[2] = index + 1
        return words, index

    def __getitem__(self, path: str) -> Stored:
        found = self._loose.get(path)
        if found is not None:
            return found
        at = self._index(path)
        if at is None:
            raise KeyError(path)
        words, index = at
        return _unpacked(words[index])

    def __contains__(self, path: object) -> bool:
        return path in self._loose or self._index(path) is not None

    def __setitem__(self, path: str, where: Stored) -> None:
        self._loose[path] = where  # a render sets a path once (``render.add_output`` refuses another)

    def __delitem__(self, path: str) -> None:
        del self._loose[path]  # only a loose path is ever taken out (KeyError for a packed one)

    def __iter__(self) -> Iterator[str]:
        yield from self._loose
        for paths, _, _ in self._units.values():
            yield from paths

    def __len__(self) -> int:
        return len(self._loose) + self._count
