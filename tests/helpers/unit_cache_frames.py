"""The unit cache's frames (``output.unit_cache``) as plain lists, to read and to plant."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from generator.output import unit_cache
from generator.output.frames import framed, next_frame


def frames(repo: Path) -> list[Any]:
    """Every frame of ``repo``'s unit cache: the header, then lists of unit rows."""
    out = []
    with open(repo / unit_cache.CACHE_PATH, "rb") as fh:
        while (frame := next_frame(fh)) is not None:
            out.append(msgspec.msgpack.decode(frame))
    return out


def write_frames(repo: Path, found: list[Any]) -> None:
    (repo / unit_cache.CACHE_PATH).write_bytes(b"".join(framed(msgspec.msgpack.encode(f)) for f in found))


def cached_units(repo: Path) -> dict[str, list[Any]]:
    """Tenant name -> its row (name, stamp, sha256, inputs, kinds, paths, kind_of)."""
    return {row[0]: row for frame in frames(repo)[1:] for row in frame}
