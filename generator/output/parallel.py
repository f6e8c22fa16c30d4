"""Spread the targets' work over several cores, without changing a byte of the output.

Rendering is CPU-bound Python, so threads would not help. On platforms with ``fork`` the
resolved model is shared with worker processes for free (copy-on-write); only small work
units go out and RenderedFile records come back. A unit is one target over one environment
for targets that declare ``PER_ENVIRONMENT = True`` (everything they produce for an
environment depends on that environment's slice of the model alone), or one whole target
otherwise. Results are collected in unit order, so the output is identical to a serial
render (tested byte for byte). :func:`apart` runs a call (the policy's verdict, the units a
run will render, half of a no-op's stat walk) in a forked worker while this process goes on.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import errno
import gc
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Generic, TypeVar, cast

from generator.formats.templating import Templates
from generator.model.resolve import Model
from generator.output import contracts, limits
from generator.output.contracts import Declared, SpilledContracts
from generator.output.limits import Facts
from generator.output.spool import Spool, Stored
from generator.targets.base import RenderedFile, Target

#: Below this many deployments a serial render is faster than starting workers.
MIN_DEPLOYMENTS = 64

#: (target index, environment or None for a whole target, chunk: an index into the render's
#: tenant chunks, or None for the model's own ``rendering``).
Unit = tuple[int, str | None, int | None]
#: (path, final bytes, manifest entry, its contracts, its limits facts), as ``render.finalize``
#: returns it; from a worker the bytes and the contracts may be spilled to the render's spool
#: (``output.spool``, ``contracts.SpilledContracts``).
Finished = tuple[str, Stored, dict[str, Any], Declared | SpilledContracts, Facts | None]
_STATE: dict[str, Any] = {}
T = TypeVar("T")


def usable(model: Model, jobs: int) -> bool:
    return jobs > 1 and len(model.deployments) >= MIN_DEPLOYMENTS and "fork" in multiprocessing.get_all_start_methods()


def restrict(model: Model, env: str) -> Model:
    """``model`` seen from one environment: what a PER_ENVIRONMENT target renders for it.
    Its ``catalog`` stays whole: cross-environment facts (the next environment, the last one)
    come from there (``targets.common.promotion_chain``), never from ``environments``."""
    return dataclasses.replace(
        model,
        environments=tuple(e for e in model.environments if e.name == env),
        deployments=model.in_environment(env),
    )


def units(model: Model, targets: Sequence[Target], chunks: int = 0) -> list[Unit]:
    """The work units, chunk after chunk when there are ``chunks`` (else one pass, chunk None)."""
    out: list[Unit] = []
    for chunk in range(chunks) if chunks else (None,):
        for index, target in enumerate(targets):
            if getattr(target, "PER_ENVIRONMENT", False):
                out.extend((index, env.name, chunk) for env in model.environments)
            else:
                out.append((index, None, chunk))
    return out


def _scope(env: str | None, chunk: int | None) -> Model:
    """The model a unit renders: one environment's and one chunk's tenants (made once per
    worker for each pair: a view builds its own indexes on first use)."""
    scopes: dict[tuple[str | None, int | None], Model] = _STATE.setdefault("scopes", {})
    if (env, chunk) not in scopes:
        model: Model = _STATE["model"]
        scope = model if env is None else restrict(model, env)
        scopes[env, chunk] = scope if chunk is None else dataclasses.replace(scope, rendering=_STATE["chunks"][chunk])
    return scopes[env, chunk]


def _keeps(tenant: str | None, chunk: int | None) -> bool:
    """Whether a chunk keeps a file: its own tenants' (a target may render another's anyway),
    and the fleet-wide ones in the first chunk only (every chunk renders them alike)."""
    if chunk is None:
        return True
    return chunk == 0 if tenant is None else tenant in _STATE["chunks"][chunk]


def _run(unit: Unit) -> list[Finished]:
    model: Model = _STATE["model"]
    index, env, chunk = unit
    scope = _scope(env, chunk)
    if "templates" not in _STATE:  # compiled once per worker, on its first unit
        _STATE["templates"] = Templates(model.templates)
    templates = _STATE["templates"]
    target = _STATE["targets"][index]
    finish = _STATE["finish"]
    spool: Spool | None = _STATE["spool"]
    hold: Callable[[bytes], bool] = _STATE["hold"]
    out: list[Finished] = []
    for item in target.render(scope, templates):  # each file spilled as it is finished: a unit holds none
        if not _keeps(item.tenant, chunk):
            continue
        path, data, entry, declared, facts = finish(target.NAME, item)
        if spool is not None and isinstance(data, bytes) and not hold(data):
            data = spool.put(data)
        spilled: Declared | contracts.SpilledContracts = declared
        if spool is not None and (declared[1] or declared[2]):  # its contracts too (render: contracts.spooled)
            spilled = contracts.SpilledContracts(path, spool.put(contracts.spilled_form(declared[1], declared[2])), declared[3])
        if facts is not None and limits.record(facts) is None:
            facts = None  # nothing to judge (~9 files in 10): at 10,000 tenants 800,000 empty Facts held by the render
        out.append((path, data, entry, spilled, facts))
    return out


def _run_at(job: tuple[int, Unit]) -> tuple[int, list[Finished]]:
    """:func:`_run`, tagged with the unit's position so results can arrive in any order."""
    return job[0], _run(job[1])


