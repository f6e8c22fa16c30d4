"""Walk the output folders in a child process while this one renders the catalog.

At 10,000 tenants the walk (``listing.list_folders``: ~230,000 ``lstat``) was ~1.2 s of a
one-tenant edit, on the core that renders, while the other core was idle. The child runs
the very walk the write would run (with the listing cache) and sends the listing whole
(``listing.wire_frames``) into an anonymous temporary file; the write decodes it instead of
walking. It is started under the repository lock after any interrupted write was repaired,
so nobody else writes the tree between the walk and the write. Anything wrong (the child
fails, its output does not decode) and the write walks the folders itself.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import msgspec

from generator.output.listing import Listing, from_wire, list_folders, wire_frames

#: The child's program: this process's import path first, then :func:`main`.
_CHILD = "import os, sys; sys.path[:0] = sys.argv[1].split(os.pathsep); from generator.output.walk_apart import main; main(sys.argv[2:])"
#: The child's first argument when the listing is not to be offered to the cache.
_NO_OFFER = "--no-offer"


class Walk:
    """A walk running in a child process; :meth:`listing` waits for it."""

    def __init__(self, root: Path, folders: Sequence[str], *, offer: bool = True) -> None:
        self.root, self.folders, self.offer = root, list(folders), offer
        self._out = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close(): it outlives this call)
        self._child: subprocess.Popen[bytes] | None = None
        with contextlib.suppress(OSError, ValueError):  # no interpreter to start: walked here
            if sys.executable:
                self._child = subprocess.Popen(
                    command(root, self.folders, offer=offer), stdin=subprocess.DEVNULL, stdout=self._out, stderr=subprocess.DEVNULL
                )

    def listing(self) -> Listing:
        """The child's listing; the folders walked here when it has none."""
        try:
            if self._child is not None and self._child.wait() == 0:
                self._out.seek(0)
                with contextlib.suppress(OSError, ValueError, msgspec.MsgspecError):
                    return from_wire(self._out)
            return list_folders(self.root, self.folders, offer=self.offer)
        finally:
            self.close()

    def close(self) -> None:
        """Stop the child if it still runs, and drop its output."""
        if self._child is not None and self._child.poll() is None:
            self._child.kill()
            self._child.wait()
        self._out.close()


def command(root: Path, folders: Sequence[str], *, offer: bool = True) -> list[str]:
    """The child's command line (``bench/floor.py`` times this very process)."""
    return [sys.executable, "-c", _CHILD, os.pathsep.join(sys.path), *([] if offer else [_NO_OFFER]), os.fspath(root), *folders]


@contextlib.contextmanager
def started(root: Path, folders: Sequence[str], *, offer: bool = True) -> Iterator[Walk]:
    """A walk of ``folders`` below ``root`` running for the block, stopped after it;
    ``offer`` as for ``list_folders`` (without it no folder's stat comes back)."""
    walk = Walk(root, folders, offer=offer)
    try:
        yield walk
    finally:
        walk.close()


def main(argv: Sequence[str]) -> None:
    """The child: walk as the write would, and send the listing to standard output."""
    offer = argv[:1] != [_NO_OFFER]
    root, *folders = argv if offer else argv[1:]
    out = sys.stdout.buffer
    for frame in wire_frames(list_folders(Path(root), folders, offer=offer)):
        out.write(frame)
    out.flush()
