"""Run every target over the resolved model: ``Model -> {path: bytes}``.

Pure and deterministic: no I/O, no clocks, no environment, and outputs sorted by path.
The result includes the manifest, which records every generated file with its sha256,
the sources it came from and the tenant/environment/Terraform root it belongs to. The
manifest is what lets ``tree`` prune only files we generated and ``affected`` map changed
files back to roots and tenants.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from generator.errors import CatalogError, CatalogErrors, Location
from generator.formats import emit
from generator.formats.templating import Templates
from generator.model.resolve import Model
from generator.output import parallel
from generator.targets import TARGETS
from generator.targets.base import RenderedFile, Target

MANIFEST_PATH = "rendered/.companyos-manifest.json"
MANIFEST_VERSION = 1


@dataclass(frozen=True)
class RenderResult:
    """Everything one render produced, manifest included."""

    files: dict[str, bytes]
    manifest: dict[str, Any] = field(repr=False)

    def entry(self, path: str) -> dict[str, Any] | None:
        return self.manifest["files"].get(path)


def render(model: Model, targets: Iterable[Target] | None = None, jobs: int = 1) -> RenderResult:
    """Render ``model`` with every target (or the given ones), on up to ``jobs`` processes
    for a large catalog (``parallel``); the bytes are the same for any ``jobs``."""
    chosen = list(targets if targets is not None else TARGETS)
    files: dict[str, bytes] = {}
    entries: dict[str, dict[str, Any]] = {}
    encoded: dict[str, str] = {}
    if parallel.usable(model, jobs):
        produced = parallel.render_parallel(model, chosen, jobs, finalize)
    else:
        templates = Templates(model.templates)
        produced = (finalize(target.NAME, item) for target in chosen for item in target.render(model, templates))
    for path, data, entry, line in produced:
        _add(files, entries, path, data, entry)
        encoded[path] = line
    manifest = {
        "generator": emit.GENERATOR,
        "version": MANIFEST_VERSION,
        "files": dict(sorted(entries.items())),
    }
    files[MANIFEST_PATH] = emit.manifest_bytes(manifest, encoded)
    return RenderResult(dict(sorted(files.items())), manifest)


def finalize(target: str, item: RenderedFile) -> tuple[str, bytes, dict[str, Any], str]:
    """One target's record -> (path, final bytes, manifest entry, its manifest line); refuses
    escaping paths. Runs in the render workers for a large catalog."""
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
    return item.path, data, entry, emit.manifest_entry(entry)


def _add(files: dict[str, bytes], entries: dict[str, dict[str, Any]], path: str, data: bytes, entry: dict[str, Any]) -> None:
    if path in files:
        raise CatalogErrors(
            [CatalogError(Location(path), f"two outputs claim this path (targets {entries[path]['target']} and {entry['target']})")]
        )
    files[path] = data
    entries[path] = entry