def render_parallel(
    model: Model,
    targets: Sequence[Target],
    jobs: int,
    finish: Callable[[str, RenderedFile], Finished],
    progress: Callable[[int, int], None] | None = None,
    spool: Spool | None = None,
    hold: Callable[[bytes], bool] = lambda data: False,
) -> Iterator[Finished]:
    """Every target's finished files (``finish`` runs in the workers too: headers and hashes
    are a third of the work), in the order a serial run produces them per unit. With a
    ``spool`` the workers spill each file's bytes to it, except those ``hold`` keeps. One
    pass of :func:`render_in_chunks`: the model's own tenants, as one chunk."""
    for items in render_in_chunks(model, targets, jobs, finish, (), progress, spool, hold):
        yield from items


def render_in_chunks(
    model: Model,
    targets: Sequence[Target],
    jobs: int,
    finish: Callable[[str, RenderedFile], Finished],
    chunks: Sequence[frozenset[str]],
    progress: Callable[[int, int], None] | None = None,
    spool: Spool | None = None,
    hold: Callable[[bytes], bool] = lambda data: False,
) -> Iterator[list[Finished]]:
    """:func:`render_parallel` of each chunk of tenants in turn (the fleet-wide files with the
    first; no ``chunks``: one pass over the model's own tenants): one list per chunk, in unit
    order, as soon as that chunk's units are done, while the workers go on with the next
    ones. At 10,000 tenants the parent held every file's record until the last unit was in
    (~900 MB); now a chunk's at most."""
    work = units(model, targets, len(chunks))
    per_chunk = max(1, len(work) // max(1, len(chunks)))  # every chunk has the same units (units())
    spans = [range(start, min(start + per_chunk, len(work))) for start in range(0, len(work), per_chunk)]
    # Chunk after chunk; in each, the largest units first (longest-processing-time scheduling),
    # so no core idles at the end while another still renders a big environment; results go
    # back in canonical order.
    order = [i for span in spans for i in sorted(span, key=lambda i: -_cost(model, targets, work[i]))]
    _STATE.clear()
    _STATE.update(model=model, targets=list(targets), finish=finish, spool=spool, hold=hold, chunks=list(chunks))
    results: list[list[Finished] | None] = [None] * len(work)
    try:
        with _forked_pool(min(jobs, len(work))) as pool:
            with _signals_held():
                pending = {pool.submit(_run_at, (i, work[i])) for i in order}
            try:
                for count, future in enumerate(as_completed(pending), 1):
                    position, items = _result(future, "render worker")
                    pending.discard(future)  # a done future holds its result: the chunk's records, until the last chunk
                    results[position] = items
                    if progress is not None:
                        progress(count, len(work))
                    while spans and all(results[i] is not None for i in spans[0]):  # the next chunk is done
                        # not bound to a name here: while this generator waits, only the caller holds the chunk
                        yield _taken(results, spans.pop(0))
            finally:
                for future in pending:
                    future.cancel()
    finally:
        _STATE.clear()


def _taken(results: list[list[Finished] | None], span: range) -> list[Finished]:
    """The finished records of the units in ``span``, in order; each unit's list let go."""
    done: list[Finished] = []
    for i in span:
        done.extend(results[i] or ())
        results[i] = []
    return done


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
        return cast(T, self._value) if self._future is None else cast(T, _result(self._future, "worker"))


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
        with _forked_pool(1) as pool:
            with _signals_held():
                futures = [pool.submit(_run_apart, position) for position in range(len(calls))]  # forks the worker now
            yield [Waiter(future) for future in futures]
            if not all(future.done() for future in futures):
                _stop(pool)
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
        with _forked_pool(min(workers, len(batches))) as pool:
            with _signals_held():
                futures = [pool.submit(_each, call, batch) for batch in batches]
            for future in futures:
                _result(future, who)
    finally:
        gc.unfreeze()


def _each(call: Callable[[T], object], batch: Sequence[T]) -> None:
    for item in batch:
        call(item)


@contextlib.contextmanager
def _forked_pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    """A pool of ``workers`` forked processes for the block: shut down when the block ends,
    its workers killed when it fails (:func:`_stop`). concurrent.futures rather than
    multiprocessing.Pool: a worker that dies (killed, out of memory) fails the block
    (:func:`_result`) instead of hanging it forever."""
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"), initializer=_worker_init, initargs=(os.getpid(),))
    try:
        yield pool
    except BaseException:
        _stop(pool)
        raise
    else:
        pool.shutdown(wait=True)


def _result(future: Future[Any], who: str) -> Any:
    """The worker's result, or what it raised; an OSError naming ``who`` when it died."""
    try:
        return future.result()
    except BrokenProcessPool:
        raise OSError(errno.ECHILD, f"a {who} process died (killed or out of memory); nothing was written") from None


#: The signals that stop a render (Ctrl-C, a cancelled CI job).
_STOPPING = {signal.SIGINT, signal.SIGTERM}


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
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


def _stop(pool: ProcessPoolExecutor) -> None:
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
    if hasattr(signal, "pthread_sigmask"):  # forked with them held (_signals_held): a pending SIGTERM ends the worker now
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


def _cost(model: Model, targets: Sequence[Target], unit: Unit) -> int:
    """A rough size of a unit: the target's declared relative cost per deployment times the
    deployments it covers. Only the schedule depends on it, never the output."""
    index, env, _ = unit
    weight = getattr(targets[index], "RELATIVE_COST", 1)
    covered = len(model.deployments) if env is None else len(model.in_environment(env))
    return weight * covered
