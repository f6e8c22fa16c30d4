"""A render's files where some stay on disk: the reused units' files.

An incremental render reuses most units as recorded. When the verified-clean record
(``output.checkcache``) vouches by ``lstat`` that a unit's files still hold its recorded
sha256, their bytes are not read at all; else they are read and hashed under the lock, and
not kept. :class:`TreeFiles` reads one again only when someone asks for it (a diff, the
destructive-change guard). Comparing and writing skip them: they
are the tree already. Memory then holds only what was rendered (or its place in the
render's spool, ``output.spool``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Container, Iterator, KeysView, Mapping
from pathlib import Path

from generator.errors import UsageError
from generator.output.spool import Spool, Stored, fetch
from generator.output.tree import read_file


class TreeFiles(Mapping[str, bytes]):
    """Path -> bytes in path order: ``held`` in memory, ``on_disk`` read from ``root`` on access."""

    def __init__(
        self,
        root: Path,
        held: Mapping[str, Stored],
        on_disk: Container[str],
        order: list[str],
        spool: Spool | None = None,
        read: Callable[[str], bytes | None] | None = None,
    ) -> None:
        """``on_disk`` is kept, not copied (the plan's view: at 10,000 tenants a set of its
        800,000 paths was ~33 MB); a path held too is held. ``order``: every path of both, sorted.
        ``spool``: where the render spilled the held files whose bytes are not in memory.
        ``read``: how a file left on disk is read (default: from ``root``; ``check --base
        --committed`` reads the base's bytes, checked by blob id)."""
        self._base = os.fspath(root)
        self._read = read
        self._held = dict(held)
        self._on_disk = on_disk
        self._order = order
        self._spool = spool

    @property
    def held(self) -> KeysView[str]:
        """The paths rendered (or read) this run, their bytes in memory or in the render's
        spool; every other path of this mapping is left on disk (its bytes are the tree's, unread)."""
        return self._held.keys()

    def __getitem__(self, path: str) -> bytes:
        data = self._held.get(path)
        if data is not None:
            return fetch(data, self._spool)
        if path not in self._on_disk:
            raise KeyError(path)
        found = self._read(path) if self._read is not None else read_file(os.path.join(self._base, path))
        if found is None:
            raise UsageError(f"{path} disappeared while companyos was reading the tree; run the command again")
        return found

    def __contains__(self, path: object) -> bool:
        return path in self._held or path in self._on_disk

    def __iter__(self) -> Iterator[str]:
        return iter(self._order)

    def __len__(self) -> int:
        return len(self._order)
