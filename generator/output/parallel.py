"""Spread the targets' work over several cores, without changing a byte of the output.

Rendering is CPU-bound Python, so threads would not help. On platforms with ``fork`` the
resolved model is shared with worker processes for free (copy-on-write); only small work
units go out and RenderedFile records come back. A unit is one target over one environment
for targets that declare ``PER_ENVIRONMENT = True`` (everything they produce for an
environment depends on that environment's slice of the model alone), or one whole target
otherwise. Results are collected in unit order, so the output is identical to a serial
render (tested byte for byte).
"""

from __future__ import annotations

import dataclasses
import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from generator.formats.templating import Templates
from generator.model.resolve import Model
from generator.targets.base import RenderedFile, Target

#: Below this many deployments a serial render is faster than starting workers.
MIN_DEPLOYMENTS = 64

Unit = tuple[int, str | None]
#: (path, final bytes, manifest entry, its manifest line), as ``render.finalize`` returns it.
Finished = tuple[str, bytes, dict[str, Any], str]
_STATE: dict[str, Any] = {}


def usable(model: Model, jobs: int) -> bool:
    return jobs > 1 and len(model.deployments) >= MIN_DEPLOYMENTS and "fork" in multiprocessing.get_all_start_methods()


def restrict(model: Model, env: str) -> Model:
    """``model`` seen from one environment: what a PER_ENVIRONMENT target renders for it."""
    return dataclasses.replace(
        model,
        environments=tuple(e for e in model.environments if e.name == env),
        deployments=model.in_environment(env),
    )


def units(model: Model, targets: Sequence[Target]) -> list[Unit]:
    out: list[Unit] = []
    for index, target in enumerate(targets):
        if getattr(target, "PER_ENVIRONMENT", False):
            out.extend((index, env.name) for env in model.environments)
        else:
            out.append((index, None))
    return out


def _run(unit: Unit) -> list[Finished]:
    model: Model = _STATE["model"]
    index, env = unit
    scope = model if env is None else restrict(model, env)
    if "templates" not in _STATE:  # compiled once per worker, on its first unit
        _STATE["templates"] = Templates(model.templates)
    templates = _STATE["templates"]
    target = _STATE["targets"][index]
    finish = _STATE["finish"]
    return [finish(target.NAME, item) for item in target.render(scope, templates)]


def render_parallel(
    model: Model, targets: Sequence[Target], jobs: int, finish: Callable[[str, RenderedFile], Finished]
) -> Iterator[Finished]:
    """Every target's finished files (``finish`` runs in the workers too: headers and hashes
    are a third of the work), in the order a serial run produces them per unit."""
    work = units(model, targets)
    # Largest units first (longest-processing-time scheduling), so no core idles at the end
    # while another still renders a big environment; results go back in canonical order.
    order = sorted(range(len(work)), key=lambda i: -_cost(model, targets, work[i]))
    _STATE.clear()
    _STATE.update(model=model, targets=list(targets), finish=finish)
    try:
        with multiprocessing.get_context("fork").Pool(min(jobs, len(work))) as pool:
            done = pool.map(_run, [work[i] for i in order], chunksize=1)
    finally:
        _STATE.clear()
    results: list[list[Finished]] = [[] for _ in work]
    for position, items in zip(order, done):
        results[position] = items
    for items in results:
        yield from items


def _cost(model: Model, targets: Sequence[Target], unit: Unit) -> int:
    """A rough size of a unit: the target's declared relative cost per deployment times the
    deployments it covers. Only the schedule depends on it, never the output."""
    index, env = unit
    weight = getattr(targets[index], "RELATIVE_COST", 1)
    covered = len(model.deployments) if env is None else len(model.in_environment(env))
    return weight * covered
