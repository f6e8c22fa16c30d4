"""One way to replace a single file atomically, for every writer outside the rendered tree.

``networks.yaml`` after ``allocate``, the check cache, the JSON Schemas and the tenant files
of the lifecycle commands are each one file: a reader must see the old bytes or the new
ones, never half. (The rendered tree is many files; ``tree.write`` has its own journal.)
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path


def write_atomic(path: Path, data: bytes | str, *, mode: int = 0o644) -> None:
    """Write ``data`` to a temporary sibling, then rename it over ``path``.

    The temporary file is removed again on any failure (Ctrl-C included), so a failed write
    leaves ``path`` as it was and nothing beside it."""
    write_atomic_frames(path, (data.encode("utf-8") if isinstance(data, str) else data,), mode=mode)


def write_atomic_frames(path: Path, frames: Iterable[bytes], *, mode: int = 0o644) -> None:
    """:func:`write_atomic`, the bytes made and written a piece at a time (a large cache is
    never one buffer in memory)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".companyos-tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            for frame in frames:
                fh.write(frame)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if exc.filename is None:  # a failed write (disk full) names no file; say which one
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
