"""Forked worker processes: a call run on the other core while this process goes on
(:func:`apart`, :func:`apart_in_turn`), a call spread over items (:func:`each_forked`), and the
pool both use (:func:`forked_pool`: Ctrl-C and SIGTERM held while it forks, workers killed
with a failing or dead parent). Generic: it imports nothing of the render, so a command that
only needs a worker (the no-op's stat walk) loads none of the render's code
(``output.parallel`` spreads the render's targets over these workers).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import gc
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Generic, TypeVar, cast

T = TypeVar("T")


def default_jobs() -> int:
    """Worker processes for rendering: ``COMPANYOS_JOBS``, else one per core."""
    try:
        return max(1, int(os.environ.get("COMPANYOS_JOBS", "")))
    except ValueError:
        return os.cpu_count() or 1


#: The calls :func:`apart_in_turn` runs, by position, as its forked worker inherits them (a
#: closure does not pickle).
_APART: dict[int, Callable[[], Any]] = {}


def _run_apart(position: int) -> Any:
    return _APART[position]()


@contextlib.contextmanager
def apart(call: Callable[[], T], *, wanted: bool) -> Iterator[Callable[[], T]]:
    """``call`` run in a forked worker while the block runs (the other core); the yielded
    function waits for its result, raising what it raised. Without ``wanted`` (or ``fork``)
    ``call`` runs here, before the block, as if there were no other core. The result is
    pickled back: it must be plain data."""
    with apart_in_turn([call], wanted=wanted) as (result,):
        yield cast(Callable[[], T], result)


class Waiter(Generic[T]):
    """A call's result from the worker: calling it waits for it (and raises what the call
    raised); :meth:`ready` says whether it is there already."""

    def __init__(self, future: Future[T] | None, value: T | None = None) -> None:
        self._future, self._value = future, value

    def ready(self) -> bool:
        return self._future is None or self._future.done()

    def __call__(self) -> T:
        return cast(T, self._value) if self._future is None else cast(T, result_of(self._future, "worker"))


@contextlib.contextmanager
def apart_in_turn(calls: Sequence[Callable[[], Any]], *, wanted: bool) -> Iterator[list[Waiter[Any]]]:
    """:func:`apart` for several calls, run one after another in the one worker (in order: the
    first is the one awaited first); one waiter per call. A call not finished when the block
    ends is stopped with its worker (nobody asked for it: no waiting for a result nobody
    reads). Without ``wanted`` all run here first, in order."""
    if not wanted or "fork" not in multiprocessing.get_all_start_methods():
        yield [Waiter(None, call()) for call in calls]
        return
    assert not _APART, "apart blocks do not nest: the worker finds its calls in one table"
    _APART.update(enumerate(calls))
    # what exists now is left out of the collector's passes while both run: a pass writes to
    # every object it visits, and each page written is copied (the pages are shared)
    gc.freeze()
    try:
        with forked_pool(1) as pool:
            with signals_held():
                futures = [pool.submit(_run_apart, position) for position in range(len(calls))]  # forks the worker now
            yield [Waiter(future) for future in futures]
            if not all(future.done() for future in futures):
                _stop_pool(pool)
    finally:
        _APART.clear()
        gc.unfreeze()


#: Items a worker of :func:`each_forked` takes at a time: one pickled call per item cost more
#: than a small parse.
_BATCH = 32


def each_forked(call: Callable[[T], object], items: Sequence[T], workers: int, *, who: str) -> None:
    """``call`` on every item, spread over ``workers`` forked processes; with one worker (or
    no ``fork``) here, in order. Results are dropped: a caller keeps what its calls make on
    disk (``ops.parse_memo``). ``call`` and the items must pickle (a module-level function,
    plain data). A worker that raises or dies fails the whole call."""
    if workers <= 1 or len(items) <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        for item in items:
            call(item)
        return
    batches = [items[start : start + _BATCH] for start in range(0, len(items), _BATCH)]
    gc.freeze()  # the parent's objects stay out of the workers' collector passes (shared pages)
    try:
        with forked_pool(min(workers, len(batches))) as pool:
            with signals_held():
                futures = [pool.submit(_each, call, batch) for batch in batches]
            for future in futures:
                result_of(future, who)
    finally:
        gc.unfreeze()


def _each(call: Callable[[T], object], batch: Sequence[T]) -> None:
    for item in batch:
        call(item)


@contextlib.contextmanager
def forked_pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    """A pool of ``workers`` forked processes for the block: shut down when the block ends,
    its workers killed when it fails (:func:`_stop_pool`). concurrent.futures rather than
    multiprocessing.Pool: a worker that dies (killed, out of memory) fails the block
    (:func:`result_of`) instead of hanging it forever."""
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"), initializer=_worker_init, initargs=(os.getpid(),))
    try:
        yield pool
    except BaseException:
        _stop_pool(pool)
        raise
    else:
        pool.shutdown(wait=True)


def result_of(future: Future[Any], who: str) -> Any:
    """The worker's result, or what it raised; an OSError naming ``who`` when it died."""
    try:
        return future.result()
    except BrokenProcessPool:
        raise OSError(errno.ECHILD, f"a {who} process died (killed or out of memory); nothing was written") from None


