"""Spread the targets' work over several cores, without changing a byte of the output.

Rendering is CPU-bound Python, so threads would not help. On platforms with ``fork`` the
resolved model is shared with worker processes for free (copy-on-write); only small work
units go out and RenderedFile records come back. A unit is one target over one environment
for targets that declare ``PER_ENVIRONMENT = True`` (everything they produce for an
environment depends on that environment's slice of the model alone), or one whole target
otherwise. Results are collected in unit order, so the output is identical to a serial
render (tested byte for byte). The workers are ``output.forked``'s.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import as_completed
from typing import Any

from generator.formats.templating import Templates
from generator.model.resolve import Model
from generator.output import contracts, limits
from generator.output.contracts import Declared, SpilledContracts
from generator.output.forked import forked_pool, result_of, signals_held
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
        with forked_pool(min(jobs, len(work))) as pool:
            with signals_held():
                pending = {pool.submit(_run_at, (i, work[i])) for i in order}
            try:
                for count, future in enumerate(as_completed(pending), 1):
                    position, items = result_of(future, "render worker")
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


def _cost(model: Model, targets: Sequence[Target], unit: Unit) -> int:
    """A rough size of a unit: the target's declared relative cost per deployment times the
    deployments it covers. Only the schedule depends on it, never the output."""
    index, env, _ = unit
    weight = getattr(targets[index], "RELATIVE_COST", 1)
    covered = len(model.deployments) if env is None else len(model.in_environment(env))
    return weight * covered
