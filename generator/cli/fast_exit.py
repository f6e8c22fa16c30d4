"""End the console script without freeing its heap, object by object.

A command is one short-lived process. At 10,000 tenants a one-tenant edit ends holding
~500 MB of small objects, and freeing them one by one (when the command's result goes out of
scope, then at interpreter teardown) was ~0.2 s of a 5.8 s run: work nobody needs, as the
operating system takes the memory back at once (docs/benchmark.md, stop 48). So the console script (``main.entry``)
holds a command's result until the end (:func:`keep`) and leaves through :func:`leave`:
standard streams flushed, ``atexit`` handlers run (pools joined, temporary folders removed),
then ``os._exit``. Tests call ``main.main`` in-process, where none of this is switched on.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from typing import NoReturn

#: Results held until the process ends (only once :func:`enable` was called).
_KEPT: list[object] = []
_ENABLED = False


def enable() -> None:
    """Hold what :func:`keep` is given (the console script; never a test's process)."""
    global _ENABLED
    _ENABLED = True


def keep(result: object) -> None:
    """Hold ``result`` until the process ends, when enabled: not freed on the command's return."""
    if _ENABLED:
        _KEPT.append(result)


def exit_code(code: object) -> int:
    """The status ``sys.exit(code)`` would end with (a message is printed, as it would be)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def leave(code: object) -> NoReturn:
    """Exit with ``code`` as ``sys.exit`` would, without the teardown. Another thread that is
    not a daemon still running (nothing of ours leaves one) means the ordinary exit, which
    waits for it."""
    status = exit_code(code)
    if any(t is not threading.main_thread() and t.is_alive() and not t.daemon for t in threading.enumerate()):
        sys.exit(status)
    _flush()
    atexit._run_exitfuncs()
    _flush()  # what the handlers printed
    os._exit(status)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe (`companyos check | head`), a closed stream
            stream.flush()
