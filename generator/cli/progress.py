"""A progress bar for renders that take a while, and nothing otherwise.

Shown on stderr only when stderr is a terminal, ``CI`` is not set and the render has run
for more than about a second (a small catalog renders before anyone could read a bar).
``NO_COLOR`` is honoured by rich itself.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: Seconds a render runs before the bar appears.
DELAY = 1.0


def wanted() -> bool:
    """A human is watching: a terminal on stderr, not CI, not TERM=dumb."""
    return sys.stderr.isatty() and not os.environ.get("CI") and os.environ.get("TERM") != "dumb"


@contextmanager
def render_progress(*, enabled: bool = True) -> Iterator[Callable[[int, int], None] | None]:
    """Yield a ``progress(done, total)`` callback for ``pipeline.render_to_disk``, or None."""
    if not enabled or not wanted():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    started = time.monotonic()
    bar = Progress(
        TextColumn("rendering"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=Console(stderr=True), transient=True
    )
    task = bar.add_task("render", total=None)

    def update(done: int, total: int) -> None:
        if not bar.live.is_started and time.monotonic() - started >= DELAY:
            bar.start()
        bar.update(task, completed=done, total=total)

    try:
        yield update
    finally:
        if bar.live.is_started:
            bar.stop()
