"""Run every target over the resolved model: ``Model -> {path: bytes}``.

Pure and deterministic: no I/O, no clocks, no environment, and outputs sorted by path.
The result includes the manifest, which records every generated file with its sha256,
the sources it came from and the tenant/environment/Terraform root it belongs to. The
manifest is what lets ``tree`` prune only files we generated and ``affected`` map changed
files back to roots and tenants.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Iterable

from generator import emit
from generator.errors import CatalogError, CatalogErrors, Location
from generator.model import Model
from generator.targets import TARGETS
from generator.targets.base import RenderedFile, Target
from generator.templating import Templates

MANIFEST_PATH = "rendered/.companyos-manifest.json"
MANIFEST_VERSION = 1


@dataclass(frozen=True)
class RenderResult:
    """Everything one render produced, manifest included."""

    files: dict[str, bytes]
    manifest: dict[str, Any] = field(repr=False)

    def entry(self, path: str) -> dict[str, Any] | None:
        return self.manifest["files"].get(path)


def render(model: Model, targets: Iterable[Target] | None = None) -> RenderResult:
    """Render ``model`` with every target (or the given ones)."""
    templates = Templates(model.templates)
    files: dict[str, bytes] = {}
    entries: dict[str, dict[str, Any]] = {}
    for target in targets if targets is not None else TARGETS:
        for item in target.render(model, templates):
            _add(files, entries, target.NAME, item)
    manifest = {
        "generator": emit.GENERATOR,
        "version": MANIFEST_VERSION,
        "files": dict(sorted(entries.items())),
    }
    files[MANIFEST_PATH] = emit.manifest_bytes(manifest)
    return RenderResult(dict(sorted(files.items())), manifest)


def _add(files: dict[str, bytes], entries: dict[str, dict[str, Any]], target: str, item: RenderedFile) -> None:
    if item.path in files:
        raise CatalogErrors([CatalogError(Location(item.path), f"two outputs claim this path (targets {entries[item.path]['target']} and {target})")])
    if not (item.path.startswith("rendered/") or item.path.startswith(".github/workflows/")) or ".." in item.path.split("/"):
        raise CatalogErrors([CatalogError(Location(item.path), "outputs must stay under rendered/ or .github/workflows/")])
    data = emit.finalize(item.text, item.sources, item.comment)
    files[item.path] = data
    entry: dict[str, Any] = {
        "sha256": hashlib.sha256(data).hexdigest(),
        "sources": sorted(set(item.sources)),
        "target": target,
    }
    for key in ("tenant", "environment", "root"):
        value = getattr(item, key)
        if value is not None:
            entry[key] = value
    entries[item.path] = entry