#: The signals that stop a render (Ctrl-C, a cancelled CI job).
_STOPPING = {signal.SIGINT, signal.SIGTERM}


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM while a pool forks its workers. One that lands during a fork
    is handled inside the fork's own hooks (``logging``'s lock release), where CPython
    prints the KeyboardInterrupt and drops it, and the render would go on to exit 0. Held,
    it is raised right after the fork, as anywhere else (``tests/hardening``)."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _STOPPING)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _stop_pool(pool: ProcessPoolExecutor) -> None:
    """Stop a pool that failed or was interrupted without waiting for its workers: a signal
    that lands after the pool forked them but before its manager thread started leaves
    workers nobody tells to stop, and the interpreter's exit would wait for them forever
    (``tests/hardening``). Killing them is safe: nothing they hold is written anywhere."""
    workers = list((getattr(pool, "_processes", None) or {}).values())  # no public API before Python 3.14
    pool.shutdown(wait=False, cancel_futures=True)
    for worker in workers:
        with contextlib.suppress(OSError, ValueError):
            worker.kill()
    for worker in workers:
        with contextlib.suppress(OSError, ValueError, AssertionError):
            worker.join(timeout=5)
    # The pool's manager thread closes its wake-up pipe as it ends; the interpreter's exit
    # writes to that pipe (concurrent.futures' _python_exit, unlocked before Python 3.12), and
    # the two racing printed a traceback after "a render worker process died". Ended here first.
    manager = getattr(pool, "_executor_manager_thread", None)
    if manager is not None:
        manager.join(timeout=5)


#: prctl(2) option: the signal a process gets when its parent dies (Linux).
_PR_SET_PDEATHSIG = 1


def _worker_init(parent: int) -> None:
    """Each worker leaves Ctrl-C to the parent (which stops the pool: one message, no
    traceback per worker) and dies with it: a parent killed by SIGKILL cannot stop its
    pool, so on Linux the kernel sends the worker SIGKILL (PR_SET_PDEATHSIG), elsewhere a
    watcher thread notices the new parent and exits."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the pool stops its workers with SIGTERM: no handler may turn it into a traceback
    if hasattr(signal, "pthread_sigmask"):  # forked with them held (signals_held): a pending SIGTERM ends the worker now
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOPPING)
    armed = False
    if sys.platform.startswith("linux"):
        try:
            armed = ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
        except (OSError, AttributeError):
            armed = False
    if not armed:
        threading.Thread(target=_exit_when_orphaned, args=(parent,), daemon=True).start()
    if os.getppid() != parent:  # the parent died before the guard was in place
        os._exit(1)
    # The console script turns the cyclic collector off (``cli.main.entry``): a command's own
    # data is acyclic. A worker's garbage is not: Jinja's macros and imported template modules
    # are cycles, and left to pile up they grew each render worker to ~2 GB at 10,000 x 3
    # (~300 MB at 1,000 x 3, 92 MB collected, for the same CPU time). What the worker
    # inherited is frozen first, so a pass visits only what the worker made.
    gc.freeze()
    gc.enable()


def _exit_when_orphaned(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)
