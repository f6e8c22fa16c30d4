"""Run every target over the resolved model: ``Model -> {path: bytes}``.

Pure and deterministic: no I/O, no clocks, no environment, and outputs sorted by path.
The result includes the manifest, which records every generated file with its sha256,
the sources it came from and the tenant/environment/Terraform root it belongs to. The
manifest is what lets ``tree`` prune only files we generated and ``affected`` map changed
files back to roots and tenants.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from generator.errors import CatalogError, CatalogErrors, Location
from generator.formats import emit
from generator.formats.templating import Templates
from generator.model.resolve import Model
from generator.output import contracts, limits, parallel
from generator.output.parallel import Finished
from generator.targets import TARGETS
from generator.targets.base import RenderedFile, Target

MANIFEST_PATH = "rendered/.companyos-manifest.json"
MANIFEST_VERSION = 1


@dataclass(frozen=True)
class RenderResult:
    """Everything one render produced, manifest included."""

    files: dict[str, bytes]
    manifest: dict[str, Any] = field(repr=False)
    #: What each file provides and consumes (output/contracts.py), in path order.
    declared: tuple[contracts.Declared, ...] = field(default=(), repr=False, compare=False)

    def entry(self, path: str) -> dict[str, Any] | None:
        entry: dict[str, Any] | None = self.manifest["files"].get(path)
        return entry


def render(
    model: Model,
    targets: Iterable[Target] | None = None,
    jobs: int = 1,
    progress: Callable[[int, int], None] | None = None,
    *,
    check: bool = True,
) -> RenderResult:
    """Render ``model`` with every target (or the given ones), on up to ``jobs`` processes
    for a large catalog (``parallel``); the bytes are the same for any ``jobs``. With ``check``
    (and every target), broken contracts and consumer limits raise CatalogErrors."""
    chosen = list(targets if targets is not None else TARGETS)
    files: dict[str, bytes] = {}
    entries: dict[str, dict[str, Any]] = {}
    encoded: dict[str, str] = {}
    declared: list[contracts.Declared] = []
    if parallel.usable(model, jobs):
        produced = parallel.render_parallel(model, chosen, jobs, finalize, progress)
    else:
        produced = _serial(model, chosen, progress)
    for path, data, entry, line, decl in produced:
        _add(files, entries, path, data, entry)
        encoded[path] = line
        if decl[1] or decl[2]:
            declared.append(decl)
    declared.sort(key=lambda d: d[0])
    if check and targets is None:  # a partial render has half the producers
        errors = [*contracts.check(declared), *limits.check(model, files, {p: e["sources"] for p, e in entries.items()}, declared)]
        if errors:
            raise CatalogErrors(errors)
    manifest = {
        "generator": emit.GENERATOR,
        "version": MANIFEST_VERSION,
        "files": dict(sorted(entries.items())),
    }
    files[MANIFEST_PATH] = emit.manifest_bytes(manifest, encoded)
    return RenderResult(dict(sorted(files.items())), manifest, tuple(declared))


def _serial(model: Model, chosen: list[Target], progress: Callable[[int, int], None] | None) -> Iterator[Finished]:
    templates = Templates(model.templates)
    for done, target in enumerate(chosen, 1):
        for item in target.render(model, templates):
            yield finalize(target.NAME, item)
        if progress is not None:
            progress(done, len(chosen))


def finalize(target: str, item: RenderedFile) -> Finished:
    """One target's record -> (path, final bytes, manifest entry, its manifest line, its
    contracts); refuses escaping paths. Runs in the render workers for a large catalog."""
    if not (item.path.startswith("rendered/") or item.path.startswith(".github/workflows/")) or ".." in item.path.split("/"):
        raise CatalogErrors([CatalogError(Location(item.path), "outputs must stay under rendered/ or .github/workflows/")])
    data = emit.finalize(item.text, item.sources, item.comment)
    entry: dict[str, Any] = {
        "sha256": hashlib.sha256(data).hexdigest(),
        "sources": sorted(set(item.sources)),
        "target": target,
    }
    for key in ("tenant", "environment", "root"):
        value = getattr(item, key)
        if value is not None:
            entry[key] = value
    declared = (item.path, item.provides, item.consumes, item.sources[0] if item.sources else item.path)
    return item.path, data, entry, emit.manifest_entry(entry), declared


def _add(files: dict[str, bytes], entries: dict[str, dict[str, Any]], path: str, data: bytes, entry: dict[str, Any]) -> None:
    if path in files:
        raise CatalogErrors(
            [CatalogError(Location(path), f"two outputs claim this path (targets {entries[path]['target']} and {entry['target']})")]
        )
    files[path] = data
    entries[path] = entry
