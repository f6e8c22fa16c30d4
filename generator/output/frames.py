"""Length-prefixed frames: how the large caches (``listing``, ``unit_cache``) are written
and read a piece at a time, so neither file is ever one buffer in memory."""

from __future__ import annotations

import struct
from typing import BinaryIO

_LENGTH = struct.Struct("<I")


def framed(data: bytes) -> bytes:
    """``data`` with its length in front (for ``atomic.write_atomic_frames``)."""
    return _LENGTH.pack(len(data)) + data


def next_frame(fh: BinaryIO) -> bytes | None:
    """The next frame's bytes; None at the end; ValueError for a truncated one."""
    size = fh.read(_LENGTH.size)
    if not size:
        return None
    if len(size) < _LENGTH.size:
        raise ValueError("truncated")
    (length,) = _LENGTH.unpack(size)
    data = fh.read(length)
    if len(data) < length:
        raise ValueError("truncated")
    return data
