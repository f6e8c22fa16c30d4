"""CompanyOS: render a declarative platform catalog into the files GitOps tools apply.

The library API is small on purpose::

    from generator import pipeline
    build = pipeline.build(Path("."))   # load -> references -> resolve -> policy -> render
    build.result.files                  # {relative path: bytes}, deterministic

The stages live in packages named for them (``catalog``, ``model``, ``policy``,
``targets``, ``output``; see docs/architecture.md). Names are imported lazily, so
``import generator`` costs nothing until one is used.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CatalogError": "generator.errors",
    "CatalogErrors": "generator.errors",
    "Location": "generator.errors",
    "load_catalog": "generator.catalog.load",
    "resolve": "generator.model.resolve",
    "render": "generator.output.render",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'generator' has no attribute {name!r}")
